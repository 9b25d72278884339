"""Multi-task architectures; every model maps a batch to ``{task: output}``.

* :class:`SingleTask` -- one independent network per task (the baseline).
* :class:`HardSharing` -- one shared trunk, one head per task.
* :class:`ColumnNetwork` / :class:`MixedColumnNetwork` -- the skeleton of the next three: one column and one
  head per task (mixed by a unit after every stage).
* :class:`SoftSharing` -- one column per task, a penalty pulls them together.
* :class:`CrossStitchNetwork` -- columns mixed by cross-stitch units (Misra et al., CVPR 2016).
* :class:`SluiceNetwork` -- columns mixed subspace-wise, with layer stitching (Ruder et al., AAAI 2019).
* :class:`JointManyTask` -- recurrent layers stacked by task depth (Hashimoto et al., EMNLP 2017).
* :func:`lesion_network` -- one encoder, a decoder per lesion kind and a presence classifier (Playout et al.,
  MICCAI 2018); :func:`separate_lesion_networks` is its single-task baseline.
* :class:`UnionSegmentationNet` -- every layer shared, one output over the union of the tasks' labels (Moeskops et al.,
  MICCAI 2016).

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
from mtl_course.models.columns import ColumnNetwork, MixedColumnNetwork
from mtl_course.models.cross_stitch import (
    CrossStitchFunction,
    CrossStitchNetwork,
    CrossStitchUnit,
    cross_stitch,
    cross_stitch_reference,
)
from mtl_course.models.hard_sharing import HardSharing
from mtl_course.models.joint_many_task import JointManyTask, pair_features
from mtl_course.models.lesion_network import LESION_TASKS, PRESENCE_TASK, lesion_network, separate_lesion_networks
from mtl_course.models.multiscale import MultiScaleNet, MultiScaleTrunk
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
from mtl_course.models.union_segmentation import UnionSegmentationNet

__all__ = [
    "BottleneckHead",
    "CNNTrunk",
    "ColumnNetwork",
    "CrossStitchFunction",
    "CrossStitchNetwork",
    "CrossStitchUnit",
    "DenseHead",
    "HardSharing",
    "JointManyTask",
    "LESION_TASKS",
    "LinearHead",
    "MLPTrunk",
    "MixedColumnNetwork",
    "MultiScaleNet",
    "MultiScaleTrunk",
    "MultiTaskModel",
    "PRESENCE_TASK",
    "SingleTask",
    "SluiceNetwork",
    "SluiceUnit",
    "SoftSharing",
    "StagedEncoder",
    "UNetDecoder",
    "UNetEncoder",
    "UnionSegmentationNet",
    "cross_stitch",
    "cross_stitch_reference",
    "layer_stitch_init",
    "lesion_network",
    "pair_features",
    "separate_lesion_networks",
    "sluice_alpha_init",
    "squared_l2_penalty",
    "stage_weight",
    "subspace_orthogonality",
    "trace_norm_penalty",
]
