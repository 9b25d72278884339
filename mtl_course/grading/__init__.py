"""Exercise sheets: their cell format, ``release`` for students, ``grade`` for instructors.

- :mod:`~mtl_course.grading.format`: answer and check cells, the solution markers;
- :mod:`~mtl_course.grading.checks`: the helpers check cells print their verdicts with;
- :mod:`~mtl_course.grading.release`: ``solutions/`` to ``exercises/``;
- :mod:`~mtl_course.grading.grade`: submissions to scores (with nbval);
- :mod:`~mtl_course.grading.sandbox`: time and memory limits, killing what a run started;
- :mod:`~mtl_course.grading.nbval_plugin`: out-of-band nonces and dead-kernel detection in nbval;
- :mod:`~mtl_course.grading.gradebook`: the gradebook CSV and the feedback files.

The submodules are imported on use; this package imports nothing.
"""
