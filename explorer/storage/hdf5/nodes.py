"""One value as HDF5 nodes, and back: the codec for parameters and results.

Every node written here carries a ``kind`` attribute (see :mod:`explorer.values`)
that says how to turn it back into the same Python type. Arrays are plain HDF5
datasets (with attribute ``dtype`` where HDF5 would not give their dtype back);
strings are UTF-8 bytes; a DataFrame is a group of column nodes (:mod:`.pandas_codec`).
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
from ...values import NUMBER_TYPES, is_uniform, parameter_kind, result_kind
from .checksum import has_checksum, seal_tree, verify_tree
from .hdf5guard import check_chunks, copy_exactly
from .pandas_codec import Tree, frame_from_tree, frame_to_tree

__all__ = ["write_value", "read_value", "copy_node", "to_array", "from_array", "attr",
           "FILTERS_SIZE"]

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


# --------------------------------------------------------------------- arrays
def to_array(value: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """A numpy array PyTables can write, and attributes needed to undo the conversion.

    Unicode arrays become UTF-8 bytes, datetimes and timedeltas int64, and
    arrays of the other byte order native ones; attribute ``dtype`` then keeps
    the original dtype (itemsize, unit, byte order), which HDF5 would not.
    """
    array = np.asarray(value)
    original = array.dtype
    extra: dict[str, Any] = {}
    if original.kind == "O":
        raise UnsupportedTypeError(f"cannot store an object array {array!r:.60}")
    if not original.isnative:
        array = array.astype(original.newbyteorder("="))
    if original.kind == "U":
        extra["unicode"] = True
        array = np.char.encode(array, "utf-8", "surrogatepass") if array.size else \
            array.astype("S1")
    elif original.kind in "mM":
        array = array.view(np.int64)
    if array.dtype.kind == "S" and array.dtype.itemsize == 0:
        array = array.astype("S1")
    if original.kind in "UmM" or not original.isnative:
        extra["dtype"] = original.str
    return array, extra


def from_array(array: np.ndarray, node_attrs: dict[str, Any]) -> np.ndarray:
    """Undo :func:`to_array`."""
    dtype = np.dtype(node_attrs["dtype"]) if node_attrs.get("dtype") else None
    if node_attrs.get("unicode"):
        array = np.char.decode(array, "utf-8", "surrogatepass")
    elif dtype is not None and dtype.kind in "mM":
        array = array.view(dtype.newbyteorder("="))
    if dtype is not None and array.dtype != dtype:
        array = array.astype(dtype)
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
_ARRAY_KINDS = ("bool", "int", "float", "complex", "npscalar", "ndarray", "list", "tuple")


def write_value(where: tables.Group, name: str, value: Any, kind: str,
                filters: tables.Filters, comment: str | None = None) -> tables.Node:
    """Write ``value`` (of ``kind``) as node ``name`` below ``where``, sealed with checksums."""
    node = _write_value(where, name, value, kind, filters, comment)
    seal_tree(node)
    return node


def _write_value(where: tables.Group, name: str, value: Any, kind: str,
                 filters: tables.Filters, comment: str | None = None) -> tables.Node:
    handle = where._v_file
    if kind in ("list", "tuple") and not is_uniform(value):
        node = handle.create_group(where, name)
        for i, element in enumerate(value):
            _write_value(node, f"item{i}", element, parameter_kind(name, element), filters)
        _set_attrs(node, mixed=True, length=len(value))
    elif kind == "int" and not -2**63 <= value < 2**63:
        node = handle.create_array(where, name, obj=np.bytes_(str(value).encode()))
        _set_attrs(node, bigint=True)
    elif kind == "str" or kind == "npscalar" and value.dtype.kind in "US":
        node = _write_text(where, name, value)
    elif kind in _ARRAY_KINDS:
        empty = kind in ("list", "tuple") and len(value) == 0
        array, extra = to_array(np.zeros(0) if empty else value)
        node = _write_array(where, name, array, filters)
        _set_attrs(node, **extra)
        if kind in ("list", "tuple") and not empty and isinstance(value[0], np.generic):
            _set_attrs(node, items="npscalar")
    elif kind == "masked":
        node = _write_masked(where, name, value, filters)
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
        node = _write_tree(where, name, frame_to_tree(value, kind, name), filters)
    elif kind == "dict":
        node = handle.create_group(where, name)
        keys = list(value)
        for i, key in enumerate(keys):
            _write_value(node, f"item{i}", value[key], result_kind(key, value[key], True),
                         filters)
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


def _write_text(where: tables.Group, name: str,
                value: str | np.str_ | np.bytes_) -> tables.Leaf:
    """A str (or numpy str or bytes scalar) as a scalar of UTF-8 bytes.

    HDF5 drops a string's trailing NULs: attribute ``nbytes`` then keeps its length.
    """
    data = bytes(value) if isinstance(value, bytes) else \
        value.encode("utf-8", "surrogatepass")  # lone surrogates too
    node = where._v_file.create_array(where, name,
                                      obj=np.array(data, dtype=f"S{max(1, len(data))}"))
    if data.endswith(b"\0"):
        _set_attrs(node, nbytes=len(data))
    if isinstance(value, np.generic):
        _set_attrs(node, text="bytes_" if isinstance(value, bytes) else "str_")
    return node


def _write_masked(where: tables.Group, name: str, value: np.ma.MaskedArray,
                  filters: tables.Filters) -> tables.Group:
    """A masked array as a group: ``data``, ``mask`` (unless it has none) and ``fill_value``.

    The fill value is kept only when it is not numpy's default for the dtype
    (numpy casts that default with an overflow warning for small integers).
    """
    node = where._v_file.create_group(where, name)
    _write_value(node, "data", np.asarray(value.data), "ndarray", filters)
    if value.mask is not np.ma.nomask:
        _write_value(node, "mask", np.ma.getmaskarray(value), "ndarray", filters)
    fill_value = np.asarray(value.fill_value)
    if fill_value.tolist() != np.asarray(np.ma.default_fill_value(value)).tolist():
        _write_value(node, "fill_value", fill_value, "ndarray", filters)
    return node


def _write_tree(where: tables.Group, name: str, tree: Tree,
                filters: tables.Filters) -> tables.Node:
    """Write a :class:`~.pandas_codec.Tree`: its array as a dataset, or a group of its children."""
    if tree.array is not None:
        array, extra = to_array(tree.array)
        node = _write_array(where, name, array, filters)
        _set_attrs(node, **extra)
    else:
        node = where._v_file.create_group(where, name)
        for child, subtree in tree.children.items():
            _write_tree(node, child, subtree, filters)
    _set_attrs(node, **tree.attrs)
    return node


# ------------------------------------------------------------------- reading
def read_value(node: tables.Node, allow_pickle: bool = False) -> Any:
    """Read a node written by :func:`write_value`, checked against its checksums.

    Raises
    ------
    ChecksumError
        The node or one below it does not match its checksum.
    """
    verify_tree(node)
    for leaf in [node] if isinstance(node, tables.Leaf) else node._f_walknodes("Leaf"):
        check_chunks(leaf)
    return _read_value(node, allow_pickle)


def _read_value(node: tables.Node, allow_pickle: bool = False) -> Any:
    kind = attr(node, "kind")
    if kind == "pickle":
        if not allow_pickle:
            raise UnsafeDataError(
                f"{node._v_pathname!r} in {node._v_file.filename!r} is pickled; reading it "
                "would run code from the file. Load with allow_pickle=True if you trust it")
        return pickle.loads(node.read().tobytes())
    if kind in ("list", "tuple") and attr(node, "mixed"):
        items = [_read_value(node._f_get_child(f"item{i}"), allow_pickle)
                 for i in range(int(attr(node, "length")))]
        return items if kind == "list" else tuple(items)
    if kind == "int" and attr(node, "bigint"):
        return int(bytes(node.read()[()]).decode())
    if kind == "str" or kind == "npscalar" and attr(node, "text"):
        return _read_text(node, kind)
    if kind in _ARRAY_KINDS:
        array = from_array(np.asarray(node.read()), _attrs(node))
        if kind in ("bool", "int", "float", "complex"):
            return NUMBER_TYPES[kind](array[()])
        if kind == "npscalar":
            return array[()]
        if kind in ("list", "tuple"):
            items = list(array) if attr(node, "items") == "npscalar" else array.tolist()
            return items if kind == "list" else tuple(items)
        return array
    if kind == "masked":
        mask = _read_value(node.mask) if "mask" in node else np.ma.nomask
        fill_value = _read_value(node.fill_value) if "fill_value" in node else None
        return np.ma.MaskedArray(_read_value(node.data), mask=mask, fill_value=fill_value)
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
        return frame_from_tree(_read_tree(node), kind)
    if kind == "dict":
        keys = json.loads(attr(node, "keys"))
        return {key: _read_value(node._f_get_child(f"item{i}"), allow_pickle)
                for i, key in enumerate(keys)}
    raise UnsupportedTypeError(f"{node._v_pathname!r} has unknown kind {kind!r}")


def _read_text(node: tables.Leaf, kind: str) -> str | np.str_ | np.bytes_:
    """Undo :func:`_write_text`."""
    if not isinstance(node, tables.Array) or node.shape != () or node.dtype.kind != "S":
        raise ValueError(f"{node._v_pathname!r} of kind {kind!r} is not a scalar of bytes")
    attrs = _attrs(node)
    data = bytes(node.read()[()]).ljust(int(attrs.get("nbytes", 0)), b"\0")
    if attrs.get("text") == "bytes_":
        return np.bytes_(data)
    text = data.decode("utf-8", "surrogatepass")
    return np.str_(text) if kind == "npscalar" else text


def _attrs(node: tables.Node) -> dict[str, Any]:
    return {name: attr(node, name) for name in node._v_attrs._f_list("user")}


def _read_tree(node: tables.Node) -> Tree:
    """The :class:`~.pandas_codec.Tree` of a node written by :func:`_write_tree`."""
    attrs = _attrs(node)
    if isinstance(node, tables.Leaf):
        return Tree(attrs, array=from_array(node.read(), attrs))
    return Tree(attrs, children={child._v_name: _read_tree(child)
                                 for child in node._f_iter_nodes()})


def copy_node(node: tables.Node, target: tables.Group, name: str) -> tables.Node:
    """Copy a node explorer wrote (a value node, a group of them) into ``target`` as ``name``.

    HDF5 copies it byte for byte where it can (:func:`.hdf5guard.copy_exactly`);
    else PyTables copies it, after checking it against its checksums, and the
    copy is sealed anew (PyTables drops a string's trailing NULs, which the
    ``nbytes`` attribute gives back when read).
    """
    if not copy_exactly(node, target, name):
        verify_tree(node)
        copy = node._f_copy(newparent=target, newname=name, recursive=True)
        if has_checksum(node):
            seal_tree(copy)
    return target._f_get_child(name)
