"""Multi-task architectures; every model maps a batch to ``{task: output}``.

* :class:`SingleTask` -- one independent network per task (the baseline).
* :class:`HardSharing` -- one shared trunk, one head per task.
* :class:`ColumnNetwork` / :class:`MixedColumnNetwork` -- the skeleton of the next three: one column and one
  head per task (mixed by a unit after every stage).
* :class:`SoftSharing` -- one column per task, a penalty pulls them together.
* :class:`CrossStitchNetwork` -- columns mixed by cross-stitch units (Misra et al., CVPR 2016).
* :class:`SluiceNetwork` -- columns mixed subspace-wise, with layer stitching (Ruder et al., AAAI 2019).
* :class:`HyperFace` -- hard sharing on hyperfeatures fused from several depths (Ranjan et al., TPAMI 2019).
* :class:`JointManyTask` -- recurrent layers stacked by task depth (Hashimoto et al., EMNLP 2017).
* :func:`lesion_network` -- one encoder, a decoder per lesion kind and a presence classifier (Playout et al.,
  MICCAI 2018); :func:`separate_lesion_networks` is its single-task baseline.
* :class:`UnionSegmentationNet` -- every layer shared, one output over the union of the tasks' labels (Moeskops et al.,
  MICCAI 2016).
* :class:`BranchedNetwork` -- a tree of shared trunks, grouped by task affinity (Lu et al., CVPR 2017).
* :class:`GraspPushNetwork` -- one conv trunk, a grasp and a push head (Pinto & Gupta, ICRA 2017).
* :class:`MultilinearRelationshipNetwork` -- task layers under a tensor-normal prior (Long et al., NIPS 2017).
* :func:`ubernet` -- a skip-layer trunk and one fusion head per task (Kokkinos, CVPR 2017).
* :class:`ViewLandmarkNet` -- a shared encoder, a view head and one landmark decoder for every view (Xu et al.,
  MICCAI 2018).

All follow the contract of :class:`MultiTaskModel`.

>>> import torch
>>> from mtl_course.models import HardSharing
>>> model = HardSharing.mlp(in_features=20, hidden=[32, 32], tasks={"a": 1, "b": 1})
>>> sorted(model(torch.zeros(4, 20)))
['a', 'b']
"""

from __future__ import annotations

from mtl_course.models.base import MultiTaskModel
from mtl_course.models.blocks import (
    BottleneckHead,
    CNNTrunk,
    DenseHead,
    LinearHead,
    MLPTrunk,
    StagedEncoder,
    UNetDecoder,
    UNetEncoder,
)
from mtl_course.models.branched import BranchedNetwork
from mtl_course.models.columns import ColumnNetwork, MixedColumnNetwork
from mtl_course.models.cross_stitch import (
    CrossStitchFunction,
    CrossStitchNetwork,
    CrossStitchUnit,
    cross_stitch,
    cross_stitch_reference,
)
from mtl_course.models.grasp_push import ActionHead, GraspPushNetwork
from mtl_course.models.hard_sharing import HardSharing
from mtl_course.models.hyperface import HyperFace, HyperFeatures
from mtl_course.models.joint_many_task import JointManyTask, pair_features
from mtl_course.models.lesion_network import LESION_TASKS, PRESENCE_TASK, lesion_network, separate_lesion_networks
from mtl_course.models.less_is_more import HeatmapDecoder, ViewClassifierHead, ViewLandmarkNet
from mtl_course.models.motion_segmentation import MotionSegmentationNet, warp
from mtl_course.models.multiscale import MultiScaleNet, MultiScaleTrunk
from mtl_course.models.relationship import MultilinearRelationshipNetwork
from mtl_course.models.single_task import SingleTask
from mtl_course.models.sluice import (
    SluiceNetwork,
    SluiceUnit,
    layer_stitch_init,
    sluice_alpha_init,
    stage_weight,
    subspace_orthogonality,
)
from mtl_course.models.soft_sharing import SoftSharing, squared_l2_penalty, trace_norm_penalty
from mtl_course.models.tensor_normal import (
    correlation,
    fix_scale,
    flip_flop,
    flip_flop_update,
    mode_product,
    tensor_normal_nll,
    unfold,
)
from mtl_course.models.ubernet import Checkpointed, FusionHead, SkipTrunk, ubernet, ubernet_single_task
from mtl_course.models.union_segmentation import UnionSegmentationNet
from mtl_course.models.ynet import y_net

__all__ = [
    "ActionHead",
    "GraspPushNetwork",
    "BottleneckHead",
    "BranchedNetwork",
    "CNNTrunk",
    "Checkpointed",
    "ColumnNetwork",
    "CrossStitchFunction",
    "CrossStitchNetwork",
    "CrossStitchUnit",
    "DenseHead",
    "FusionHead",
    "HardSharing",
    "HyperFace",
    "HyperFeatures",
    "HeatmapDecoder",
    "JointManyTask",
    "LESION_TASKS",
    "LinearHead",
    "MLPTrunk",
    "MixedColumnNetwork",
    "MotionSegmentationNet",
    "MultiScaleNet",
    "MultiScaleTrunk",
    "MultilinearRelationshipNetwork",
    "MultiTaskModel",
    "PRESENCE_TASK",
    "SingleTask",
    "SkipTrunk",
    "SluiceNetwork",
    "SluiceUnit",
    "SoftSharing",
    "StagedEncoder",
    "UNetDecoder",
    "UNetEncoder",
    "UnionSegmentationNet",
    "ViewClassifierHead",
    "ViewLandmarkNet",
    "cross_stitch",
    "correlation",
    "cross_stitch_reference",
    "fix_scale",
    "flip_flop",
    "flip_flop_update",
    "layer_stitch_init",
    "mode_product",
    "lesion_network",
    "pair_features",
    "separate_lesion_networks",
    "sluice_alpha_init",
    "squared_l2_penalty",
    "stage_weight",
    "subspace_orthogonality",
    "tensor_normal_nll",
    "trace_norm_penalty",
    "y_net",
    "unfold",
    "ubernet",
    "ubernet_single_task",
    "warp",
]
