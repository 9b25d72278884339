"""The lectures' experiments: one engine, and one recipe module per lecture that trains.

* :mod:`~mtl_course.experiments.engine` -- the one experiment engine: a
  :class:`~mtl_course.experiments.engine.Run` per (condition, seed), one
  monitoring and early-stopping rule, one result type with its curves;
  ``train_each`` (one ordinary model per run) and ``train_replicated`` (many
  tiny networks at once, :mod:`~mtl_course.experiments.replicate`).
* :mod:`~mtl_course.experiments.labels` -- the condition names every table uses.
* :mod:`~mtl_course.experiments.mechanisms` -- why MTL works (lecture A2).
* :mod:`~mtl_course.experiments.sharing` -- hard versus soft sharing (A3).
* :mod:`~mtl_course.experiments.cross_stitch` -- cross-stitch networks (A4).
* :mod:`~mtl_course.experiments.sluice` -- sluice networks (A5), and a replay of the official code.
* :mod:`~mtl_course.experiments.loss_weighting` -- the weighting methods compared (A6).
* :mod:`~mtl_course.experiments.joint_many_task` -- the Joint Many-Task model's training turns (B3).
* :mod:`~mtl_course.experiments.eigen_fergus` -- depth, normals and labels from one network (B1).
* :mod:`~mtl_course.experiments.moeskops` -- one network for three modalities (B2).
* :mod:`~mtl_course.experiments.fully_adaptive` -- task affinity and top-down widening (B9).
* :mod:`~mtl_course.experiments.pinto_gupta` -- a budget of interactions split between grasp and push (B6).
* :mod:`~mtl_course.experiments.relationship` -- multilinear relationship networks against STL (B10).
* :mod:`~mtl_course.experiments.meta_training` -- MAML with a learning-progress teacher, then fine-tuning (B15).
* :mod:`~mtl_course.experiments.faces` -- HyperFace (B4), TCDCN (B5) and Devries et al. (B7) on synthetic faces.
* :mod:`~mtl_course.experiments.ubernet` -- UberNet: partial labels, two averages, checkpointed heads (B8).
* :mod:`~mtl_course.experiments.birads` -- BI-RADS descriptors as auxiliary tasks (B12).
* :mod:`~mtl_course.experiments.less_is_more` -- view classification and landmarks in one network (B11).
* :mod:`~mtl_course.experiments.playout` -- bright and red lesions, the kappa loss, a presence classifier (B13).
* :mod:`~mtl_course.experiments.ynet` -- Y-Net, joint segmentation and diagnosis of synthetic biopsies (B14).

The names below are imported on first use; A2 and A3 use their recipe modules
as namespaces (``from mtl_course.experiments import mechanisms``).
"""

from mtl_course._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "engine": ["ExperimentResult", "Run", "concat_results", "timed_train_each", "train_each", "train_replicated"],
        "labels": ["CROSS_STITCH", "HARD", "JOINT", "MTL", "SHUFFLED", "SLUICE", "STL", "soft"],
        "replicate": ["ReplicatedColumns", "ReplicatedMLP"],
        "cross_stitch": ["CONDITIONS", "build_model", "find_run", "run_cross_stitch", "trace", "train_runs"],
        "sluice": [
            "ABLATION_ARMS",
            "DEFAULT_ORTHOGONALITY",
            "AblationArm",
            "cross_subspace_cosine",
            "effective_rank",
            "layer_contributions",
            "official_alpha_init",
            "official_beta_init",
            "official_cross_stitch",
            "official_layer_stitch",
            "official_subspace_blocks",
            "run_ablation",
        ],
        "joint_many_task": [
            "JMT",
            "TOP",
            "JointManyTaskResult",
            "forgetting",
            "jmt_tasks",
            "run_joint_many_task",
            "train_turns",
            "turn_task",
        ],
        "eigen_fergus": [
            "METRICS",
            "NO_GRADIENT",
            "TASKS",
            "build_scene_network",
            "edge_errors",
            "metrics_table",
            "run_eigen_fergus",
            "scene_metrics",
            "scene_tasks",
        ],
        "fully_adaptive": [
            "BRANCHED",
            "SHARED",
            "FullyAdaptiveResult",
            "affinity_over_training",
            "attribute_tasks",
            "branch_costs",
            "group_labels",
            "known_group_contrast",
            "margin_snapshot",
            "run_fully_adaptive",
            "widen_top_down",
        ],
        "motion_segmentation": [
            "SEG_ONLY",
            "cine_scores",
            "labelled_frames_only",
            "motion_segmentation_tasks",
            "run_motion_segmentation",
            "smoothness_sweep",
        ],
        "pinto_gupta": [
            "GRASP_ONLY_HALF",
            "budget_runs",
            "budget_split",
            "grasp_push_tasks",
            "run_budget_split",
            "split_label",
        ],
        "meta_training": [
            "META_CONDITIONS",
            "JOINT_PRETRAINING",
            "META_CURRICULUM",
            "META_UNIFORM",
            "RANDOM_INIT",
            "Episode",
            "LearningProgressTeacher",
            "MetaHistory",
            "MetaTrainingResult",
            "classifier",
            "fine_tune",
            "inner_step",
            "joint_pretrain",
            "meta_train",
            "run_meta_training",
            "sample_episode",
        ],
        "relationship": [
            "ALIKE",
            "MRN",
            "MRN_FULL",
            "alike_covariance",
            "map_penalty",
            "per_task_table",
            "run_relationship",
            "structure_recovery",
        ],
        "faces": [
            "DEVRIES_TASKS",
            "EARLY_STOP",
            "FACE_OUTPUTS",
            "FUSED",
            "HYPERFACE_LAMBDAS",
            "LAST",
            "MAIN_ONLY",
            "TCDCN_TASKS",
            "TO_THE_END",
            "errors_by_group",
            "devries_model",
            "face_model",
            "face_task",
            "run_devries",
            "run_hyperface",
            "run_tcdcn",
            "select_tasks",
        ],
        "ubernet": [
            "BATCH_MEAN",
            "LABELLED_MEAN",
            "effective_weights",
            "memory_profile",
            "run_ubernet",
            "saved_activation_bytes",
            "ubernet_tasks",
        ],
        "loss_weighting": [
            "conflicting_pair_experiment",
            "gradnorm_toy_experiment",
            "make_fit_retrainer",
            "multidigits_experiment",
            "pareto_stationarity",
            "tcdcn_curve",
        ],
        "birads": [
            "BIRADS_TASKS",
            "BiradsSetting",
            "birads_splits",
            "birads_tasks",
            "build_birads_network",
            "descriptor_input_auc",
            "diagnosis_logits",
            "diagnosis_metrics",
            "run_birads",
            "without_descriptors",
        ],
        "moeskops": [
            "ModalityExperiment",
            "build_union_network",
            "evaluate_modalities",
            "moeskops_experiment",
            "one_modality",
            "segment",
            "splits",
        ],
        "less_is_more": [
            "CHANNELS",
            "SEPARATE",
            "LessIsMoreResult",
            "classification_only",
            "less_is_more_experiment",
            "measure_joint",
            "measure_separate",
            "one_view",
            "view_tasks",
        ],
        "playout": [
            "ARMS",
            "LESION_LOSSES",
            "Arm",
            "ce_plus_kappa",
            "kappa_on_logits",
            "lesion_scores",
            "playout_experiment",
        ],
        "ynet": [
            "CLASSIFIER",
            "MASK",
            "YNET",
            "YNetResult",
            "fit_fraction_classifier",
            "hide",
            "mask_diagnosis_accuracy",
            "run_ynet",
            "tissue_fractions",
            "two_stage_runs",
            "ynet_tasks",
        ],
    },
)
