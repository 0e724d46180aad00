"""One value as HDF5 nodes, and back: the codec for parameters and results.

Every node written here carries a ``kind`` attribute (see :mod:`explorer.values`)
that says how to turn it back into the same Python type. Arrays are plain HDF5
datasets; strings are UTF-8 bytes; a DataFrame is a group of column datasets.
Nothing here pickles unless the kind is ``"pickle"``, and reading that kind
without permission raises :class:`~explorer.errors.UnsafeDataError`.
"""
from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import tables

from ...errors import UnsafeDataError, UnsupportedTypeError
from ...values import NUMBER_TYPES, is_uniform, parameter_kind

__all__ = ["write_value", "read_value", "to_array", "from_array", "attr", "FILTERS_SIZE"]

#: Arrays at least this large (bytes) are chunked and compressed.
FILTERS_SIZE = 64 * 1024


def attr(node: tables.Node, name: str, default: Any = None) -> Any:
    """An attribute as a plain Python value (numpy strings and scalars unwrapped)."""
    value = getattr(node._v_attrs, name, default)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return value


def _label(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------- arrays
def to_array(value: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """A numpy array PyTables can write, and attributes needed to undo the conversion."""
    array = np.asarray(value)
    extra: dict[str, Any] = {}
    if array.dtype.kind == "U":
        extra["unicode"] = True
        array = np.char.encode(array, "utf-8") if array.size else array.astype("S1")
    elif array.dtype.kind in "mM":
        extra["dtype"] = array.dtype.str
        array = array.view(np.int64)
    elif array.dtype.kind == "O":
        raise UnsupportedTypeError(f"cannot store an object array {array!r:.60}")
    if array.dtype.kind == "S" and array.dtype.itemsize == 0:
        array = array.astype("S1")
    return array, extra


def from_array(array: np.ndarray, node_attrs: dict[str, Any]) -> np.ndarray:
    """Undo :func:`to_array`."""
    if node_attrs.get("unicode"):
        array = np.char.decode(array, "utf-8")
    elif node_attrs.get("dtype"):
        array = array.view(np.dtype(node_attrs["dtype"]))
    return array


def _write_array(where: tables.Group, name: str, array: np.ndarray,
                 filters: tables.Filters) -> tables.Leaf:
    handle = where._v_file
    if array.nbytes >= FILTERS_SIZE and array.ndim > 0 and array.size > 0:
        return handle.create_carray(where, name, obj=array, filters=filters)
    return handle.create_array(where, name, obj=array)


def _set_attrs(node: tables.Node, **attrs: Any) -> None:
    for key, value in attrs.items():
        setattr(node._v_attrs, key, value)


# ------------------------------------------------------------------- writing
def write_value(where: tables.Group, name: str, value: Any, kind: str,
                filters: tables.Filters, comment: str | None = None) -> tables.Node:
    """Write ``value`` (of ``kind``) as node ``name`` below ``where``."""
    handle = where._v_file
    if kind in ("list", "tuple") and not is_uniform(value):
        node = handle.create_group(where, name)
        for i, element in enumerate(value):
            write_value(node, f"item{i}", element, parameter_kind(name, element), filters)
        _set_attrs(node, mixed=True, length=len(value))
    elif kind == "int" and not -2**63 <= value < 2**63:
        node = handle.create_array(where, name, obj=np.bytes_(str(value).encode()))
        _set_attrs(node, bigint=True)
    elif kind in ("bool", "int", "float", "complex", "npscalar", "ndarray", "list", "tuple", "str"):
        raw = value.encode("utf-8") if kind == "str" else value
        if kind in ("list", "tuple") and len(value) == 0:
            raw = np.zeros(0)
        array, extra = to_array(np.bytes_(raw) if kind == "str" else raw)
        node = _write_array(where, name, array, filters)
        _set_attrs(node, **extra)
    elif kind == "sparse":
        node = handle.create_group(where, name)
        coo = value.tocoo()
        for part in ("row", "col", "data"):
            _write_array(node, part, np.asarray(getattr(coo, part)), filters)
        _set_attrs(node, format=value.format, shape=json.dumps(list(value.shape)),
                   container="matrix" if type(value).__name__.endswith("matrix") else "array")
    elif kind == "none":
        node = handle.create_group(where, name)
    elif kind in ("dataframe", "series"):
        node = _write_frame(where, name, value, kind, filters)
    elif kind == "dict":
        from ...values import result_kind

        node = handle.create_group(where, name)
        keys = list(value)
        for i, key in enumerate(keys):
            write_value(node, f"item{i}", value[key], result_kind(key, value[key], True), filters)
        _set_attrs(node, keys=json.dumps(keys))
    elif kind == "pickle":
        node = _write_array(where, name, np.frombuffer(pickle.dumps(value, protocol=5),
                                                       dtype=np.uint8), filters)
    else:  # pragma: no cover - kinds come from explorer.values
        raise UnsupportedTypeError(f"no codec for kind {kind!r} of {name!r}")
    _set_attrs(node, kind=kind)
    if comment is not None:
        _set_attrs(node, comment=comment)
    return node


def _write_frame(where: tables.Group, name: str, value: Any, kind: str,
                 filters: tables.Filters) -> tables.Group:
    import pandas as pd

    frame = value.to_frame(name="__series__") if kind == "series" else value
    for axis_name, axis in (("index", frame.index), ("columns", frame.columns)):
        if isinstance(axis, pd.MultiIndex):
            raise UnsupportedTypeError(
                f"result item {name!r}: a MultiIndex on the {axis_name} cannot be stored; "
                "reset it to columns first (frame.reset_index())")
    node = where._v_file.create_group(where, name)
    _write_column(node, "index", frame.index.to_numpy(), str(frame.index.dtype), filters, name)
    for i, column in enumerate(frame.columns):
        series = frame.iloc[:, i]
        _write_column(node, f"c{i}", series.to_numpy(), str(series.dtype), filters,
                      f"{name}[{column!r}]")
    labels = [] if kind == "series" else [_label(c) for c in frame.columns]
    try:
        encoded_labels = json.dumps(labels)
    except TypeError:
        raise UnsupportedTypeError(
            f"result item {name!r}: column labels must be str or numbers, got "
            f"{[type(c).__name__ for c in labels]}") from None
    _set_attrs(node, columns=encoded_labels, columns_dtype=str(frame.columns.dtype),
               ncolumns=len(frame.columns), index_name=json.dumps(_label(frame.index.name)),
               columns_name=json.dumps(_label(frame.columns.name)) if kind == "dataframe"
               else "null",
               series_name=json.dumps(_label(value.name)) if kind == "series" else "null")
    return node


def _write_column(where: tables.Group, name: str, values: np.ndarray, dtype: str,
                  filters: tables.Filters, what: str) -> None:
    if values.dtype.kind == "O":
        items = values.tolist()
        missing = [i for i, item in enumerate(items) if item is None or item != item]
        present = [item for item in items if not (item is None or item != item)]
        if all(isinstance(item, str) for item in present):
            values = np.array(["" if (i is None or i != i) else i for i in items], dtype=str)
        else:
            values = np.array(items)
            missing = []
            if values.dtype.kind not in "biufcU":
                raise UnsupportedTypeError(
                    f"column {what} holds mixed Python objects; only numbers, booleans, "
                    "strings and dates can be stored")
    else:
        missing = []
    array, extra = to_array(values)
    node = _write_array(where, name, array, filters)
    _set_attrs(node, pandas_dtype=dtype, missing=json.dumps(missing), **extra)


# ------------------------------------------------------------------- reading
def read_value(node: tables.Node, allow_pickle: bool = False) -> Any:
    """Read a node written by :func:`write_value`."""
    kind = attr(node, "kind")
    if kind == "pickle":
        if not allow_pickle:
            raise UnsafeDataError(
                f"{node._v_pathname!r} in {node._v_file.filename!r} is pickled; reading it "
                "would run code from the file. Load with allow_pickle=True if you trust it")
        return pickle.loads(node.read().tobytes())
    if kind in ("list", "tuple") and attr(node, "mixed"):
        items = [read_value(node._f_get_child(f"item{i}"), allow_pickle)
                 for i in range(int(attr(node, "length")))]
        return items if kind == "list" else tuple(items)
    if kind == "int" and attr(node, "bigint"):
        return int(bytes(node.read()[()]).decode())
    if kind in ("bool", "int", "float", "complex", "str", "npscalar", "ndarray", "list", "tuple"):
        raw = node.read()
        array = from_array(np.asarray(raw), _attrs(node))
        if kind == "str":
            return bytes(array[()]).decode("utf-8")
        if kind in ("bool", "int", "float", "complex"):
            return NUMBER_TYPES[kind](array[()])
        if kind == "npscalar":
            return array[()]
        if kind == "list":
            return array.tolist()
        if kind == "tuple":
            return tuple(array.tolist())
        return array
    if kind == "sparse":
        import scipy.sparse

        shape = tuple(json.loads(attr(node, "shape")))
        coo = scipy.sparse.coo_matrix((node.data.read(), (node.row.read(), node.col.read())),
                                      shape=shape)
        matrix = coo.asformat(attr(node, "format"))
        if attr(node, "container") == "array":
            matrix = getattr(scipy.sparse, f"{attr(node, 'format')}_array")(matrix)
        return matrix
    if kind == "none":
        return None
    if kind in ("dataframe", "series"):
        return _read_frame(node, kind)
    if kind == "dict":
        keys = json.loads(attr(node, "keys"))
        return {key: read_value(node._f_get_child(f"item{i}"), allow_pickle)
                for i, key in enumerate(keys)}
    raise UnsupportedTypeError(f"{node._v_pathname!r} has unknown kind {kind!r}")


def _attrs(node: tables.Node) -> dict[str, Any]:
    return {name: attr(node, name) for name in node._v_attrs._f_list("user")}


def _read_column(node: tables.Leaf) -> Any:
    import pandas as pd

    info = _attrs(node)
    values = from_array(node.read(), info)
    dtype = info.get("pandas_dtype", str(values.dtype))
    missing = json.loads(info.get("missing", "[]"))
    if missing:
        values = values.astype(object)
        values[missing] = None
    return pd.array(values, dtype=dtype) if dtype != "object" else values.astype(object)


def _read_frame(node: tables.Group, kind: str) -> Any:
    import pandas as pd

    labels = json.loads(attr(node, "columns"))
    index = pd.Index(_read_column(node.index), name=json.loads(attr(node, "index_name")))
    ncolumns = int(attr(node, "ncolumns"))
    columns = [_read_column(node._f_get_child(f"c{i}")) for i in range(ncolumns)]
    if kind == "series":
        return pd.Series(columns[0], index=index, name=json.loads(attr(node, "series_name")))
    column_index = pd.Index(labels, dtype=attr(node, "columns_dtype"),
                            name=json.loads(attr(node, "columns_name", "null")))
    data = {i: column for i, column in enumerate(columns)}
    frame = pd.DataFrame(data, index=index)
    frame.columns = column_index
    return frame
