"""Exercise sheets: their cell format, ``release`` for students, ``grade`` for instructors.

- :mod:`~mtl_course.grading.format`: answer and check cells, the solution markers;
- :mod:`~mtl_course.grading.checks`: what check cells record, and the comparisons the grader makes;
- :mod:`~mtl_course.grading.release`: ``solutions/`` to ``exercises/``;
- :mod:`~mtl_course.grading.grade`: submissions to scores (nbval runs them, the grader compares);
- :mod:`~mtl_course.grading.sandbox`: the bubblewrap sandbox, and the limits the grader observes;
- :mod:`~mtl_course.grading.nbval_plugin`: a dead kernel fails fast, and its exit stays visible;
- :mod:`~mtl_course.grading.gradebook`: the gradebook CSV and the feedback files, made safe;
- :mod:`~mtl_course.grading.summary`: the per-exercise summary, the roster and the figure.

The submodules are imported on use; this package imports nothing.
"""
