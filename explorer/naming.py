"""Dotted names: validation, branches and their aliases, run names."""
from __future__ import annotations

import keyword
import re

from .errors import InvalidNameError

__all__ = [
    "BRANCHES",
    "BRANCH_ALIASES",
    "RUN_WILDCARD",
    "CURRENT_RUN",
    "split_name",
    "split_branch",
    "run_name",
    "run_index",
    "is_run_name",
]

#: The four top-level branches, in lookup order.
BRANCHES = ("parameters", "derived_parameters", "config", "results")

#: Short aliases of the branches, and the branches themselves.
BRANCH_ALIASES = {
    "parameters": "parameters",
    "par": "parameters",
    "derived_parameters": "derived_parameters",
    "dpar": "derived_parameters",
    "config": "config",
    "conf": "config",
    "results": "results",
    "res": "results",
}

#: Placeholder for the current run's name in a result name.
RUN_WILDCARD = "$"
#: Alias that means the run set with ``set_run``.
CURRENT_RUN = "crun"

_RUN_RE = re.compile(r"^run_(\d{8,})$")


def _check_segment(segment: str, name: str, allow_wildcard: bool) -> None:
    if allow_wildcard and segment == RUN_WILDCARD:
        return
    if not segment.isidentifier() or segment.startswith("_") or keyword.iskeyword(segment):
        raise InvalidNameError(
            f"invalid name {name!r}: segment {segment!r} must be a Python identifier "
            "that does not start with '_' and is not a keyword")


def split_name(name: str, *, allow_wildcard: bool = False) -> list[str]:
    """Split a dotted name into validated segments.

    Parameters
    ----------
    name : str
        A dotted path such as ``"neuron.tau_V"``.
    allow_wildcard : bool
        Whether a ``$`` segment (the current run) is allowed.

    Raises
    ------
    InvalidNameError
        If the name is not a string, is empty, or a segment is not valid.
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"a name must be a str, got {type(name).__name__} {name!r}")
    if not name:
        raise InvalidNameError("a name must not be empty")
    segments = name.split(".")
    for segment in segments:
        _check_segment(segment, name, allow_wildcard)
    return segments


def split_branch(segments: list[str]) -> tuple[str | None, list[str]]:
    """Return ``(branch, rest)`` when the first segment names a branch, else
    ``(None, segments)``."""
    if segments and segments[0] in BRANCH_ALIASES:
        return BRANCH_ALIASES[segments[0]], segments[1:]
    return None, segments


def run_name(idx: int) -> str:
    """The name of run ``idx``: ``run_00000013``."""
    return f"run_{idx:08d}"


def is_run_name(segment: str) -> bool:
    """Whether ``segment`` is a run name such as ``run_00000013``."""
    return _RUN_RE.match(segment) is not None


def run_index(run: int | str) -> int:
    """Turn a run index or run name into the run index."""
    if isinstance(run, str):
        match = _RUN_RE.match(run)
        if match is None:
            raise InvalidNameError(f"{run!r} is not a run name like 'run_00000013'")
        return int(match.group(1))
    if isinstance(run, bool) or not hasattr(run, "__index__"):
        raise InvalidNameError(f"a run is given by its index or name, got {run!r}")
    return int(run)
