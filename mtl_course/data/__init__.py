"""Offline data sets of the course: seeded generators and scikit-learn's bundled sets.

One module per family; nothing here downloads. Each generator's docstring says
what real data it stands in for.
"""
