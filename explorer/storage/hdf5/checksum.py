"""explorer's own checksum on the nodes it writes, where HDF5 keeps none.

HDF5's Fletcher32 filter guards chunked data only; the HDF5 1.8 metadata
PyTables writes (object headers, attributes, B-trees, heaps of names) and small
unchunked datasets carry no checksum, so a flipped byte there could read back
as another value, another name, or a node gone missing. Every node explorer
reads its meaning from (value nodes, and the groups whose attributes and
children it walks) therefore has an attribute ``crc``: the CRC-32 of

* the node's own name,
* its user attributes but ``crc``, sorted by name (name, type and value),
* for a group, the sorted names of its children (but for the root, which may
  hold other things than explorer's: it lists its trajectories in an
  attribute instead); for an unchunked dataset, its data bytes (chunked ones
  have HDF5's own checksum per chunk).

:func:`verify` checks it where explorer reads a node. A node without ``crc``
(written by an older explorer) is not checked, so older files still read. A
node whose content was changed outside explorer (with h5py, say) fails the
check like a damaged one.

Writers seal value nodes as they write them (:func:`seal_tree`); groups that
gain children or attributes are only marked (:func:`mark`, constant time) and
sealed once each when the write is committed (:func:`seal_pending`), so that
adding a child costs the same however many siblings it has.
"""
from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import tables

__all__ = ["CRC", "ChecksumError", "checksum", "has_checksum", "seal", "seal_tree", "mark",
           "seal_pending", "verify", "verify_tree"]

#: The attribute holding a node's checksum.
CRC = "crc"
#: Where a file handle keeps the paths of nodes to seal before it is committed.
_PENDING = "_explorer_unsealed"


class ChecksumError(ValueError):
    """A node does not match its checksum: damaged, or changed outside explorer."""


def _canonical(value: Any) -> bytes:
    """An attribute value as bytes that are the same whether read from cache or file."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        return f"ndarray:{value.dtype.str}:{value.shape}:".encode() + value.tobytes()
    return f"{type(value).__name__}:{value!r}".encode("utf-8", "surrogatepass")


def _text(name: str) -> bytes:
    return name.encode("utf-8", "surrogatepass")


def checksum(node: tables.Node) -> int:
    """The CRC-32 of ``node``'s name, attributes and children names or unchunked data.

    Parameters
    ----------
    node : tables.Node
        A group or a leaf of an open file.

    Returns
    -------
    int
        The checksum, from 0 to 2**32 - 1.
    """
    crc = zlib.crc32(_text(node._v_name))
    attrs = node._v_attrs
    for key in sorted(attrs._f_list("user")):
        if key != CRC:
            crc = zlib.crc32(b"\0" + _text(key) + b"=" + _canonical(getattr(attrs, key)), crc)
    if isinstance(node, tables.Group) and node._v_pathname != "/":
        for child in sorted(node._v_children):
            crc = zlib.crc32(b"/" + _text(child), crc)
    elif isinstance(node, tables.Array) and node.chunkshape is None:
        crc = zlib.crc32(b"|" + np.ascontiguousarray(node.read()).tobytes(), crc)
    return crc


def has_checksum(node: tables.Node) -> bool:
    """Whether ``node`` carries a checksum (nodes from older files do not)."""
    return CRC in node._v_attrs._f_list("user")


def seal(node: tables.Node) -> None:
    """Set ``node``'s checksum to match its present content."""
    node._v_attrs[CRC] = checksum(node)


def seal_tree(node: tables.Node) -> None:
    """Seal ``node`` and every node below it (a value node just written)."""
    if isinstance(node, tables.Group):
        for child in node._f_walknodes():
            seal(child)
    seal(node)


def mark(node: tables.Node) -> None:
    """Have ``node`` sealed when its file's write is committed (see :func:`seal_pending`)."""
    pending = node._v_file.__dict__.setdefault(_PENDING, set())
    pending.add(node._v_pathname)


def seal_pending(handle: tables.File) -> None:
    """Seal the nodes marked in ``handle`` that still exist; called before it is committed."""
    pending = handle.__dict__.pop(_PENDING, set())
    for path in sorted(pending):
        if path in handle:
            seal(handle.get_node(path))


def verify(node: tables.Node, *, explorer: bool = False) -> None:
    """Check ``node`` against its checksum, if it has one and is not being rewritten.

    Parameters
    ----------
    node : tables.Node
        The node to check.
    explorer : bool
        Whether ``node`` must be one explorer wrote. PyTables gives a node whose
        attributes HDF5 cannot read no attributes at all, silently; a node of
        explorer's always has some (PyTables' own ``CLASS``, at least).

    Raises
    ------
    ChecksumError
        The node's name, attributes, children or unchunked data changed since it
        was sealed, or (``explorer=True``) its attributes cannot be read.
    """
    if explorer and not node._v_attrs._f_list("all"):
        raise ChecksumError(f"the attributes of node {node._v_pathname!r} cannot be read")
    if not has_checksum(node) or \
            node._v_pathname in node._v_file.__dict__.get(_PENDING, ()):
        return
    stored = node._v_attrs[CRC]
    if isinstance(stored, np.generic):
        stored = stored.item()
    if type(stored) is not int or stored != checksum(node):
        raise ChecksumError(f"node {node._v_pathname!r} does not match its checksum "
                            "(damaged, or changed outside explorer)")


def verify_tree(node: tables.Node) -> None:
    """Check ``node`` and every node below it (a value node about to be read)."""
    verify(node, explorer=True)
    if isinstance(node, tables.Group):
        for child in node._f_walknodes():
            verify(child, explorer=True)
