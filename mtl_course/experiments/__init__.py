"""Reusable experiments of the lectures: small, seeded, and returning pandas DataFrames.

* :mod:`mtl_course.experiments.mechanisms` -- why multi-task learning works
  (lecture A2): STL versus MTL versus Caruana's shuffle test, one experiment
  per mechanism, many seeds trained at once.
"""
