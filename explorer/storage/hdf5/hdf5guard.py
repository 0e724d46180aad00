"""PyTables never crashes on a damaged file's attributes: explorer checks them first.

Two of PyTables' C reads crash the interpreter on damaged bytes instead of
raising: listing a node's attributes (done whenever PyTables builds a node's
attribute set) decodes each name as UTF-8 and crashes on a name that is not,
and opening a file reads the root's ``PYTABLES_FORMAT_VERSION`` and crashes
when HDF5 cannot (it then builds a string from a NULL pointer). This module
makes the same HDF5 calls through :mod:`ctypes`, on the very HDF5 library
PyTables loaded, and raises :class:`~explorer.errors.FileFormatError` where
PyTables would crash: :func:`install` (run at import) lists attribute names in
place of PyTables, and :func:`check_file` runs before a file is opened.

Where that library cannot be found (or is not the version PyTables reports),
the guard is off (:data:`ACTIVE` is false) and PyTables reads as it does alone.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys
from typing import Any

import tables
import tables.attributeset
import tables.hdf5extension

from .damage import damaged

__all__ = ["ACTIVE", "check_file", "check_chunks", "attribute_names", "install", "copy_exactly"]

_hid = ctypes.c_int64  # hid_t since HDF5 1.10 (PyTables 3.11 needs 1.10.5 or newer)
_herr = ctypes.c_int
_hsize = ctypes.c_uint64
_ITERATED = ctypes.CFUNCTYPE(_herr, _hid, ctypes.c_char_p, ctypes.c_void_p, ctypes.py_object)
#: ``H5Dchunk_iter``'s callback: chunk offset, filter mask, address, size, data.
_CHUNK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_hsize), ctypes.c_uint, ctypes.c_uint64,
                          _hsize, ctypes.py_object)
_H5P_DEFAULT = 0
_H5F_ACC_RDONLY = 0
_H5_INDEX_CRT_ORDER, _H5_ITER_NATIVE = 1, 2  # as PyTables lists attributes
_H5T_STRING = 3
_H5S_NULL = 2
_VERSION_ATTRIBUTE = b"PYTABLES_FORMAT_VERSION"  # the root attribute PyTables reads in C
_LARGEST_STRING = 1 << 20  # bytes; PyTables' own version strings are a few


def _signatures(lib: ctypes.PyDLL) -> None:
    """Declare argument and result types of every function used."""
    char_p, void_p, uint_p = ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint)
    for name, restype, argtypes in (
            ("H5get_libversion", _herr, [uint_p, uint_p, uint_p]),
            ("H5Fopen", _hid, [char_p, ctypes.c_uint, _hid]),
            ("H5Fclose", _herr, [_hid]),
            ("H5Ocopy", _herr, [_hid, char_p, _hid, char_p, _hid, _hid]),
            ("H5Aiterate2", _herr, [_hid, ctypes.c_int, ctypes.c_int, ctypes.POINTER(_hsize),
                                    _ITERATED, ctypes.py_object]),
            ("H5Aopen_by_name", _hid, [_hid, char_p, char_p, _hid, _hid]),
            ("H5Aget_type", _hid, [_hid]),
            ("H5Aget_space", _hid, [_hid]),
            ("H5Aread", _herr, [_hid, _hid, void_p]),
            ("H5Aclose", _herr, [_hid]),
            ("H5Tget_class", ctypes.c_int, [_hid]),
            ("H5Tis_variable_str", ctypes.c_int, [_hid]),
            ("H5Tget_size", ctypes.c_size_t, [_hid]),
            ("H5Tclose", _herr, [_hid]),
            ("H5Sget_simple_extent_type", ctypes.c_int, [_hid]),
            ("H5Sget_simple_extent_npoints", ctypes.c_int64, [_hid]),
            ("H5Sclose", _herr, [_hid]),
            ("H5free_memory", _herr, [void_p]),
            ("H5Fget_filesize", _herr, [_hid, ctypes.POINTER(_hsize)])):
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    if hasattr(lib, "H5Dchunk_iter"):  # HDF5 1.14 and newer: check_chunks needs it
        lib.H5Dchunk_iter.restype = _herr
        lib.H5Dchunk_iter.argtypes = [_hid, _hid, _CHUNK, ctypes.py_object]


def _candidates() -> list[str]:
    """Where PyTables' HDF5 may be: its extension (which resolves symbols through the
    library it links), the mapped libhdf5 next to ``tables``, the one in ``tables.libs``."""
    found = [tables.hdf5extension.__file__]
    package = os.path.dirname(tables.__file__)
    folders = (package + ".libs", package, os.path.join(os.path.dirname(package), "tables.libs"))
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/maps") as maps:
                mapped = {line.split(None, 5)[-1].strip() for line in maps if "hdf5" in line}
        except OSError:
            mapped = set()
        found += sorted(path for path in mapped if os.path.basename(path).startswith("libhdf5")
                        and not os.path.basename(path).startswith("libhdf5_hl")
                        and os.path.dirname(path) in folders)
    for folder in folders:
        found += sorted(glob.glob(os.path.join(folder, "libhdf5[-.]*"))
                        + glob.glob(os.path.join(folder, "hdf5*.dll")))
    return found


def _load() -> ctypes.PyDLL | None:
    """PyTables' HDF5 library, with its functions declared; None if not found.

    A ``PyDLL`` keeps the GIL during calls, as PyTables' own calls do (HDF5 is
    rarely built thread-safe)."""
    for path in _candidates():
        try:
            lib = ctypes.PyDLL(path)
            _signatures(lib)
        except (OSError, AttributeError):
            continue
        numbers = [ctypes.c_uint() for _ in range(3)]
        if lib.H5get_libversion(*numbers) < 0:
            continue
        if ".".join(str(number.value) for number in numbers) == \
                tables.hdf5_version.split("-")[0]:
            return lib
    return None


_lib = _load()
#: Whether the guard found PyTables' HDF5 library and checks attributes.
ACTIVE = _lib is not None


@_ITERATED
def _collect(location: int, name: bytes, info: Any, names: list[bytes]) -> int:
    names.append(name)
    return 0


def attribute_names(object_id: int) -> list[bytes] | None:
    """The names of the attributes of an open HDF5 object, as bytes; None if HDF5
    cannot list them (or the guard is off)."""
    if _lib is None:
        return None
    names: list[bytes] = []
    if _lib.H5Aiterate2(object_id, _H5_INDEX_CRT_ORDER, _H5_ITER_NATIVE, None, _collect,
                        names) < 0:
        return None
    return names


def _decoded(names: list[bytes] | None, filename: str, where: str) -> list[str]:
    """``names`` as str, as PyTables decodes them; a FileFormatError where it would crash."""
    if names is None:
        raise damaged(filename, where, "HDF5 cannot list its attributes")
    try:
        return [name.decode("utf-8") for name in names]
    except UnicodeDecodeError:
        bad = next(name for name in names if not _is_utf8(name))
        raise damaged(filename, where, f"attribute name {bad!r} is not valid UTF-8") from None


def _is_utf8(name: bytes) -> bool:
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _list_attributes(self: tables.attributeset.AttributeSet, node: tables.Node) -> list[str]:
    """Stands in for PyTables' ``AttributeSet._g_list_attr``: the node's attribute
    names, or a FileFormatError naming the file and the node."""
    return _decoded(attribute_names(node._v_objectid), node._v_file.filename,
                    f"node {node._v_pathname!r}")


def _check_version_attribute(file_id: int, filename: str) -> None:
    """Raise FileFormatError unless PyTables can read the root's format version."""
    assert _lib is not None
    what = f"root attribute {_VERSION_ATTRIBUTE.decode()}"
    attribute = _lib.H5Aopen_by_name(file_id, b".", _VERSION_ATTRIBUTE, _H5P_DEFAULT,
                                     _H5P_DEFAULT)
    if attribute < 0:
        raise damaged(filename, what, "HDF5 cannot open it")
    kind = space = -1
    try:
        kind, space = _lib.H5Aget_type(attribute), _lib.H5Aget_space(attribute)
        if kind < 0 or space < 0:
            raise damaged(filename, what, "HDF5 cannot read its type or shape")
        if _lib.H5Tget_class(kind) != _H5T_STRING:
            raise damaged(filename, what, "it is not a string")
        empty = _lib.H5Sget_simple_extent_type(space) == _H5S_NULL
        variable = _lib.H5Tis_variable_str(kind)
        if variable < 0 or (not (empty and variable == 0)
                            and _lib.H5Sget_simple_extent_npoints(space) != 1):
            raise damaged(filename, what, "it is not one string")
        if variable:
            pointer = ctypes.c_void_p()
            if _lib.H5Aread(attribute, kind, ctypes.byref(pointer)) < 0 or not pointer.value:
                raise damaged(filename, what, "HDF5 cannot read it")
            _lib.H5free_memory(pointer)
        elif not empty:
            size = _lib.H5Tget_size(kind)
            if not 0 < size <= _LARGEST_STRING:
                raise damaged(filename, what, f"its size ({size} bytes) is out of range")
            if _lib.H5Aread(attribute, kind, ctypes.create_string_buffer(size + 1)) < 0:
                raise damaged(filename, what, "HDF5 cannot read it")
    finally:
        for close, identifier in ((_lib.H5Sclose, space), (_lib.H5Tclose, kind),
                                  (_lib.H5Aclose, attribute)):
            if identifier >= 0:
                close(identifier)


def check_file(path: str) -> None:
    """Check, before PyTables opens ``path``, what PyTables reads in C when it does.

    The root group's attribute names must be UTF-8, and its
    ``PYTABLES_FORMAT_VERSION`` (if any) one string HDF5 can read. A file HDF5
    cannot open at all is left to PyTables, which reports that with an exception.

    Raises
    ------
    FileFormatError
        PyTables would crash opening the file.
    """
    if _lib is None:
        return
    file_id = _lib.H5Fopen(os.fsencode(path), _H5F_ACC_RDONLY, _H5P_DEFAULT)
    if file_id < 0:
        return
    try:
        names = _decoded(attribute_names(file_id), path, "root group")
        if _VERSION_ATTRIBUTE.decode() in names:
            _check_version_attribute(file_id, path)
    finally:
        _lib.H5Fclose(file_id)


class _Chunks:
    """What ``H5Dchunk_iter`` finds: ``(offset, filter mask, address, size)`` per chunk."""

    def __init__(self, ndim: int):
        self.ndim = ndim
        self.found: list[tuple[tuple[int, ...], int, int, int]] = []


@_CHUNK
def _chunk(offset: Any, filter_mask: int, address: int, size: int, chunks: _Chunks) -> int:
    chunks.found.append((tuple(offset[i] for i in range(chunks.ndim)), filter_mask, address,
                         size))
    return 0


def check_chunks(leaf: tables.Leaf) -> None:
    """Check the chunk index of a chunked dataset explorer wrote.

    explorer writes chunked datasets whole, so each chunk within the extent is
    in the index once, at its place, and lies inside the file; a damaged index
    entry would otherwise read back as the fill value (or as bytes from
    elsewhere), which no chunk checksum sees. (A chunk's filter mask is not
    checked: blosc, an optional filter, leaves chunks it cannot shrink as they
    are and says so there.)

    Raises
    ------
    FileFormatError
        A chunk is missing, misplaced, or lies beyond the end of the file.
    """
    chunkshape = getattr(leaf, "chunkshape", None)
    shape = tuple(int(n) for n in leaf.shape)
    if _lib is None or not hasattr(_lib, "H5Dchunk_iter") or not chunkshape or not shape:
        return
    chunkshape = tuple(int(n) for n in chunkshape)
    expected = 1
    for size, chunk in zip(shape, chunkshape):
        expected *= -(-size // chunk)
    chunks = _Chunks(len(shape))
    end = _hsize(0)
    if _lib.H5Dchunk_iter(leaf._v_objectid, _H5P_DEFAULT, _chunk, chunks) < 0 or \
            _lib.H5Fget_filesize(leaf._v_file._v_objectid, ctypes.byref(end)) < 0:
        problem = "HDF5 cannot walk its chunk index"
    elif len({offset for offset, *_ in chunks.found}) != expected or \
            len(chunks.found) != expected:
        problem = f"its extent holds {expected} chunks, its chunk index {len(chunks.found)}"
    elif any(n >= size or n % chunk for offset, *_ in chunks.found
             for n, size, chunk in zip(offset, shape, chunkshape)):
        problem = "a chunk of its index lies outside its extent"
    elif any(address + size > end.value for _, _, address, size in chunks.found):
        problem = "its chunk index points outside the file"
    else:
        return
    raise damaged(leaf._v_file.filename, f"dataset {leaf._v_pathname!r}", problem)


def install() -> None:
    """Let PyTables list attribute names through :func:`attribute_names` (if active)."""
    if ACTIVE:
        tables.attributeset.AttributeSet._g_list_attr = _list_attributes


install()


def copy_exactly(node: tables.Node, target: tables.Group, name: str) -> bool:
    """Copy ``node`` (and what is below it) into ``target`` as ``name`` with HDF5 itself.

    ``H5Ocopy`` copies the objects as they are: compressed chunks are not
    decompressed, attributes and data keep their exact bytes (PyTables' own
    copy reads and writes the data again, which drops a string's trailing
    NULs). Returns False, copying nothing, where that is not safe: without the
    library, or when the file is open through another handle in this process
    (``H5Ocopy`` of objects a reader's handle had read crashed the process).
    """
    if _lib is None or len(tables.file._open_files.get_handlers_by_name(
            node._v_file.filename)) > 1:
        return False
    # located from the roots, which stay open: PyTables may close other groups
    # (its node cache), and a closed group's id can be reused by another object
    into = f"{target._v_pathname.rstrip('/')}/{name}"
    if _lib.H5Ocopy(node._v_file.root._v_objectid, node._v_pathname.encode("utf-8"),
                    target._v_file.root._v_objectid, into.encode("utf-8"), _H5P_DEFAULT,
                    _H5P_DEFAULT) < 0:
        raise tables.HDF5ExtError(f"HDF5 could not copy {node._v_pathname!r}")
    target._g_add_children_names()  # PyTables learns of the new child
    return True
