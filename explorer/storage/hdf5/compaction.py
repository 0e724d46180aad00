"""Merging layers of a file, so that it stays a few files and gives back unused space.

Every commit adds a segment (:mod:`.files`). After a commit, the writer merges
layers as :func:`plan` says: the ``FAN_IN`` newest segments into one when they
are of one size class (:func:`level`), so a file has at most ``FAN_IN - 1``
segments per size class and each byte is rewritten about
``log(n) / log(FAN_IN)`` times over ``n`` commits; and everything into the
base once the segments hold as much as the base (half as much at the end of a
writer's work), so the base is rewritten each time it has grown by half, at
most.

A merge copies each trajectory's layers into one new file (:func:`merge`):
per-run columns are concatenated (compressed chunks copied as they are), run
tables and session logs appended, and for what a later write replaces whole
(parameter branches, non-run results, the trajectory's attributes) the
latest layer is kept, copied byte for byte. Space that earlier versions took
is not carried over.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable

import tables

from .checksum import mark, verify
from .columns import VARIABLE_CHUNK_ROWS, append_column, append_nodes, append_packed, packed_parts
from .files import private_view, release, replacing, segment_folder
from .nodes import attr, copy_node
from .parts import NodesPart, PackedPart

__all__ = ["compact", "plan", "level", "merge", "trajectory_layers", "REPLACED_WHOLE", "STATE",
           "FRESH", "FAN_IN", "LEVEL_BYTES", "SETTLE_SHARE"]

#: Children of a trajectory that each write replaces whole: the latest is kept.
REPLACED_WHOLE = ("parameters", "derived_parameters", "config")
#: The attribute a trajectory's group carries in the layers that hold its state
#: (its attributes); segments of runs alone (workers' ones) do not have it.
STATE = "uid"
#: The attribute of a trajectory's group in a layer that starts it afresh
#: (a replaced trajectory): earlier layers' parts of it are ignored.
FRESH = "fresh_start"
#: Segments merged at once: each byte is rewritten once per level, about
#: ``log(commits) / log(FAN_IN)`` times, and a file has at most
#: ``FAN_IN - 1`` segments per level.
FAN_IN = 8
#: Segments up to ``FAN_IN`` times this size are of level 0.
LEVEL_BYTES = 128 * 1024
#: A writer whose work ends merges the segments into the base once it added
#: this share of the base's bytes.
SETTLE_SHARE = 0.5


def trajectory_layers(layers: Iterable[tables.File], name: str) -> list[tables.File]:
    """The layers holding trajectory ``name``, from the last one that starts it afresh."""
    path = f"/{name}"
    found: list[tables.File] = []
    for handle in layers:
        if path in handle:
            if attr(handle.get_node(path), FRESH):
                found = []
            found.append(handle)
    return found


def level(size: int) -> int:
    """A segment's level: 0 up to ``FAN_IN`` times ``LEVEL_BYTES``, one more for each
    ``FAN_IN`` times larger."""
    return max(0, int(math.log(max(size, 1) / LEVEL_BYTES, FAN_IN)))


def plan(sizes: list[int], base_bytes: int, *, added: int = 0) -> int | None:
    """How many of the newest segments to merge (0: all of them into the base), or ``None``.

    ``sizes`` are the segments' sizes, oldest first. The ``FAN_IN`` newest are
    merged when they share a level (:func:`level`), so a merge costs about
    ``FAN_IN`` times the commit that made it due. Everything is merged into
    the base once the segments hold as much as the base, or when a writer
    whose work ends (the end of an ``env.run``, a ``traj.store()``) ``added``
    half as much: the base is rewritten each time it has grown by half, at
    most, and a large write pays for its own merge, so that the small writes
    after it find little to merge.
    """
    if not sizes:
        return None
    if sum(sizes) >= base_bytes or added >= base_bytes * SETTLE_SHARE:
        return 0
    newest = level(sizes[-1])
    trailing = 0
    for size in reversed(sizes):
        if level(size) != newest:
            break
        trailing += 1
    return FAN_IN if trailing >= FAN_IN else None


def compact(path: str, *, everything: bool = False, added: int = 0) -> bool:
    """Merge layers of ``path`` as :func:`plan` says (all of them with ``everything``).

    The caller holds the file's claim. Returns whether anything was merged.
    """
    folder = segment_folder(path)
    listed = sorted(name for name in _names(folder))
    if not listed:
        return False
    if not everything and plan([os.path.getsize(os.path.join(folder, f"{name}.h5"))
                                for name in listed], os.path.getsize(path),
                               added=added) is None:
        return False  # decided from the sizes alone, without opening a file
    release(path)  # H5Ocopy is safe only where no other handle has the file open
    with private_view(path) as view:
        names = list(view.names)
        if not names:
            return False
        segments = view.layers[1:len(names) + 1]
        count = 0 if everything else \
            plan([os.path.getsize(os.path.join(folder, f"{name}.h5")) for name in names],
                 os.path.getsize(view.path), added=added)  # the base's size
        if count is None:
            return False
        base = count == 0
        layers = view.layers[:len(names) + 1] if base else segments[-count:]
        merged = names if base else names[-count:]
        with replacing(path, merged, base=base) as target:
            merge(target, layers, keep_fresh=not base)
    return True


def _names(folder: str) -> list[str]:
    try:
        return [name[:-3] for name in os.listdir(folder) if name.endswith(".h5")]
    except OSError:
        return []


def merge(target: tables.File, layers: list[tables.File], *, keep_fresh: bool = True,
          only: str | None = None, rename: str | None = None) -> None:
    """Write into ``target`` (a new file) what ``layers`` (oldest first) hold together.

    Parameters
    ----------
    target : tables.File
        The file written.
    layers : list of tables.File
        The layers merged, oldest first.
    keep_fresh : bool
        The merged layers are not the oldest: a trajectory one of them starts
        afresh stays marked so.
    only, rename : str, optional
        Merge this trajectory alone, under another name.
    """
    names: list[str] = []
    for handle in layers:
        for group in handle.root._f_iter_nodes("Group"):
            if attr(group, "explorer_node") == "trajectory" and group._v_name not in names:
                names.append(group._v_name)
    if only is not None:
        names = [name for name in names if name == only]
    for name in names:
        parts = trajectory_layers(layers, name)
        _merge_node(target, "/", "/", name, parts, rename=rename)
        group = target.get_node(f"/{rename or name}")
        if keep_fresh and attr(parts[0].get_node(f"/{name}"), FRESH):
            group._v_attrs[FRESH] = 1
        mark(group)
    listed = {group._v_name for group in target.root._f_iter_nodes("Group")
              if attr(group, "explorer_node") == "trajectory"}
    target.root._v_attrs.trajectories = json.dumps(sorted(listed))
    mark(target.root)


def _copy_attrs(source: tables.Node, target: tables.Node) -> None:
    for key in source._v_attrs._f_list("user"):
        if key not in ("crc", FRESH):
            target._v_attrs[key] = source._v_attrs[key]


def _merge_node(target: tables.File, source: str, into: str, name: str,
                layers: list[tables.File], rename: str | None = None) -> None:
    """Merge node ``source/name`` of ``layers`` into group ``into`` of ``target``
    (as ``rename``: a trajectory copied under another name)."""
    path = f"{source.rstrip('/')}/{name}"
    made = f"{into.rstrip('/')}/{rename or name}"
    nodes = [(handle, handle.get_node(path)) for handle in layers if path in handle]
    last = nodes[-1][1]
    for _, node in nodes:
        verify(node, explorer=isinstance(node, tables.Group))
    role = attr(last, "explorer_node")
    depth = path.count("/")
    if depth >= 2 and len(nodes) == 1:  # in one layer only: copied whole, as it is
        copy_node(last, target.get_node(into), name)
    elif role == "column":
        _merge_column(target.get_node(into), name, [node for _, node in nodes])
    elif isinstance(last, tables.Table) and name == "runs" and depth == 2:
        rows = [node.read() for _, node in nodes]
        table = target.create_table(into, name, rows[0].dtype, last.title,
                                    filters=last.filters, expectedrows=sum(map(len, rows)))
        for block in rows:
            table.append(block)
    elif isinstance(last, tables.VLArray) and name == "sessions" and depth == 2:
        log = target.create_vlarray(into, name, tables.VLStringAtom(), last.title,
                                    chunkshape=(VARIABLE_CHUNK_ROWS,))
        for _, node in nodes:
            for row in node:
                log.append(bytes(row))
    elif name == "merged_shards" and depth == 2:
        return  # the journal of older versions: its shards are in the file
    elif not isinstance(last, tables.Group) or role == "result" or attr(last, "kind") or \
            (depth == 2 and name in REPLACED_WHOLE):
        copy_node(last, target.get_node(into), name)
    else:
        group = target.create_group(into, rename or name)
        if role == "trajectory":
            state = [node for _, node in nodes if attr(node, STATE) is not None]
            _copy_attrs(state[-1] if state else last, group)
            group._v_attrs.explorer_node = "trajectory"
        else:
            _copy_attrs(last, group)
        children: list[str] = []
        for _, node in nodes:
            children += [child for child in node._v_children if child not in children]
        for child in children:
            _merge_node(target, path, made, child, [handle for handle, _ in nodes])
        mark(group)
    mark(target.get_node(into))


def _merge_column(where: tables.Group, name: str, columns: list[tables.Group]) -> None:
    """Concatenate a column's rows from several layers (chunks copied as they are)."""
    expected = sum(int(group._f_get_child(child).runs.nrows)
                   for group in columns for child in group._v_groups)
    for column in columns:
        for part in packed_parts(column):
            filters = _filters_of(column)
            if isinstance(part, PackedPart):
                append_packed(where, name, part, filters=filters, allow_pickle=False,
                              expected=max(expected, 1000))
            elif isinstance(part, NodesPart):
                append_nodes(where, name, part, filters=filters, expected=max(expected, 1000))
            else:
                append_column(where, name, part.runs, part.values, filters=filters,
                              allow_pickle=False, expected=max(expected, 1000))
    if name not in where:  # a column whose layers held no rows
        _empty_column(where, name)


def _empty_column(where: tables.Group, name: str) -> None:
    column = where._v_file.create_group(where, name)
    column._v_attrs.explorer_node = "column"
    mark(column)


def _filters_of(column: tables.Group) -> tables.Filters:
    """The filters the column's data was written with (the file's settings)."""
    for segment in column._v_groups.values():
        return segment.runs.filters
    return tables.Filters()
