"""Plain data that runs hand back: what one run produced.

Records cross process boundaries (dask workers), so they hold only picklable
plain data and know nothing of trajectories or files.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunStatus", "RunRecord"]


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
