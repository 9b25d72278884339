"""The names of the conditions every lecture compares, so that tables and legends read the same everywhere.

>>> STL, HARD, soft(0.01), soft(1.0)
('STL', 'hard', 'soft λ=0.01', 'soft λ=1')
"""

from __future__ import annotations

import math

#: Single-task learning: one network per task (the baseline every lecture compares with).
STL = "STL"
#: Multi-task learning with one hard-shared network, where it is the only multi-task condition (lecture A2).
MTL = "MTL"
#: Caruana's shuffle test: the extra tasks' labels are permuted across cases.
SHUFFLED = "shuffled"
#: Hard parameter sharing: one shared trunk, one head per task.
HARD = "hard"
#: Cross-stitch networks (Misra et al., CVPR 2016).
CROSS_STITCH = "cross-stitch"
#: Sluice networks (Ruder et al., AAAI 2019).
SLUICE = "sluice"
#: One network trained on every task together, against designs that train parts apart (lectures B11, B16).
JOINT = "joint"


def soft(lam: float) -> str:
    """Soft parameter sharing with penalty strength ``lam``: ``"soft λ=0.01"`` (``%g`` format)."""
    if not (lam > 0 and math.isfinite(lam)):
        raise ValueError(f"a soft-sharing condition needs a positive, finite penalty strength, got {lam}")
    return f"soft λ={lam:g}"
