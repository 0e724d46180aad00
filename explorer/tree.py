"""The node tree behind natural naming: groups, paths and children, no values.

A :class:`Group` knows its full dotted name, its comment and its children; what a
child *gives* on attribute access is the child's business (a parameter gives its
value, a result or group gives itself). Assignments and run-result lookups are
handed to the tree's owner (the trajectory) through the small :class:`TreeOwner`
interface, so this module knows nothing of values or storage.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from .errors import NodeNotFoundError
from .naming import CURRENT_RUN, is_run_name, run_index, run_name
from .suggest import did_you_mean

__all__ = ["Node", "Group", "TreeOwner"]


class TreeOwner(Protocol):
    """What a group asks of the object that owns the tree."""

    def _assign(self, full_name: str, value: Any) -> None: ...

    def _run_child(self, group: Group, segment: str) -> Any: ...

    def _run_entries(self, group: Group) -> dict[str, Any]: ...

    def _run_items(self, group: Group) -> dict[str, Any]: ...


class Node:
    """Base of every node: a full dotted name and a comment."""

    __slots__ = ("full_name", "comment")

    def __init__(self, full_name: str, comment: str = ""):
        self.full_name = full_name
        self.comment = comment

    @property
    def name(self) -> str:
        """The last segment of the full name."""
        return self.full_name.rsplit(".", 1)[-1]

    @property
    def branch(self) -> str:
        """The branch the node lives in (``parameters``, ``results``...)."""
        return self.full_name.split(".", 1)[0]

    def _natural(self) -> Any:
        """What natural naming gives for this node: itself, unless a leaf says otherwise."""
        return self


class Group(Node):
    """A group of nodes, reachable by attribute (natural naming) or by ``[]``.

    ``group.child`` gives a parameter's value, or a group or result node;
    ``group["a.b"]`` does the same along a dotted path.
    """

    __slots__ = ("children", "run_templates", "_owner")

    def __init__(self, full_name: str, owner: TreeOwner, comment: str = ""):
        Node.__init__(self, full_name, comment)
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "children", {})
        # suffixes of per-run result templates whose '$' sits right below this group
        object.__setattr__(self, "run_templates", set())

    # natural naming -----------------------------------------------------------
    def __getattr__(self, segment: str) -> Any:
        if segment.startswith("_"):
            raise AttributeError(segment)
        child = self._child(segment)
        return child._natural() if isinstance(child, Node) else child

    def __setattr__(self, segment: str, value: Any) -> None:
        if segment in Group.__slots__ or segment in Node.__slots__:
            object.__setattr__(self, segment, value)
            return
        self._owner._assign(f"{self.full_name}.{segment}", value)

    def __getitem__(self, path: str | int) -> Any:
        if not isinstance(path, str):  # a run: traj.res.neuron[13]
            if not self.run_templates:
                raise NodeNotFoundError(f"{self.full_name!r} holds no per-run results, so "
                                        f"it cannot be indexed by run ({path!r})")
            return self._owner._run_child(self, run_name(run_index(path)))
        node: Any = self
        for segment in path.split("."):
            if not isinstance(node, (Group,)) and not hasattr(node, "_child"):
                return node[segment]
            node = node._child(segment)
        return node._natural() if isinstance(node, Node) else node

    def __contains__(self, segment: str) -> bool:
        return segment in self.children or segment in self._run_names()

    def __iter__(self) -> Iterator[str]:
        return iter([*self.children, *(name for name in self._run_names()
                                       if name not in self.children)])

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self))

    def __repr__(self) -> str:
        names = list(self)
        kids = ", ".join(names[:8])
        more = ", ..." if len(names) > 8 else ""
        return f"<Group {self.full_name} [{kids}{more}]>"

    def _repr_html_(self) -> str:
        from .display import group_html  # only for notebooks

        return group_html(self)

    def run_items(self) -> dict[str, Any]:
        """The per-run items of results named ``<this group>.$`` (``traj.res.neuron``:
        ``V``, ``nspikes``...), each a :class:`~explorer.results.RunItem` over all runs."""
        return self._owner._run_items(self) if self.run_templates else {}

    def _run_names(self) -> list[str]:
        return list(self._owner._run_entries(self)) if self.run_templates else []

    def _child(self, segment: str) -> Any:
        child = self.children.get(segment)
        if child is not None:
            return child
        if self.run_templates:
            if segment == CURRENT_RUN or is_run_name(segment):
                return self._owner._run_child(self, segment)
            entry = self._owner._run_entries(self).get(segment)
            if entry is not None:
                return entry
        names = list(self)
        raise NodeNotFoundError(
            f"{self.full_name!r} has no child {segment!r}; it has: "
            f"{', '.join(sorted(names)) or 'nothing'}{did_you_mean(segment, names)}")

    # tree helpers ---------------------------------------------------------------
    def walk(self) -> Iterator[Node]:
        """Yield every node below this group, depth first."""
        for child in self.children.values():
            yield child
            if isinstance(child, Group):
                yield from child.walk()

    def leaves(self) -> Iterator[Node]:
        """Yield every node below this group that is not a group."""
        return (node for node in self.walk() if not isinstance(node, Group))
