"""Which values explorer stores, and how a value's kind is named.

A *kind* is a short tag that says how a value is encoded in a file and how it is
turned back into the same Python type: ``"bool"``, ``"int"``, ``"float"``,
``"complex"``, ``"str"`` (Python scalars), ``"npscalar"``, ``"ndarray"``,
``"masked"`` (a ``numpy.ma.MaskedArray``), ``"list"``, ``"tuple"``, ``"sparse"``, and
for results also ``"none"``, ``"dataframe"``, ``"series"``, ``"dict"``; ``"pickle"``
only when allowed.

Every value given a kind here is stored exactly (type, dtype with its byte order,
shape, masks, strings with their NULs, pandas dtypes, categories and index
types); a value that could not be is refused here, when it is added, with an
:class:`UnsupportedTypeError` that names the item and the problem.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import UnsupportedTypeError
from .pandas_values import pandas_problem
from .suggest import with_article

__all__ = ["parameter_kind", "result_kind", "coerce_to_default", "is_uniform",
           "PARAMETER_KINDS", "NUMBER_TYPES", "ARRAY_DTYPE_KINDS"]

_PY_SCALARS = {bool: "bool", int: "int", float: "float", complex: "complex", str: "str"}
PARAMETER_KINDS = frozenset(["bool", "int", "float", "complex", "str", "npscalar", "ndarray",
                             "masked", "list", "tuple", "sparse"])
#: numpy dtype kinds of storable arrays and scalars: numbers, strings, dates and durations.
ARRAY_DTYPE_KINDS = "biufcUSmM"


def is_sparse(value: Any) -> bool:
    """Whether ``value`` is a scipy.sparse matrix (or array), without importing scipy."""
    module = type(value).__module__
    if not module.startswith("scipy.sparse"):
        return False
    import scipy.sparse

    return scipy.sparse.issparse(value)


def _scalar_kind(value: Any) -> str | None:
    kind = _PY_SCALARS.get(type(value))
    if kind is not None:
        return kind
    if isinstance(value, np.generic) and value.dtype.kind in ARRAY_DTYPE_KINDS:
        return "npscalar"
    return None


def _array_keeps(item: Any) -> bool:
    """Whether ``item`` comes back the same from an array of items of its type."""
    if type(item) is int:
        return -2**63 <= item < 2**63
    if isinstance(item, str):  # numpy drops the trailing NULs of array elements
        return not item.endswith("\x00") and not isinstance(item, np.generic)
    if isinstance(item, bytes):
        return not item.endswith(b"\x00") and not isinstance(item, np.generic)
    return True


def is_uniform(sequence: list | tuple) -> bool:
    """Whether every element of ``sequence`` has the same type and an array keeps them exactly.

    Such a sequence is stored as one array; any other as one node per element.
    """
    return len({type(item) for item in sequence}) <= 1 and all(map(_array_keeps, sequence))


def _sequence_ok(value: list | tuple) -> bool:
    return all(_scalar_kind(item) is not None for item in value)


def _plain_kind(value: Any) -> str | None:
    kind = _scalar_kind(value)
    if kind is not None:
        return kind
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in ARRAY_DTYPE_KINDS:
            return None
        if type(value) is np.ndarray or type(value) is np.memmap:
            return "ndarray"
        return "masked" if type(value) is np.ma.MaskedArray else None
    if isinstance(value, (list, tuple)):
        return type(value).__name__ if _sequence_ok(value) else None
    if is_sparse(value):
        return "sparse"
    return None


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else \
        f"{kind.__module__}.{kind.__qualname__}"


def _refuse(what: str, name: str, value: Any, allowed: str) -> UnsupportedTypeError:
    return UnsupportedTypeError(
        f"{what} {name!r} cannot hold {with_article(_type_name(value))} ({value!r:.80}); "
        f"supported are {allowed}. Make the trajectory with "
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

        kind = "dataframe" if isinstance(value, pd.DataFrame) else \
            "series" if isinstance(value, pd.Series) else None
        problem = pandas_problem(value) if kind else None
        if kind and not problem:
            return kind
        if problem and not allow_pickle:
            raise UnsupportedTypeError(
                f"result item {name!r}: {problem}. Make the trajectory with allow_pickle=True "
                "to store it pickled")
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        for key, item in value.items():
            result_kind(f"{name}[{key!r}]", item, allow_pickle)
        return "dict"
    if allow_pickle:
        return "pickle"
    raise _refuse("result item", name, value,
                  "the parameter types, None, pandas DataFrames and Series, "
                  "and dicts with str keys of those")


_ACCEPTS = {"b": "b", "i": "iu", "u": "iu", "f": "iuf", "c": "iufc"}
#: The Python number type of each number kind.
NUMBER_TYPES = {"bool": bool, "int": int, "float": float, "complex": complex}
_PY_CODES = {"bool": "b", "int": "i", "float": "f", "complex": "c"}
_DTYPE_KINDS = {"b": "bools", "i": "integers", "u": "unsigned integers", "f": "floats",
                "c": "complex numbers", "U": "str", "S": "bytes", "m": "timedelta64",
                "M": "datetime64"}


def _number_code(value: Any) -> str | None:
    """``b``, ``i``, ``u``, ``f`` or ``c`` for Python and numpy numbers, else ``None``."""
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return "b"
    if isinstance(value, (int, float, complex)) and type(value) in _PY_SCALARS:
        return _PY_CODES[_PY_SCALARS[type(value)]]
    if isinstance(value, np.number):
        return value.dtype.kind
    return None


def _short(value: Any, width: int = 80) -> str:
    """``repr(value)`` on one line, cut to ``width`` characters."""
    text = " ".join(repr(value).split())
    return text if len(text) <= width else f"{text[:width - 3]}..."


def _describe(value: Any) -> str:
    """What a value is, for messages: ``"an ndarray of int64 (shape (3,))"``, ``"a float"``."""
    if isinstance(value, np.ma.MaskedArray):
        return f"a masked array of {value.dtype} (shape {value.shape})"
    if isinstance(value, np.ndarray):
        return f"{with_article('ndarray')} of {value.dtype} (shape {value.shape})"
    if isinstance(value, np.generic):
        return f"a numpy {value.dtype}"
    return with_article(_type_name(value))


def _fix(default: Any, value: Any) -> str:
    """How to give a value the parameter takes, after what is wrong with ``value``."""
    kind = _plain_kind(default) or "pickle"
    if kind == "ndarray" and isinstance(value, np.ndarray):
        if value.dtype.kind != default.dtype.kind:
            return f"; give arrays of {_DTYPE_KINDS[default.dtype.kind]}, e.g. " \
                f"np.asarray(value, dtype={default.dtype.name!r})"
        return f"; give arrays of {default.ndim} dimension{'s' * (default.ndim != 1)}"
    code = _PY_CODES.get(kind) or (default.dtype.kind if kind == "npscalar" else None)
    if code in _ACCEPTS and _number_code(value) is not None:
        if code == "b":
            return "; a number is not taken for a bool"
        if _number_code(value) == "b":
            return "; a bool is not taken for a number"
        return f"; {_describe(value)} is not converted to {_describe(default)}, " \
            "which could lose information"
    return ""


def coerce_to_default(name: str, default: Any, value: Any, what: str = "explored value") -> Any:
    """Return ``value`` in the type of ``default``, or raise :class:`UnsupportedTypeError`.

    A new value of a parameter must have its default's type. Numbers convert
    where no information is lost in kind: integers (Python or numpy) for a
    float parameter, numpy floats for a Python float one, and so on; a bool is
    never taken for a number. Arrays must keep the default's dtype kind and
    number of dimensions.

    Parameters
    ----------
    name : str
        The parameter's full name, for the message.
    default : object
        The parameter's default, whose type the value must have.
    value : object
        The new value.
    what : str
        What the value is, for the message (``"explored value"``, ``"value"``).
    """
    kind = _plain_kind(default) or "pickle"

    def refuse() -> UnsupportedTypeError:
        return UnsupportedTypeError(
            f"{name}: {what} {_short(value)} is {_describe(value)}, but the parameter's default "
            f"{_short(default)} is {_describe(default)}{_fix(default, value)}")

    if kind == "pickle":
        return value
    if kind in NUMBER_TYPES or kind == "npscalar" and default.dtype.kind in _ACCEPTS:
        target = NUMBER_TYPES[kind] if kind in NUMBER_TYPES else default.dtype.type
        code = _PY_CODES[kind] if kind in NUMBER_TYPES else default.dtype.kind
        if _number_code(value) in tuple(_ACCEPTS[code]):
            return target(value)
        raise refuse()
    if kind == "ndarray":
        if not isinstance(value, np.ndarray) or value.dtype.kind != default.dtype.kind \
                or value.ndim != default.ndim:
            raise refuse()
        return value
    if kind == "str" or kind == "npscalar":
        if not isinstance(value, type(default)):
            raise refuse()
        return value
    if _plain_kind(value) != kind:
        raise refuse()
    return value
