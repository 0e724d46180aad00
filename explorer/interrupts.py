"""Stopping cleanly on SIGINT and SIGTERM (Ctrl-C, or a cluster's walltime)."""
from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

__all__ = ["Interruption"]


class Interruption:
    """While active, SIGINT and SIGTERM ask the work to stop instead of killing it.

    The first signal sets :attr:`signal_name` and makes :meth:`requested` true;
    a second one raises ``KeyboardInterrupt`` at once. Outside the main thread
    nothing is installed (Python only delivers signals there).
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.signal_name is not None

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.signal_name is not None:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(number).name
        print(f"\nexplorer: {self.signal_name} received; storing finished runs and stopping "
              "(send it again to stop at once)", file=sys.stderr, flush=True)

    def __enter__(self) -> Interruption:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()
