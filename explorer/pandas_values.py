"""Which pandas DataFrames and Series explorer stores exactly, and their labels as JSON.

A frame is stored column by column; :func:`pandas_problem` says, before anything
is written, why one could not be stored exactly (a dtype without a codec, an
object column holding lists, an index type...). Names (of a Series, an index,
the columns) are kept as JSON by :func:`label_to_json` and :func:`label_from_json`,
which keep tuples, numpy numbers, timestamps and durations apart from plain values.
pandas is imported only when a pandas object is met.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from .errors import UnsupportedTypeError
from .suggest import with_article

__all__ = ["pandas_problem", "label_to_json", "label_from_json", "is_masked_dtype",
           "STORABLE_INDEXES"]

#: The index classes a frame may have (besides ``RangeIndex``), by name.
STORABLE_INDEXES = ("Index", "RangeIndex", "DatetimeIndex", "TimedeltaIndex", "CategoricalIndex")
_SUPPORTED = ("numpy numbers, bools, datetimes and timedeltas; str (string dtypes, or object "
              "columns of str and None/NaN/pd.NA); categoricals of those; tz-aware datetimes; "
              "the nullable Int, UInt, Float and boolean dtypes")


def is_masked_dtype(dtype: Any) -> bool:
    """Whether ``dtype`` is one of pandas' nullable Int, UInt, Float or boolean dtypes."""
    import pandas as pd

    return isinstance(dtype, pd.api.extensions.ExtensionDtype) and \
        type(dtype).__name__ in _MASKED_DTYPES


_MASKED_DTYPES = frozenset(
    [f"{sign}Int{bits}Dtype" for sign in ("", "U") for bits in (8, 16, 32, 64)]
    + ["Float32Dtype", "Float64Dtype", "BooleanDtype"])


def _is_missing(item: Any) -> bool:
    import pandas as pd

    return item is None or item is pd.NA or (type(item) is float and item != item)


def _object_problem(values: Any, what: str) -> str | None:
    for item in values:
        if type(item) is not str and not _is_missing(item):
            return (f"{what} is an object column holding a {type(item).__module__}."
                    f"{type(item).__qualname__} ({item!r:.40}); object columns may hold only "
                    "str and missing values (None, float NaN, pd.NA)")
    return None


def _values_problem(values: Any, what: str) -> str | None:
    """Why the values of one column or index (``values.dtype``) cannot be stored, or ``None``."""
    import pandas as pd

    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind in "biufcmM":
            return None
        if dtype.kind == "O":
            return _object_problem(values, what)
    elif isinstance(dtype, pd.CategoricalDtype):
        return _index_problem(dtype.categories, f"the categories of {what}")
    elif isinstance(dtype, (pd.DatetimeTZDtype, pd.StringDtype)) or is_masked_dtype(dtype):
        return None
    return f"{what} has dtype {dtype}, which cannot be stored; supported are {_SUPPORTED}"


def _index_problem(index: Any, what: str) -> str | None:
    import pandas as pd

    if isinstance(index, pd.MultiIndex):
        return (f"{what} is a MultiIndex, which cannot be stored; reset it to columns first "
                "(frame.reset_index())")
    if type(index).__name__ not in STORABLE_INDEXES or type(index).__module__.split(".")[0] \
            != "pandas":
        return (f"{what} is {with_article(type(index).__name__)}; supported are "
                f"{', '.join(STORABLE_INDEXES)}")
    freq = getattr(index, "freq", None)
    if freq is not None and pd.tseries.frequencies.to_offset(index.freqstr) != freq:
        return f"{what} has a frequency ({freq!r}) that cannot be written as a string"
    return (None if type(index) is pd.RangeIndex else _values_problem(index, what)) \
        or _label_problem(index.name, f"the name of {what}")


def _label_problem(label: Any, what: str) -> str | None:
    try:
        label_to_json(label)
    except UnsupportedTypeError as err:
        return f"{what}: {err}"
    return None


def pandas_problem(value: Any) -> str | None:
    """Why a DataFrame or Series cannot be stored exactly, or ``None`` if it can.

    Parameters
    ----------
    value : pandas.DataFrame or pandas.Series
        The object to check; every column, the index, the column labels and the
        names are looked at (object columns element by element).
    """
    import pandas as pd

    problem = _index_problem(value.index, "the index")
    if isinstance(value, pd.Series):
        return problem or _values_problem(value, "the values") or \
            _label_problem(value.name, "the name")
    problem = problem or _index_problem(value.columns, "the column labels")
    for i in range(value.shape[1]):
        problem = problem or _values_problem(value.iloc[:, i],
                                             f"column {value.columns[i]!r}")
    return problem


# ------------------------------------------------------------------- labels
def label_to_json(label: Any) -> str:
    """``label`` (a name of a Series, an index or a column) as a JSON text.

    Plain ``None``, bool, int, float and str stay themselves; tuples, numpy
    numbers, ``pandas.Timestamp`` and ``pandas.Timedelta`` become tagged JSON
    objects, so that :func:`label_from_json` gives back the same type.

    Raises
    ------
    UnsupportedTypeError
        For labels of any other type.
    """
    return json.dumps(_label_tree(label))


def _label_tree(label: Any) -> Any:
    import pandas as pd

    if label is None or type(label) in (bool, int, float, str):
        return label
    if type(label) is tuple:
        return {"tuple": [_label_tree(item) for item in label]}
    if isinstance(label, np.generic) and label.dtype.kind in "biuf":
        return {"numpy": label.dtype.str, "value": label.item()}
    if type(label) is pd.Timestamp:
        return {"timestamp": label.value, "unit": label.unit,
                "tz": None if label.tz is None else str(label.tz)}
    if type(label) is pd.Timedelta:
        return {"timedelta": label.value, "unit": label.unit}
    raise UnsupportedTypeError(
        f"a label of type {type(label).__qualname__} ({label!r:.40}) cannot be stored; "
        "labels may be None, bool, int, float, str, numpy numbers, pandas Timestamps and "
        "Timedeltas, and tuples of those")


def label_from_json(text: str) -> Any:
    """Undo :func:`label_to_json`."""
    return _label_value(json.loads(text))


def _label_value(tree: Any) -> Any:
    if not isinstance(tree, dict):
        return tree
    import pandas as pd

    if "tuple" in tree:
        return tuple(_label_value(item) for item in tree["tuple"])
    if "numpy" in tree:
        return np.dtype(tree["numpy"]).type(tree["value"])
    if "timestamp" in tree:
        stamp = pd.Timestamp(tree["timestamp"], unit="ns", tz="UTC" if tree["tz"] else None)
        return (stamp.tz_convert(tree["tz"]) if tree["tz"] else stamp).as_unit(tree["unit"])
    return pd.Timedelta(tree["timedelta"], unit="ns").as_unit(tree["unit"])
