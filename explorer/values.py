"""Which values explorer stores, and how a value's kind is named.

A *kind* is a short tag that says how a value is encoded in a file and how it is
turned back into the same Python type: ``"bool"``, ``"int"``, ``"float"``,
``"complex"``, ``"str"`` (Python scalars), ``"npscalar"``, ``"ndarray"``,
``"list"``, ``"tuple"``, ``"sparse"``, and for results also ``"none"``,
``"dataframe"``, ``"series"``, ``"dict"``; ``"pickle"`` only when allowed.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import UnsupportedTypeError

__all__ = ["parameter_kind", "result_kind", "coerce_to_default", "is_uniform", "PARAMETER_KINDS"]

_PY_SCALARS = {bool: "bool", int: "int", float: "float", complex: "complex", str: "str"}
PARAMETER_KINDS = frozenset(
    ["bool", "int", "float", "complex", "str", "npscalar", "ndarray", "list", "tuple", "sparse"])


def _is_sparse(value: Any) -> bool:
    module = type(value).__module__
    if not module.startswith("scipy.sparse"):
        return False
    import scipy.sparse

    return scipy.sparse.issparse(value)


def _scalar_kind(value: Any) -> str | None:
    kind = _PY_SCALARS.get(type(value))
    if kind is not None:
        return kind
    if isinstance(value, np.generic) and value.dtype.kind in "biufcUS":
        return "npscalar"
    return None


def is_uniform(sequence: list | tuple) -> bool:
    """Whether every element of ``sequence`` has the same type (so an array keeps it)."""
    return len({type(item) for item in sequence}) <= 1 and not any(
        type(item) is int and not -2**63 <= item < 2**63 for item in sequence)


def _sequence_ok(value: list | tuple) -> bool:
    return all(_scalar_kind(item) is not None for item in value)


def _plain_kind(value: Any) -> str | None:
    kind = _scalar_kind(value)
    if kind is not None:
        return kind
    if isinstance(value, np.ndarray):
        return "ndarray" if value.dtype.kind in "biufcUSmM" else None
    if isinstance(value, (list, tuple)):
        return type(value).__name__ if _sequence_ok(value) else None
    if _is_sparse(value):
        return "sparse"
    return None


def _refuse(what: str, name: str, value: Any, allowed: str) -> UnsupportedTypeError:
    return UnsupportedTypeError(
        f"{what} {name!r} cannot hold a {type(value).__module__}.{type(value).__qualname__} "
        f"({value!r:.80}); supported are {allowed}. Make the trajectory with "
        "allow_pickle=True to store other objects pickled.")


def parameter_kind(name: str, value: Any, allow_pickle: bool = False) -> str:
    """Return the kind of a parameter value, or raise :class:`UnsupportedTypeError`.

    Parameters
    ----------
    name : str
        The parameter's name, used in the error message.
    value : object
        The value to check.
    allow_pickle : bool
        Whether objects of other types may be stored pickled.
    """
    kind = _plain_kind(value)
    if kind is not None:
        return kind
    if allow_pickle:
        return "pickle"
    raise _refuse("parameter", name, value,
                  "bool, int, float, complex, str, numpy scalars and arrays, "
                  "lists/tuples of scalars and scipy.sparse matrices")


def result_kind(name: str, value: Any, allow_pickle: bool = False) -> str:
    """Return the kind of a result item, or raise :class:`UnsupportedTypeError`.

    Results accept everything parameters do, plus ``None``, pandas DataFrames and
    Series, and dicts with str keys of any of those.
    """
    kind = _plain_kind(value)
    if kind is not None:
        return kind
    if value is None:
        return "none"
    module = type(value).__module__
    if module.startswith("pandas"):
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            return "dataframe"
        if isinstance(value, pd.Series):
            return "series"
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        for key, item in value.items():
            result_kind(f"{name}[{key!r}]", item, allow_pickle)
        return "dict"
    if allow_pickle:
        return "pickle"
    raise _refuse("result item", name, value,
                  "the parameter types, None, pandas DataFrames and Series, "
                  "and dicts with str keys of those")


def coerce_to_default(name: str, default: Any, value: Any) -> Any:
    """Return ``value`` in the type of ``default``, or raise :class:`UnsupportedTypeError`.

    An explored value must have the default's type. Integers are accepted for a
    float (or complex) parameter and converted, as numpy would; arrays must keep
    the dtype kind and number of dimensions of the default.
    """
    kind = _plain_kind(default) or "pickle"
    value_kind = _plain_kind(value) or "pickle"

    def refuse() -> UnsupportedTypeError:
        return UnsupportedTypeError(
            f"explored value {value!r:.80} for parameter {name!r} is a "
            f"{type(value).__name__}, but the parameter's default {default!r:.80} is a "
            f"{type(default).__name__}")

    if kind == "float" and value_kind in ("float", "int") or kind == "complex" and \
            value_kind in ("complex", "float", "int"):
        return _PY_TYPES[kind](value)
    if kind == "npscalar":
        if not isinstance(value, np.generic) or value.dtype.kind != default.dtype.kind:
            if isinstance(value, (int, float, complex)) and not isinstance(value, bool) \
                    and np.dtype(type(value)).kind in "iufc" and default.dtype.kind in "iufc":
                return default.dtype.type(value)
            raise refuse()
        return value
    if kind == "ndarray":
        if not isinstance(value, np.ndarray) or value.dtype.kind != default.dtype.kind \
                or value.ndim != default.ndim:
            raise refuse()
        return value
    if kind == "pickle":
        return value
    if kind == "sparse":
        if value_kind != "sparse":
            raise refuse()
        return value
    if value_kind != kind:
        raise refuse()
    return value


_PY_TYPES = {"float": float, "complex": complex}
