"""Building explorations: plain dicts that map parameter names to lists of values."""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import ExplorationError
from .suggest import with_article

__all__ = ["cartesian_product", "not_a_list"]


def not_a_list(values: Any) -> str:
    """``""`` if ``values`` can be a parameter's list of values, else what it is instead.

    A str, bytes, a mapping, a 0-d array or any non-iterable is taken for a
    single value given without its list.
    """
    kind = type(values).__name__
    if isinstance(values, (str, bytes)):
        return f"{with_article(kind)} ({values!r:.40}), one value and not a list of characters"
    if isinstance(values, Mapping):
        return f"{with_article(kind)}, whose keys would be taken for the values"
    if getattr(values, "ndim", None) == 0 or not isinstance(values, Iterable):
        return f"the single value {values!r:.40} ({with_article(kind)})"
    return ""


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
            "cartesian_product takes a dict of name -> list, got "
            f"{with_article(type(values).__name__)}")
    names = [name for name in values if not isinstance(name, str)]
    if names:
        raise ExplorationError(f"cartesian_product: names are str, got {names!r:.80}")
    for name, vals in values.items():
        problem = not_a_list(vals)
        if problem:
            hint = "" if isinstance(vals, Mapping) else \
                f"; for one value write {{{name!r}: [{vals!r:.40}]}}"
            raise ExplorationError(
                f"cartesian_product: the values of {name!r} must be a list, got {problem}{hint}")
    lists = {name: list(vals) for name, vals in values.items()}
    if order is None:
        order = list(lists)
    if isinstance(order, (str, bytes)) or not isinstance(order, Iterable):
        raise ExplorationError(f"order must be a list of names, got {order!r:.80}")
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
