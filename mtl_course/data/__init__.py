"""Offline data sets of the course: seeded generators and scikit-learn's bundled sets.

One module per family; nothing here downloads. Each generator's docstring says
what real data it stands in for, and every generator returns
:class:`~mtl_course.data.tasks.MultiTaskData` (or a split of them). The names
below are imported on first use.

>>> from mtl_course.data import make_shapes
>>> make_shapes(4, seed=0).tasks
('segmentation', 'diagnosis')
"""

from mtl_course._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "tasks": ["IGNORE_INDEX", "MultiTaskData"],
        "loaders": ["TensorLoader"],
        "shapes": ["make_shapes"],
        "linear_tasks": [
            "load_diabetes_tasks",
            "load_linnerud_tasks",
            "make_sparse_linear_tasks",
            "random_split",
            "target_matrix",
        ],
        "caruana": [
            "AttentionProblem",
            "CaruanaProblem",
            "EnvironmentProblem",
            "HintProblem",
            "load_breast_cancer_tasks",
            "shuffle_extra_tasks",
        ],
        "teachers": [
            "function_correlation",
            "make_related_regression",
            "make_related_tasks",
            "task_correlation",
        ],
        "toy_regression": ["QuadraticTasks", "make_conflicting_regressions", "make_gradnorm_toy"],
        "multidigits": ["load_multidigits"],
        "toy_language": ["make_toy_language", "sentence_words"],
        "indoor_scenes": ["CLASSES", "depth_edges", "discontinuities", "make_indoor_scenes", "pixel_rays"],
        "breast_lesions": [
            "DESCRIPTORS",
            "DIAGNOSIS",
            "LEVELS",
            "VOTE_WEIGHTS",
            "make_breast_lesions",
            "malignancy_probability",
            "render_lesions",
            "rule_weights",
        ],
        "fundus": ["LESIONS", "PRESENCE", "lesion_fraction", "make_fundus"],
        "modalities": ["CLASS_NAMES", "LABEL_SETS", "MODALITIES", "N_CLASSES", "make_modalities", "modality_index"],
        "digit_attributes": [
            "KNOWN_GROUPS",
            "TASK_DIGITS",
            "attribute_labels",
            "load_digit_attributes",
            "shuffle_each_task",
        ],
        "digit_pairs": ["TARGET", "FewShotTasks", "make_digit_pair_tasks", "pair_task"],
        "tabletop": ["OBJECT_NAMES", "make_tabletop", "object_polygon", "object_width", "push_outcome"],
        "task_relationship": [
            "RELATIONSHIP_SAMPLES",
            "RELATIONSHIP_TASKS",
            "make_relationship_tasks",
            "relationship_correlation",
            "weight_correlation",
        ],
        "faces": ["make_faces"],
        "partial_digits": ["label_counts", "make_partial_digits"],
        "ultrasound_views": ["LANDMARKS_PER_VIEW", "VIEWS", "fan_mask", "make_ultrasound_views", "view_rows"],
        "cine": ["CINE_CLASSES", "make_cine"],
        "biopsy": ["DIAGNOSIS_NAMES", "TISSUE_NAMES", "make_biopsy", "tissue_textures"],
    },
)
