r"""Loss weighting and gradient methods behind one interface.

Every method is a :class:`WeightingMethod`: build it with
``get_weighting(name, tasks, **hyper)`` and call
``method.backward(losses, model, representation=...)`` instead of
``loss.backward()``. Any architecture that honours
:class:`mtl_course.models.base.MultiTaskModel` trains with any method.

========================  ===============================================================
name                      method
========================  ===============================================================
``equal``, ``fixed``      :math:`\sum_i \lambda_i L_i` with :math:`\lambda_i = 1` or hand-set
``rlw``                   random loss weighting (Lin et al., TMLR 2022, arXiv 2111.10603)
``uncertainty``           Kendall, Gal & Cipolla, CVPR 2018, arXiv 1705.07115
``gradnorm``              Chen et al., ICML 2018, arXiv 1711.02257
``dwa``                   Liu, Johns & Davison, CVPR 2019, arXiv 1803.10704
``mgda``, ``mgda_ub``     Sener & Koltun, NeurIPS 2018, arXiv 1810.04650
``pcgrad``                Yu et al., NeurIPS 2020, arXiv 2001.06782
``cagrad``                Liu et al., NeurIPS 2021, arXiv 2110.14048
``imtl_g``                Liu et al., ICLR 2021 (IMTL-G)
========================  ===============================================================

Nash-MTL (Navon et al., ICML 2022) is deliberately absent: its solver needs
cvxpy, which the course does not install, and a silent fallback to another
method would mislead; ``get_weighting("nash_mtl", ...)`` says so.
"""

from __future__ import annotations

from mtl_course.weighting.base import (
    LossWeighting,
    WeightingMethod,
    available_methods,
    get_weighting,
    register,
)
from mtl_course.weighting.cagrad import CAGrad, cagrad_coefficients
from mtl_course.weighting.dwa import DynamicWeightAverage, dwa_weights
from mtl_course.weighting.gradient import GradientWeighting
from mtl_course.weighting.gradnorm import GradNorm, gradnorm_loss, suggested_weight_lr
from mtl_course.weighting.imtl import IMTLG, imtl_g_coefficients
from mtl_course.weighting.mgda import MGDA, mgda_ub, min_norm_element, min_norm_two
from mtl_course.weighting.pcgrad import PCGrad, pcgrad_coefficients
from mtl_course.weighting.scalarization import EqualWeighting, FixedWeighting, RandomLossWeighting
from mtl_course.weighting.uncertainty import UncertaintyWeighting, uncertainty_objective

__all__ = [
    "CAGrad",
    "DynamicWeightAverage",
    "EqualWeighting",
    "FixedWeighting",
    "GradNorm",
    "GradientWeighting",
    "IMTLG",
    "LossWeighting",
    "MGDA",
    "PCGrad",
    "RandomLossWeighting",
    "UncertaintyWeighting",
    "WeightingMethod",
    "available_methods",
    "cagrad_coefficients",
    "dwa_weights",
    "get_weighting",
    "gradnorm_loss",
    "imtl_g_coefficients",
    "mgda_ub",
    "min_norm_element",
    "min_norm_two",
    "pcgrad_coefficients",
    "register",
    "suggested_weight_lr",
    "uncertainty_objective",
]
