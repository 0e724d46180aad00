"""Parameter: a default value, an optional explored range, and a lock."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ParameterLockedError
from .tree import Node
from .values import coerce_to_default, parameter_kind

__all__ = ["Parameter"]


class Parameter(Node):
    """A named value of the trajectory, possibly explored over a range.

    Parameters
    ----------
    full_name : str
        Dotted name including the branch, e.g. ``"parameters.neuron.tau_V"``.
    default : object
        The value outside explored runs; fixes the parameter's type.
    comment : str
        A human description.
    allow_pickle : bool
        Whether values of types explorer cannot store natively are accepted.
    state : callable
        Returns ``(current_run_index or None, locked)`` of the owning trajectory.
    on_change : callable
        Called after the value changed, with ``True``, or the range, with
        ``False`` (whether the parameter tree itself changed).
    guard : callable
        Called with a description before the value changes; raises
        :class:`ParameterLockedError` if the owner keeps its values (a reloaded
        trajectory whose runs completed).
    """

    __slots__ = ("_default", "kind", "_range", "_allow_pickle", "_state", "_on_change",
                 "_guard")

    def __init__(self, full_name: str, default: Any, comment: str = "", *,
                 allow_pickle: bool = False,
                 state: Callable[[], tuple[int | None, bool]] = lambda: (None, False),
                 on_change: Callable[[bool], None] = lambda tree: None,
                 guard: Callable[[str], None] = lambda what: None):
        super().__init__(full_name, comment)
        self.kind = parameter_kind(full_name, default, allow_pickle)
        self._default = default
        self._range: list[Any] | None = None
        self._allow_pickle = allow_pickle
        self._state = state
        self._on_change = on_change
        self._guard = guard

    # values ---------------------------------------------------------------------
    @property
    def default(self) -> Any:
        """The value outside explored runs."""
        return self._default

    @property
    def value(self) -> Any:
        """The value of the current run (see ``Trajectory.set_run``), else the default."""
        idx, _ = self._state()
        if idx is not None and self._range is not None:
            return self._range[idx]
        return self._default

    @value.setter
    def value(self, value: Any) -> None:
        """Set the default; a value of another type is refused as :meth:`coerce` does.

        An int is stored as a float in a float parameter, as explored values are;
        a float given to an int parameter raises :class:`UnsupportedTypeError`.
        """
        self._check_unlocked()
        self._guard(f"cannot change {self.full_name!r}")
        parameter_kind(self.full_name, value, self._allow_pickle)
        value = coerce_to_default(self.full_name, self._default, value, what="value")
        self.kind = parameter_kind(self.full_name, value, self._allow_pickle)
        self._default = value
        self._on_change(True)

    @property
    def range(self) -> list[Any] | None:
        """The explored values, one per run, or ``None`` if not explored."""
        return None if self._range is None else list(self._range)

    @property
    def is_explored(self) -> bool:
        """Whether the parameter takes a value per run."""
        return self._range is not None

    # exploration (called by the trajectory, which checks lengths) ------------------
    def coerce(self, values: list[Any]) -> list[Any]:
        """Return ``values`` converted to the default's type; refuse other types."""
        return [coerce_to_default(self.full_name, self._default, v) for v in values]

    def _set_range(self, values: list[Any] | None) -> None:
        self._check_unlocked()
        self._range = values
        self._on_change(False)  # ranges are stored apart from the tree

    def _check_unlocked(self) -> None:
        if self._state()[1]:
            raise ParameterLockedError(
                f"parameter {self.full_name!r} cannot change while runs execute")

    def _natural(self) -> Any:
        return self.value

    def __repr__(self) -> str:
        explored = f", explored over {len(self._range)} runs" if self._range is not None else ""
        return f"<Parameter {self.full_name} = {self.value!r:.60}{explored}>"
