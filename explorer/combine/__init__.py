"""Combining files: merging trajectories of several files, importing pypet files."""
