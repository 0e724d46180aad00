"""Reading files written by pypet (0.6-0.7) with PyTables alone: no pypet, no unpickling.

pypet keeps a trajectory in one HDF5 group (``/<name>``) with the branches
``parameters``, ``derived_parameters``, ``config`` and ``results`` and an
``overview`` group of tables (``runs``, ``explorations``, ``info``). Every
parameter or result is a group marked ``SRVC_LEAF`` whose ``SRVC_INIT_CLASS_NAME``
names its pypet class; its values are children marked with ``SRVC_STORE``
(``TABLE``, ``ARRAY``, ``CARRAY``, ``FRAME``...) and the Python type they had
(``SRVC_DATA_COLL_TYPE``, ``SRVC_DATA_SCALAR_TYPE``, or per table column
``SRVC_COLUMN_<col>_...``). Annotations are ``SRVC_AN_*`` attributes, links are
HDF5 soft links. Per-run items sit below a ``run_XXXXXXXX`` group.

This module maps that layout to plain values; :mod:`explorer.combine.pypet`
(which finds it with :func:`explorer.storage.base.reader`) writes them as an
explorer trajectory. The file is opened and read within
:func:`~explorer.storage.hdf5.unpickling.refusing`, so that nothing PyTables or
pandas would unpickle is: a value that is a pickle (a ``PickleParameter``, a
``PickleResult``, an object column of a DataFrame) is :class:`Skipped` unless
``allow_pickle`` is given.
"""
from __future__ import annotations

import dataclasses
import io
import os
import pickle
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse
import tables

from ...errors import FileFormatError, UnsafeDataError
from .hdf5guard import check_file
from .unpickling import refusing

__all__ = [
    "BRANCHES",
    "PARAMETER_BRANCHES",
    "Layout",
    "Leaf",
    "PypetFile",
    "RunRows",
    "Skipped",
]

#: pypet's branches holding parameters (explorer's names are the same).
PARAMETER_BRANCHES = ("parameters", "derived_parameters", "config")
BRANCHES = (*PARAMETER_BRANCHES, "results")

_AN_PREFIX = "SRVC_AN_"
_ARRAY_STORES = ("ARRAY", "CARRAY", "EARRAY", "VLARRAY")
_ARRAY_ID = "__rr__"
_SPARSE_ID = "__spsp__"
_PICKLE_PROTOCOL = "__pckl_prtcl__"
#: pypet's scalar type names (``SCALAR_TYPE`` attributes) and the types they mean.
_SCALAR_TYPES: dict[str, Any] = {
    "bool": bool, "int": int, "float": float, "complex": complex, "str": str, "bytes": bytes,
    "bool_": np.bool_, "bytes_": np.bytes_,
    **{name: getattr(np, name) for name in ("complex128", "complex64", "float32", "float64",
                                            "int8", "int16", "int32", "int64", "uint8",
                                            "uint16", "uint32", "uint64")}}


class _NeedsPickle(Exception):
    """A value stored as a pickle was met and ``allow_pickle`` is off (``args[0]`` says what)."""


class _NoEquivalent(Exception):
    """A value or node explorer has no equivalent for (``args[0]`` says what and why)."""


@dataclasses.dataclass
class Skipped:
    """Why a value was not read.

    Attributes
    ----------
    reason : str
        What the value is, in a few words (``"a pypet PickleParameter (a pickle)"``).
    pickled : bool
        Whether it is a pickle (read with ``allow_pickle``); otherwise explorer
        has no equivalent for it.
    """

    reason: str
    pickled: bool


def _skipped(problem: Exception) -> Skipped:
    return Skipped(str(problem.args[0]), isinstance(problem, _NeedsPickle))


@dataclasses.dataclass
class Leaf:
    """A pypet parameter or result: one HDF5 group marked ``SRVC_LEAF``.

    Attributes
    ----------
    name : str
        Dotted name with its branch, as in pypet (``"results.neuron.run_00000007"``).
    class_name : str
        pypet's class (``"Parameter"``, ``"ArrayParameter"``, ``"Result"``...).
    comment : str
        Its comment.
    group : tables.Group
        Its HDF5 group (values are read from it on demand).
    """

    name: str
    class_name: str
    comment: str
    group: tables.Group


@dataclasses.dataclass
class RunRows:
    """pypet's run table: one entry per run, aligned."""

    idx: np.ndarray
    completed: np.ndarray
    started: np.ndarray
    duration: np.ndarray


@dataclasses.dataclass
class Layout:
    """What a pypet trajectory holds, found by walking its group (values not read yet).

    Attributes
    ----------
    name, comment : str
        The trajectory's name and comment.
    n_runs : int
        Its number of runs (its length in pypet).
    leaves : list of Leaf
        Every parameter and result, in the order found.
    groups : dict
        Comment of every group (dotted name with branch), parents first.
    explored : list of str
        Full names of the explored parameters, in pypet's order.
    runs : RunRows or None
        pypet's run table (None if the file has none).
    links : list of (str, str)
        Each soft or external link: its dotted name and its target.
    annotations : list of (str, dict)
        Each annotated node's dotted name and its annotations.
    unknown : list of str
        Nodes that are neither groups, leaves nor links pypet would write.
    info : dict
        pypet's ``info`` row (``time``, ``version``, ``python``...) if any.
    """

    name: str
    comment: str
    n_runs: int
    leaves: list[Leaf]
    groups: dict[str, str]
    explored: list[str]
    runs: RunRows | None
    links: list[tuple[str, str]]
    annotations: list[tuple[str, dict[str, Any]]]
    unknown: list[str]
    info: dict[str, Any]


def _text(value: Any) -> str:
    """An attribute or table cell as str (PyTables gives numpy strings or bytes)."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _attr(node: tables.Node, name: str, default: Any = None) -> Any:
    return getattr(node._v_attrs, name, default)


class PypetFile:
    """A pypet HDF5 file opened for reading (use as a context manager).

    Parameters
    ----------
    path : str
        The file.

    Raises
    ------
    FileFormatError
        The file is missing, not an HDF5 file, an explorer file, or holds no
        pypet trajectory.
    """

    def __init__(self, path: str):
        self.path = path
        self._frames: pd.HDFStore | None = None
        if not os.path.isfile(path):
            raise FileFormatError(f"no file {path!r}: expected a pypet HDF5 file")
        registry = tables.file._open_files
        before = set(registry.get_handlers_by_name(path))
        with refusing():
            try:
                check_file(path)
                self.handle = tables.open_file(path, "r")
            except Exception as error:  # HDF5's errors, or what check_file finds
                for handle in set(registry.get_handlers_by_name(path)) - before:
                    handle.close()  # left open by PyTables when it failed
                raise FileFormatError(
                    f"{path!r} cannot be opened as an HDF5 file ({_first_line(error)}); "
                    "expected a pypet HDF5 file") from None
        try:
            with refusing():
                self.names = self._trajectory_names()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> PypetFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (and pandas' handle of it, if opened)."""
        if self._frames is not None:
            self._frames.close()
            self._frames = None
        if self.handle.isopen:
            self.handle.close()

    def _trajectory_names(self) -> list[str]:
        root = self.handle.root
        groups = [group for group in root._f_iter_nodes("Group")]
        if _attr(root, "trajectories") is not None or \
                any(_attr(group, "explorer_node") is not None for group in groups):
            raise FileFormatError(
                f"{self.path!r} is an explorer file, not a pypet file; open it with "
                "ex.load_trajectory (import_pypet reads files written by pypet)")
        names = [group._v_name for group in groups
                 if "overview" in group._v_children or
                 any(branch in group._v_children for branch in BRANCHES)]
        if not names:
            raise FileFormatError(
                f"{self.path!r} is an HDF5 file but not a pypet file: no group at its root "
                "holds pypet's 'parameters', 'results' or 'overview' groups")
        return names

    # ------------------------------------------------------------------ layout
    def layout(self, name: str) -> Layout:
        """Walk trajectory ``name``: its leaves, groups, links, annotations, runs."""
        with refusing():
            top = self.handle.get_node(f"/{name}")
            found = Layout(name, _text(_attr(top, "SRVC_INIT_COMMENT", "")), 0, [], {}, [],
                           None, [], [], [], {})
            self._annotations(top, name, found)
            for child in top._f_iter_nodes():
                if isinstance(child, tables.link.Link):
                    found.links.append((child._v_name, _link_target(child, name)))
                elif child._v_name in BRANCHES and isinstance(child, tables.Group):
                    found.groups[child._v_name] = _text(_attr(child, "SRVC_INIT_COMMENT", ""))
                    self._walk(child, child._v_name, name, found)
                elif child._v_name != "overview":
                    found.unknown.append(child._v_name)
            self._overview(top, found)
        return found

    def _walk(self, group: tables.Group, dotted: str, name: str, found: Layout) -> None:
        for child in group._f_iter_nodes():
            full = f"{dotted}.{child._v_name}"
            if isinstance(child, tables.link.Link):
                found.links.append((full, _link_target(child, name)))
            elif not isinstance(child, tables.Group):
                found.unknown.append(full)
            elif _attr(child, "SRVC_LEAF", False):
                found.leaves.append(Leaf(full, _text(_attr(child, "SRVC_INIT_CLASS_NAME", "")),
                                         _text(_attr(child, "SRVC_INIT_COMMENT", "")), child))
                self._annotations(child, full, found)
            else:
                found.groups[full] = _text(_attr(child, "SRVC_INIT_COMMENT", ""))
                self._annotations(child, full, found)
                self._walk(child, full, name, found)

    @staticmethod
    def _annotations(node: tables.Node, dotted: str, found: Layout) -> None:
        if not _attr(node, "SRVC_ANNOTATED", False):
            return
        attrs = node._v_attrs
        notes = {key[len(_AN_PREFIX):]: _plain(attrs[key]) for key in attrs._v_attrnames
                 if key.startswith(_AN_PREFIX)}
        if notes:
            found.annotations.append((dotted, notes))

    def _overview(self, top: tables.Group, found: Layout) -> None:
        # (not ``_v_children.get``: PyTables loads a child on ``[]`` only)
        overview = top._v_children["overview"] if "overview" in top._v_children else None
        tables_ = overview._v_children if isinstance(overview, tables.Group) else {}
        if "explorations" in tables_:
            found.explored = [_text(value) for value in tables_["explorations"].col("explorations")]
        if "info" in tables_ and tables_["info"].nrows:
            row = tables_["info"][0]
            found.info = {field: _plain(row[field]) for field in row.dtype.names}
            found.comment = found.comment or _text(found.info.get("comment", ""))
            found.n_runs = int(found.info.get("length", 0) or 0)
        if "runs" in tables_:
            found.runs = _run_rows(tables_["runs"])
            if len(found.runs.idx):
                found.n_runs = max(found.n_runs, int(found.runs.idx.max()) + 1)

    # ------------------------------------------------------------------ values
    def parameter(self, leaf: Leaf, allow_pickle: bool
                  ) -> tuple[Any, list[Any] | None, Skipped | None]:
        """A parameter's default, its explored range (None if not explored), and why it
        was not read (None if it was): a ``PickleParameter`` with ``allow_pickle``
        off, or a parameter class explorer cannot read (Brian2 quantities...)."""
        try:
            return (*self._parameter(leaf, allow_pickle), None)
        except (_NeedsPickle, _NoEquivalent) as problem:
            return None, None, _skipped(problem)

    def _parameter(self, leaf: Leaf, allow_pickle: bool) -> tuple[Any, list[Any] | None]:
        children = leaf.group._v_children
        with refusing():
            if leaf.class_name == "PickleParameter" or \
                    (_PICKLE_PROTOCOL in children and "data" in children and
                     not isinstance(children["data"], tables.Table)):
                return self._pickled_parameter(leaf, allow_pickle)
            if f"data{_SPARSE_ID}" in children:
                default = _sparse(_value(children[f"data{_SPARSE_ID}"]))
                explored = self._indexed(leaf, f"explored_data{_SPARSE_ID}",
                                         lambda i: f"xspm{_SPARSE_ID}{i:08d}",
                                         lambda node: _sparse(_value(node)))
                return default, explored
            if f"data{_ARRAY_ID}" in children:
                default = _value(children[f"data{_ARRAY_ID}"])
                explored = self._indexed(
                    leaf, f"explored_data{_ARRAY_ID}",
                    lambda i: f"explored{_ARRAY_ID}/set_{i // 1000:05d}/xa_{i:08d}", _value)
                return default, explored
            if leaf.class_name not in ("Parameter", "ArrayParameter", "SparseParameter") or \
                    "data" not in children or not isinstance(children["data"], tables.Table):
                raise _NoEquivalent(f"a pypet {leaf.class_name or 'parameter'} "
                                   f"({', '.join(children) or 'no data'})")
            default = _column(children["data"], "data")[0]
            explored = _column(children["explored_data"], "data") \
                if "explored_data" in children else None
            return default, explored

    def _pickled_parameter(self, leaf: Leaf, allow_pickle: bool) -> tuple[Any, list[Any] | None]:
        if not allow_pickle:
            raise _NeedsPickle(f"a pypet {leaf.class_name or 'parameter'} (a pickle)")
        children = leaf.group._v_children
        default = pickle.loads(_bytes(children["data"]))
        explored = self._indexed(leaf, "explored_data", lambda i: f"xp_{i:08d}",
                                 lambda node: pickle.loads(_bytes(node)))
        return default, explored

    @staticmethod
    def _indexed(leaf: Leaf, table: str, child: Any, read: Any) -> list[Any] | None:
        """An explored range stored as a table of indices into children (each read once)."""
        if table not in leaf.group._v_children:
            return None
        order = [int(i) for i in leaf.group._v_children[table].col("idx")]
        read_once: dict[int, Any] = {}
        for i in order:
            if i not in read_once:
                read_once[i] = read(leaf.group._f_get_child(child(i)))
        return [read_once[i] for i in order]

    def items(self, leaf: Leaf, allow_pickle: bool) -> tuple[dict[str, Any], dict[str, Skipped]]:
        """A result's items (a per-run parameter's value is the one item ``""``), and
        why others were not read (item name, ``""`` for the whole leaf)."""
        if leaf.class_name.endswith("Parameter"):
            default, explored, unread = self.parameter(leaf, allow_pickle)
            if unread is not None:
                return {}, {"": unread}
            if explored is not None:
                return {}, {"": Skipped("an explored parameter below a run group", False)}
            return {"": default}, {}
        if leaf.class_name not in ("Result", "SparseResult", "PickleResult"):
            return {}, {"": Skipped(f"a pypet {leaf.class_name or 'result'}", False)}
        found: dict[str, Any] = {}
        skipped: dict[str, Skipped] = {}
        for child in leaf.group._f_iter_nodes():
            try:
                self._item(leaf, child, child._v_name, allow_pickle, found)
            except (_NeedsPickle, _NoEquivalent) as problem:
                skipped[child._v_name] = _skipped(problem)
        return found, skipped

    def _item(self, leaf: Leaf, node: tables.Node, name: str, allow_pickle: bool,
              found: dict[str, Any]) -> None:
        if isinstance(node, tables.link.Link):
            raise _NoEquivalent(f"a link to {_text(node.target)}")
        with refusing():
            store = _text(_attr(node, "SRVC_STORE", ""))
        if store == "NESTED_GROUP":
            raise _NoEquivalent("a nested group of items")
        if leaf.class_name == "PickleResult" and name != _PICKLE_PROTOCOL:
            if not allow_pickle:
                raise _NeedsPickle("an item of a pypet PickleResult (a pickle)")
            found[name] = pickle.loads(_bytes(node))
            return
        if name == _PICKLE_PROTOCOL:
            return
        if name.endswith(_SPARSE_ID):
            with refusing():
                found[name[:-len(_SPARSE_ID)]] = _sparse(_value(node))
            return
        if store in ("FRAME", "SERIES"):
            found[name] = self._frame(node, name, allow_pickle)
            return
        with refusing():
            try:
                if store in _ARRAY_STORES:
                    found[name] = _value(node)
                elif store == "TABLE":
                    found[name] = pd.DataFrame({column: _column(node, column)
                                                for column in node.colnames})
                elif store == "DICT":
                    found[name] = {column: _column(node, column)[0] for column in node.colnames}
                else:
                    raise _NoEquivalent(f"stored as {store or 'unknown'}")
            except UnsafeDataError:
                if not allow_pickle:
                    raise _NeedsPickle("an HDF5 object array (a pickle)") from None
        if name not in found:  # pickled object array, allowed: read it without the guard
            found[name] = _value(node)

    def _frame(self, node: tables.Node, name: str, allow_pickle: bool) -> Any:
        """A DataFrame or Series in pandas' fixed format.

        The common case (one-level index and columns of numbers, strings, bools or
        times; blocks of numbers, bools or times) is read here without pickles.
        Anything else pandas writes with pickled parts (object columns, MultiIndex,
        categoricals, time zones...), so pandas reads it, only with ``allow_pickle``.
        """
        try:
            with refusing():
                return _fixed_format(node)
        except _NeedsPandas as why:
            if not allow_pickle:
                raise _NeedsPickle(f"a pandas object with pickled parts ({why.args[0]})") \
                    from None
        if self._frames is None:
            self._frames = pd.HDFStore(self.path, mode="r")
        return self._frames.get(node._v_pathname)


class _NeedsPandas(Exception):
    """A pandas object this module does not read itself (``args[0]`` says which part)."""


def _fixed_format(group: tables.Group) -> Any:
    """A DataFrame or Series that pandas stored in its fixed format, read as pandas does
    but with attributes unpickled as plain data only (:class:`_PlainUnpickler`)."""
    kind = _text(_attr(group, "pandas_type", ""))
    encoding = _text(_attr(group, "encoding", "UTF-8") or "UTF-8")
    if kind == "series":
        values = _fixed_array(group, "values")
        return pd.Series(values, index=_fixed_index(group, "index", encoding),
                         name=_plain_attr(group, "name"))
    if kind != "frame" or int(_attr(group, "ndim", 2)) != 2:
        raise _NeedsPandas(f"pandas type {kind!r}")
    columns = _fixed_index(group, "axis0", encoding)
    index = _fixed_index(group, "axis1", encoding)
    parts = []
    for i in range(int(_attr(group, "nblocks", 0))):
        items = _fixed_index(group, f"block{i}_items", encoding)
        values = _fixed_array(group, f"block{i}_values")
        parts.append(pd.DataFrame(values.T, index=index, columns=items))
    if not parts:
        return pd.DataFrame(index=index, columns=columns)
    frame = pd.concat(parts, axis=1) if len(parts) > 1 else parts[0]
    return frame[columns] if len(columns) else frame


def _fixed_array(group: tables.Group, key: str) -> np.ndarray:
    """A values node of pandas' fixed format (pandas' ``read_array``)."""
    node = group._v_children[key]
    if isinstance(node, tables.VLArray) or not isinstance(node, tables.Array):
        raise _NeedsPandas("object values")
    dtype = _attr(node, "value_type")
    dtype = _text(dtype) if dtype is not None else None
    shape = _plain_attr(node, "shape")
    data = np.empty(shape, dtype=dtype) if shape is not None else node.read()
    if dtype and dtype.startswith(("datetime64", "timedelta64")):
        if _plain_attr(node, "tz") is not None:
            raise _NeedsPandas("a time zone")
        data = np.asarray(data, dtype=dtype if "[" in dtype else f"{dtype}[ns]")
    elif dtype and np.dtype(dtype).kind not in "biufcSU":
        raise _NeedsPandas(f"values of type {dtype}")
    return data.T if _attr(node, "transposed", False) else data


def _fixed_index(group: tables.Group, key: str, encoding: str) -> pd.Index:
    """An index node of pandas' fixed format (pandas' ``read_index_node``)."""
    if _text(_attr(group, f"{key}_variety", "regular")) != "regular":
        raise _NeedsPandas("a MultiIndex")
    node = group._v_children[key]
    if isinstance(node, tables.VLArray) or not isinstance(node, tables.Array):
        raise _NeedsPandas("an object index")
    data = node.read()
    shape = _plain_attr(node, "shape")
    if shape is not None and np.prod(shape) == 0:
        value_type = _attr(node, "value_type")
        data = np.empty(shape, dtype=_text(value_type) if value_type is not None else None)
    kind = _text(_attr(node, "kind", ""))
    index_class = _text(_attr(node, "index_class", "") or "")
    name = _plain_attr(node, "name")
    if _plain_attr(node, "tz") is not None or index_class == "period":
        raise _NeedsPandas("a time zone or periods")
    if kind in ("integer", "float", "bool"):
        return pd.Index(np.asarray(data), name=name)
    if kind == "string":
        decoded = np.array([bytes(value).decode(encoding) if isinstance(value, bytes) else
                            str(value) for value in data.ravel().tolist()], dtype=object)
        nan_rep = _attr(node, "nan_rep", "nan")
        nan_rep = _text(nan_rep) if nan_rep is not None else None
        if nan_rep:
            decoded[decoded == nan_rep] = np.nan
        return pd.Index(decoded, name=name)
    if kind.startswith("datetime64"):
        return pd.DatetimeIndex(data.view(kind) if kind != "datetime64" else data, name=name)
    if kind.startswith("timedelta64"):
        return pd.TimedeltaIndex(data.view(kind) if kind != "timedelta64" else data, name=name)
    raise _NeedsPandas(f"an index of kind {kind!r}")


def _plain_attr(node: tables.Node, name: str) -> Any:
    """An attribute PyTables would unpickle (read as its raw bytes while unpickling is
    refused), unpickled as plain data only; other attributes as they are."""
    value = _attr(node, name)
    if isinstance(value, (bytes, np.bytes_)) and bytes(value).endswith(b"."):
        try:
            return _PlainUnpickler(io.BytesIO(bytes(value))).load()
        except Exception:  # anything but plain data: not unpickled
            raise _NeedsPandas(f"attribute {name!r} is a pickled object") from None
    return _plain(value) if isinstance(value, np.generic) else value


# ---------------------------------------------------------------------- helpers
class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain data only (None, numbers, strings, tuples...): it looks up no class,
    so it runs no code from the file (pandas pickles index names and shapes as attributes)."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused to look up {module}.{name}")


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "error message" in line:
            return line.split("error message = ")[-1].strip(" '\"")
    return lines[-1] if lines else type(error).__name__


def _link_target(link: tables.link.Link, name: str) -> str:
    target = _text(link.target)
    prefix = f"/{name}/"
    if isinstance(link, tables.link.SoftLink) and target.startswith(prefix):
        return target[len(prefix):].replace("/", ".")
    return target


def _plain(value: Any) -> Any:
    """A numpy scalar or string as the plain Python value."""
    if isinstance(value, (bytes, np.bytes_)):
        return _text(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _native(value: Any, scalar_type: str | None) -> Any:
    """A scalar read by PyTables as the type pypet stored it as."""
    if scalar_type == "str":
        return _text(value)
    if isinstance(value, np.ndarray):  # a scalar read back as a 1-element array
        value = value.reshape(-1)[0]
    kind = _SCALAR_TYPES.get(scalar_type or "")
    if kind is None:
        return _plain(value)
    if kind in (bool, int, float, complex):
        return kind(value.item() if isinstance(value, np.generic) else value)
    if kind is bytes:
        return bytes(value)
    return kind(value)


def _value(node: tables.Leaf) -> Any:
    """An ``ARRAY``/``CARRAY``/``EARRAY``/``VLARRAY`` value, as the Python type pypet stored."""
    data = node.read()
    collection = _text(_attr(node, "SRVC_DATA_COLL_TYPE", ""))
    scalar_type = _attr(node, "SRVC_DATA_SCALAR_TYPE")
    scalar_type = _text(scalar_type) if scalar_type is not None else None
    if collection == "COLL_SCALAR":
        return _native(data, scalar_type)
    if collection in ("COLL_LIST", "COLL_TUPLE"):
        items = [_native(item, scalar_type) for item in np.asarray(data).tolist()] \
            if isinstance(data, np.ndarray) else list(data)
        return tuple(items) if collection == "COLL_TUPLE" else items
    if collection == "COLL_EMPTY_DICT":
        return {}
    if isinstance(data, np.ndarray) and scalar_type == "str" and data.dtype.kind == "S":
        return np.char.decode(data, "utf-8")
    return data


def _bytes(node: tables.Leaf) -> bytes:
    """A bytes scalar (a pickle) stored by pypet as a fixed-length string array."""
    data = node.read()
    return bytes(np.asarray(data).reshape(-1)[0]) if isinstance(data, np.ndarray) else \
        bytes(data)


def _column(table: tables.Table, column: str) -> list[Any]:
    """A table column as Python values of the types pypet stored."""
    scalar_type = _attr(table, f"SRVC_COLUMN_{column}_SCALAR_TYPE")
    scalar_type = _text(scalar_type) if scalar_type is not None else None
    collection = _text(_attr(table, f"SRVC_COLUMN_{column}_COLL_TYPE", "COLL_SCALAR"))
    data = table.col(column)
    if collection in ("COLL_SCALAR", "") or data.ndim == 1:
        return [_native(value, scalar_type) for value in data]
    if collection in ("COLL_LIST", "COLL_TUPLE"):
        rows = [[_native(item, scalar_type) for item in row] for row in data.tolist()]
        return [tuple(row) for row in rows] if collection == "COLL_TUPLE" else rows
    return list(data)


def _sparse(hex_text: Any) -> Any:
    """A scipy.sparse matrix from pypet's hex-encoded ``.npz`` (read without pickles)."""
    matrix = scipy.sparse.load_npz(io.BytesIO(bytes.fromhex(_text(hex_text))))
    return matrix


def _run_rows(table: tables.Table) -> RunRows:
    """pypet's ``overview/runs`` table as aligned arrays (seconds since the epoch)."""
    names = table.colnames
    idx = table.col("idx").astype(np.int64) if "idx" in names else np.arange(table.nrows)
    completed = table.col("completed").astype(bool) if "completed" in names else \
        np.zeros(len(idx), dtype=bool)
    started = table.col("timestamp").astype(float) if "timestamp" in names else \
        np.full(len(idx), np.nan)
    if "finish_timestamp" in names:
        duration = table.col("finish_timestamp").astype(float) - started
    elif "runtime" in names:
        duration = np.array([_seconds(_text(text)) for text in table.col("runtime")])
    else:
        duration = np.full(len(idx), np.nan)
    duration = np.where(np.isfinite(duration) & (duration >= 0), duration, np.nan)
    return RunRows(idx, completed, started, duration)


def _seconds(text: str) -> float:
    """``"0:00:00.164831"`` (pypet's runtime) in seconds; NaN if not that form."""
    try:
        hours, minutes, seconds = text.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return float("nan")
