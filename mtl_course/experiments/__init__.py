"""Reusable experiments of the lectures: small, seeded, and returning pandas DataFrames.

* :mod:`mtl_course.experiments.mechanisms` -- why multi-task learning works
  (lecture A2): STL versus MTL versus Caruana's shuffle test, one experiment
  per mechanism, many seeds trained at once.
* :mod:`mtl_course.experiments.sharing` -- hard versus soft sharing
  (lecture A3): a sweep over task relatedness, sample size and penalty
  strength, many seeds trained at once.
* :mod:`mtl_course.experiments.sluice` -- sluice networks (lecture A5): the
  alpha / beta / orthogonality ablation, and a replay of the official code.
* :mod:`mtl_course.experiments.loss_weighting` -- the weighting methods
  compared (lecture A6).
"""
