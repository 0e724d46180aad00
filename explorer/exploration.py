"""Building explorations: plain dicts that map parameter names to lists of values."""
from __future__ import annotations

import itertools
from typing import Any, Iterable, Mapping, Sequence

from .errors import ExplorationError

__all__ = ["cartesian_product"]


def cartesian_product(values: Mapping[str, Iterable[Any]],
                      order: Sequence[str] | None = None) -> dict[str, list[Any]]:
    """Every combination of the given values, as equally long lists.

    Parameters
    ----------
    values : mapping of str to iterable
        Parameter names and the values each takes.
    order : sequence of str, optional
        The names from slowest to fastest varying: the last one changes from one
        point to the next, like the innermost of nested ``for`` loops. Defaults
        to the mapping's own order.

    Returns
    -------
    dict of str to list
        One list per name, all of length ``prod(len(v) for v in values)``, ready
        for :meth:`Trajectory.explore`.

    Examples
    --------
    >>> cartesian_product({"I": [0.0, 0.5], "tau_ref": [5.0, 10.0]}, order=("tau_ref", "I"))
    {'tau_ref': [5.0, 5.0, 10.0, 10.0], 'I': [0.0, 0.5, 0.0, 0.5]}
    """
    if not isinstance(values, Mapping):
        raise ExplorationError(
            f"cartesian_product takes a dict of name -> list, got {type(values).__name__}")
    bad = {name: type(vals).__name__ for name, vals in values.items()
           if isinstance(vals, (str, bytes)) or not isinstance(vals, Iterable)}
    if bad:
        raise ExplorationError(
            "the values of each name must be a list (or other iterable), got "
            + ", ".join(f"{name!r}: {kind}" for name, kind in bad.items()))
    lists = {name: list(vals) for name, vals in values.items()}
    if order is None:
        order = list(lists)
    order = list(order)
    unknown = [name for name in order if name not in lists]
    missing = [name for name in lists if name not in order]
    if unknown or missing or len(set(order)) != len(order):
        raise ExplorationError(
            f"order {order!r} must name each of {list(lists)!r} exactly once"
            + (f"; unknown: {unknown!r}" if unknown else "")
            + (f"; missing: {missing!r}" if missing else ""))
    empty = [name for name in order if not lists[name]]
    if empty:
        raise ExplorationError(f"no values given for {empty!r}")
    points = list(itertools.product(*(lists[name] for name in order)))
    return {name: [point[i] for point in points] for i, name in enumerate(order)}
