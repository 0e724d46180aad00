"""Finding a trajectory's nodes across the layers of a file (base, then segments).

A file is read as a sequence of layers, oldest first (:mod:`.files`): what a
later write replaces whole is read from the last layer holding it, what runs
add is gathered from every layer.
"""
from __future__ import annotations

from collections.abc import Sequence

import tables

from .checksum import verify
from .compaction import STATE
from .nodes import attr

__all__ = ["state_group", "last_node", "every_node", "child_groups"]


def state_group(layers: Sequence[tables.File], path: str) -> tables.Group | None:
    """The trajectory's group in the last layer that holds its state (attributes)."""
    for handle in reversed(layers):
        group = handle.get_node(path)
        if attr(group, STATE) is not None:
            return group
    return None


def last_node(layers: Sequence[tables.File], path: str) -> tables.Node | None:
    """The node at ``path`` in the last layer holding one."""
    for handle in reversed(layers):
        if path in handle:
            return handle.get_node(path)
    return None


def every_node(layers: Sequence[tables.File], path: str) -> list[tables.Node]:
    """The nodes at ``path`` in every layer holding one, oldest first."""
    return [handle.get_node(path) for handle in layers if path in handle]


def child_groups(nodes: Sequence[tables.Group]) -> dict[str, list[tables.Group]]:
    """``{name: [group in each layer]}`` of the child groups of ``nodes``, in order."""
    found: dict[str, list[tables.Group]] = {}
    for node in nodes:
        verify(node)
        for child in node._f_iter_nodes("Group"):
            found.setdefault(child._v_name, []).append(child)
    return found
