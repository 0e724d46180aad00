"""Where the examples write: ``./explorer-output/`` by default, or ``--out DIR``.

Imported by the example scripts beside it (``python examples/<script>.py`` puts
this folder on the import path), as ``hh_model`` and ``latent_model`` are.
"""
from __future__ import annotations

import os

__all__ = ["OUT", "output_dir"]

OUT = "explorer-output"   # the default --out: a folder in the current directory


def output_dir(path: str) -> str:
    """Create ``path``; the default folder keeps itself out of git (a ``.gitignore`` of ``*``)."""
    os.makedirs(path, exist_ok=True)
    ignore = os.path.join(path, ".gitignore")
    if os.path.normpath(path) == OUT and not os.path.exists(ignore):
        with open(ignore, "w") as file:
            file.write("# written by explorer's examples: nothing here is tracked\n*\n")
    return path
