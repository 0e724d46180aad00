"""Plain data that runs hand back: what one run produced.

Records cross process boundaries (dask workers), so they hold only picklable
plain data and know nothing of trajectories or files.
"""
from __future__ import annotations

import enum
import keyword
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["RunStatus", "RunRecord", "is_record"]


class RunStatus(enum.IntEnum):
    """State of a run as stored in the file's run table."""

    PENDING = 0
    COMPLETED = 1
    FAILED = 2


@dataclass
class RunRecord:
    """Everything one run produced.

    Attributes
    ----------
    idx : int
        The run index.
    status : RunStatus
        ``COMPLETED`` or ``FAILED``.
    value : object
        What the run function returned (``None`` for a failed run).
    results : dict
        ``{template: (comment, {item: value})}`` where a template is a full result
        name with ``$`` for the run, e.g. ``"results.neuron.$"``.
    error : str
        ``"ExceptionType: message"`` of a failed run, else ``""``.
    traceback : str
        The formatted traceback of a failed run, else ``""``.
    started : float
        Start time (seconds since the epoch).
    duration : float
        Wall time of the run in seconds.
    """

    idx: int
    status: RunStatus
    value: Any = None
    results: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    error: str = ""
    traceback: str = ""
    started: float = 0.0
    duration: float = 0.0


_RECORD_TYPES = (bool, int, float, complex, str, type(None), np.bool_, np.integer,
                 np.floating, np.complexfloating)


def is_record(value: Any) -> bool:
    """Whether a run's return value is a *record*: a non-empty dict of scalars whose
    keys are names (identifiers that do not start with ``_``, not keywords).

    A record is stored as one stacked column per key (as cheap as a float per
    key), not as a group of nodes per run; its keys come back in sorted order.
    """
    if type(value) is not dict or not value:
        return False
    for key, entry in value.items():
        if type(key) is not str or not key.isidentifier() or key.startswith("_") or \
                keyword.iskeyword(key) or not isinstance(entry, _RECORD_TYPES) or \
                type(entry) is int and not -2**63 <= entry < 2**63:
            return False
    return True
