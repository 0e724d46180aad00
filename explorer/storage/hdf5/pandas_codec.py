"""pandas DataFrames and Series as a tree of numpy arrays and attributes, and back.

:mod:`.nodes` writes a :class:`Tree` as HDF5 nodes (an array becomes a dataset,
anything else a group) and reads it back; this module only maps pandas objects
to trees. A frame is a group with its ``index``, its columns ``c0, c1, ...``
and its ``column_labels`` (an index too), each a *column node* whose
``encoding`` attribute says how its values are kept:

``array``
    numpy values as they are (numbers, bools, datetimes, timedeltas).
``datetimetz``
    tz-aware datetimes as naive UTC datetimes, attr ``tz``.
``masked``
    pandas' nullable dtypes: children ``values`` and ``mask`` (True where NA).
``strings``
    str values (string dtypes, object columns of str): child ``values``, UTF-8
    bytes; ``missing`` (int8: 1 None, 2 NaN, 3 pd.NA) when some are missing;
    ``lengths`` (bytes per value) when some end in NUL, which HDF5 would drop.
``categorical``
    children ``codes`` and ``categories`` (a column node), attr ``ordered``.
``range``
    a ``RangeIndex``: attrs ``start``, ``stop``, ``step``, no data.

Every column node has ``pandas_dtype`` (``str`` of the dtype); an index may
have ``freq``. Columns written before column nodes had an ``encoding`` are
datasets with ``pandas_dtype`` and ``missing`` (JSON row numbers), still read.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import UnsupportedTypeError
from ...pandas_values import is_masked_dtype, label_from_json, label_to_json, pandas_problem

__all__ = ["Tree", "frame_to_tree", "frame_from_tree"]

_MISSING_CODES = {"None": 1, "nan": 2, "NA": 3}


@dataclass
class Tree:
    """One HDF5 node to be: a dataset (``array``) or a group (``children``), with attributes."""

    attrs: dict[str, Any] = field(default_factory=dict)
    array: np.ndarray | None = None
    children: dict[str, Tree] = field(default_factory=dict)

    @property
    def data(self) -> np.ndarray:
        """The array of a dataset node; a group node has none."""
        if self.array is None:
            raise UnsupportedTypeError(f"expected a dataset, found a group holding "
                                       f"{sorted(self.children)}")
        return self.array


# ------------------------------------------------------------------- writing
def frame_to_tree(value: Any, kind: str, name: str) -> Tree:
    """The tree of a DataFrame (``kind="dataframe"``) or Series (``"series"``).

    Raises
    ------
    UnsupportedTypeError
        When ``value`` cannot be stored exactly (see
        :func:`~explorer.pandas_values.pandas_problem`).
    """
    problem = pandas_problem(value)
    if problem:
        raise UnsupportedTypeError(f"result item {name!r}: {problem}")
    series = kind == "series"
    columns = [value] if series else [value.iloc[:, i] for i in range(value.shape[1])]
    tree = Tree({"ncolumns": len(columns), "index_name": label_to_json(value.index.name),
                 "columns": json.dumps([] if series else list(value.columns), default=str),
                 "columns_dtype": "object" if series else str(value.columns.dtype),
                 "columns_name": "null" if series else label_to_json(value.columns.name),
                 "series_name": label_to_json(value.name) if series else "null"})
    tree.children["index"] = _index_tree(value.index)
    for i, column in enumerate(columns):
        tree.children[f"c{i}"] = _values_tree(column)
    if not series:
        tree.children["column_labels"] = _index_tree(value.columns)
    return tree


def _index_tree(index: Any) -> Tree:
    import pandas as pd

    if type(index) is pd.RangeIndex:
        return Tree({"encoding": "range", "pandas_dtype": str(index.dtype), "start": index.start,
                     "stop": index.stop, "step": index.step})
    tree = _values_tree(index)
    if getattr(index, "freq", None) is not None:
        tree.attrs["freq"] = index.freqstr
    return tree


def _values_tree(values: Any) -> Tree:
    """The column node of a Series' or an Index's values."""
    import pandas as pd

    dtype = values.dtype
    attrs: dict[str, Any] = {"pandas_dtype": str(dtype)}
    if isinstance(dtype, np.dtype) and dtype.kind != "O":
        return Tree({**attrs, "encoding": "array"}, array=np.asarray(values.to_numpy()))
    if isinstance(dtype, pd.DatetimeTZDtype):
        naive = np.asarray(values.array.tz_convert(None))
        return Tree({**attrs, "encoding": "datetimetz", "tz": str(dtype.tz)}, array=naive)
    if is_masked_dtype(dtype):
        array = values.array
        fill = np.zeros((), dtype=dtype.numpy_dtype)[()]
        return Tree({**attrs, "encoding": "masked"}, children={
            "values": Tree(array=array.to_numpy(dtype=dtype.numpy_dtype, na_value=fill)),
            "mask": Tree(array=np.asarray(array.isna(), dtype=bool))})
    if isinstance(dtype, pd.CategoricalDtype):
        return Tree({**attrs, "encoding": "categorical", "ordered": bool(dtype.ordered)},
                    children={"codes": Tree(array=np.asarray(values.array.codes)),
                              "categories": _index_tree(dtype.categories)})
    if isinstance(dtype, pd.StringDtype):
        attrs.update(string_storage=dtype.storage,
                     string_na="NA" if dtype.na_value is pd.NA else "nan")
    return _strings_tree(list(values.array), {**attrs, "encoding": "strings"})


def _missing_code(item: Any) -> int:
    if type(item) is str:
        return 0
    return _MISSING_CODES["None" if item is None else "nan" if isinstance(item, float) else "NA"]


def _strings_tree(items: list[Any], attrs: dict[str, Any]) -> Tree:
    codes = np.array([_missing_code(item) for item in items], dtype=np.int8)
    encoded = [item.encode("utf-8", "surrogatepass") if type(item) is str else b""
               for item in items]
    tree = Tree(attrs, children={"values": Tree(array=np.array(encoded, dtype="S")
                                                if encoded else np.zeros(0, dtype="S1"))})
    if codes.any():
        tree.children["missing"] = Tree(array=codes)
    if any(data.endswith(b"\0") for data in encoded):
        tree.children["lengths"] = Tree(array=np.array([len(d) for d in encoded], dtype=np.int64))
    return tree


# ------------------------------------------------------------------- reading
def frame_from_tree(tree: Tree, kind: str) -> Any:
    """The DataFrame or Series a tree written by :func:`frame_to_tree` describes."""
    import pandas as pd

    index = _index_from_tree(tree.children["index"], label_from_json(tree.attrs["index_name"]))
    columns = [_values_from_tree(tree.children[f"c{i}"])
               for i in range(int(tree.attrs["ncolumns"]))]
    if kind == "series":
        return pd.Series(columns[0], index=index, dtype=columns[0].dtype, copy=False,
                         name=label_from_json(tree.attrs["series_name"]))
    labels_name = label_from_json(tree.attrs.get("columns_name", "null"))
    if "column_labels" in tree.children:
        labels = _index_from_tree(tree.children["column_labels"], labels_name)
    else:  # written before column labels were an index node
        labels = pd.Index(json.loads(tree.attrs["columns"]), dtype=tree.attrs["columns_dtype"],
                          name=labels_name)
    frame = pd.DataFrame({i: pd.Series(column, index=index, dtype=column.dtype, copy=False)
                          for i, column in enumerate(columns)}, index=index)
    frame.columns = labels
    return frame


def _index_from_tree(tree: Tree, name: Any) -> Any:
    import pandas as pd

    attrs = tree.attrs
    if attrs.get("encoding") == "range":
        return pd.RangeIndex(int(attrs["start"]), int(attrs["stop"]), int(attrs["step"]),
                             name=name)
    values = _values_from_tree(tree)
    freq = attrs.get("freq")
    if freq and values.dtype.kind == "m":
        return pd.TimedeltaIndex(values, freq=freq, name=name)
    if freq:
        return pd.DatetimeIndex(values, freq=freq, name=name)
    return pd.Index(values, dtype=values.dtype, name=name, copy=False)


def _values_from_tree(tree: Tree) -> Any:
    """The values of a column node: a numpy array or a pandas extension array."""
    import pandas as pd

    attrs = tree.attrs
    encoding = attrs.get("encoding")
    dtype = attrs["pandas_dtype"]
    if encoding == "array":
        return tree.array
    if encoding == "datetimetz":
        return pd.array(tree.array).tz_localize("UTC").tz_convert(attrs["tz"])
    if encoding == "masked":
        array_type = pd.api.types.pandas_dtype(dtype).construct_array_type()
        return array_type(tree.children["values"].array, tree.children["mask"].array)
    if encoding == "categorical":
        categories = _index_from_tree(tree.children["categories"], None)
        return pd.Categorical.from_codes(
            tree.children["codes"].array,
            dtype=pd.CategoricalDtype(categories, ordered=bool(attrs["ordered"])))
    if encoding == "strings":
        return _strings_from_tree(tree)
    if encoding is None:
        return _legacy_values(tree)
    raise UnsupportedTypeError(f"unknown column encoding {encoding!r}")


def _strings_from_tree(tree: Tree) -> Any:
    import pandas as pd

    encoded = tree.children["values"].data.tolist()
    if "lengths" in tree.children:
        encoded = [data.ljust(int(n), b"\0")
                   for data, n in zip(encoded, tree.children["lengths"].data)]
    values = np.empty(len(encoded), dtype=object)
    values[:] = [data.decode("utf-8", "surrogatepass") for data in encoded]
    if "missing" in tree.children:
        markers = {1: None, 2: float("nan"), 3: pd.NA}
        missing = tree.children["missing"].data
        for row in np.flatnonzero(missing):
            values[row] = markers[int(missing[row])]
    if tree.attrs["pandas_dtype"] == "object":
        return values
    na_value = pd.NA if tree.attrs.get("string_na") == "NA" else np.nan
    return pd.array(values, dtype=pd.StringDtype(tree.attrs["string_storage"], na_value=na_value))


def _legacy_values(tree: Tree) -> Any:
    import pandas as pd

    values = tree.data
    dtype = tree.attrs.get("pandas_dtype", str(values.dtype))
    missing = json.loads(tree.attrs.get("missing", "[]"))
    if missing:
        values = values.astype(object)
        values[missing] = None
    return pd.array(values, dtype=dtype) if dtype != "object" else values.astype(object)
