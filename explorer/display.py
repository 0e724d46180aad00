"""Views of trajectories, groups and results for people: HTML and plain text.

``trajectory_html`` and friends give the collapsible tree a notebook shows
(static HTML and CSS with ``<details>``, no JavaScript, nothing fetched);
``trajectory_text`` and friends give the same facts as an indented text tree.
Both are drawn from one outline of :class:`Entry` objects, so they always agree.
Nothing here reads a lazy item from the file, and every branch is cut after
:data:`MAX_LINES` lines, so a huge trajectory still renders small and fast.
"""
from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ExplorerError
from .grids import find_grid
from .naming import RUN_WILDCARD
from .parameters import Parameter
from .results import Result, RunItems
from .tree import Group, Node

if TYPE_CHECKING:
    from .trajectory import Trajectory

__all__ = ["Entry", "MAX_LINES", "trajectory_html", "group_html", "result_html",
           "trajectory_text", "group_text", "result_text", "trajectory_outline",
           "group_outline", "result_outline", "describe_value"]

#: Lines shown per branch (or per group or result view) before "... N more".
MAX_LINES = 50
#: Characters of a value's repr, and of a comment, that are shown.
VALUE_CHARS = 60
COMMENT_CHARS = 120
#: Explored values previewed after "explored: N values".
PREVIEW_VALUES = 3

_PARAMETER_BRANCHES = ("parameters", "derived_parameters", "config")
_STATUSES = ("completed", "failed", "pending")


@dataclass
class Entry:
    """One line of the outline: a node, an item, or a section, with what lies below.

    Parameters
    ----------
    label : str
        The name shown first.
    kind : str
        ``"section"``, ``"group"``, ``"parameter"``, ``"result"``, ``"item"``,
        ``"runs"`` (the per-run results below a group) or ``"info"``.
    value : str
        The value or description, already shortened.
    comment : str
        The node's comment, already shortened.
    children : list of Entry
        The lines below, as far as the line budget reached.
    more : int
        How many further children were left out.
    """

    label: str
    kind: str
    value: str = ""
    comment: str = ""
    children: list[Entry] = field(default_factory=list)
    more: int = 0

    def size(self) -> int:
        """Lines of this entry and everything shown below it."""
        return 1 + sum(child.size() for child in self.children) + (self.more > 0)


class _Budget:
    """Lines left to spend on one branch."""

    def __init__(self, lines: int = MAX_LINES):
        self.left = lines


# ---------------------------------------------------------------------- short strings
def _clip(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with ``...``."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:max(limit - 3, 1)] + "..."


def _short_repr(value: Any, limit: int = VALUE_CHARS) -> str:
    """A repr of at most ``limit`` characters; big arrays and frames by type and shape."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and not isinstance(value, np.generic):
        size = int(np.prod(shape)) if shape else 1
        if size > 12 or not isinstance(value, np.ndarray):
            return _clip(describe_value(value), limit)
    try:
        text = repr(value)
    except Exception:  # a value's repr is not worth a failed view
        text = f"<{type(value).__name__}>"
    return _clip(text, limit)


def describe_value(value: Any) -> str:
    """Type, dtype and shape of an array-like value, else a short repr.

    Parameters
    ----------
    value : object
        An item or parameter value already in memory.

    Returns
    -------
    str
        e.g. ``"ndarray float64 (10000,)"``, ``"DataFrame (21, 3)"`` or ``"42"``.
    """
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and not isinstance(value, np.generic):
        dtype = getattr(value, "dtype", None)
        kind = type(value).__name__
        return f"{kind} {dtype} {shape}" if dtype is not None else f"{kind} {shape}"
    if isinstance(value, dict):
        names = _clip(", ".join(map(str, value)), VALUE_CHARS)
        return f"dict of {_count(len(value), 'item')}: {names}"
    return _short_repr(value)


def _count(n: int, noun: str) -> str:
    """``"1 run"``, ``"2 runs"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# ---------------------------------------------------------------------- the outline
def _explored_value(parameter: Parameter) -> str:
    values = parameter.range or []
    shown = ", ".join(_short_repr(v, 20) for v in values[:PREVIEW_VALUES])
    tail = ", ..." if len(values) > PREVIEW_VALUES else ""
    return _clip(f"explored: {len(values)} values [{shown}{tail}]", VALUE_CHARS + 20)


def _parameter_entry(parameter: Parameter) -> Entry:
    value = _explored_value(parameter) if parameter.is_explored \
        else _short_repr(parameter.default)
    return Entry(parameter.name, "parameter", value, _clip(parameter.comment, COMMENT_CHARS))


def _item_entries(result: Result, budget: _Budget) -> tuple[list[Entry], int]:
    def item(name: str) -> Entry:
        value = describe_value(result[name]) if result.is_loaded(name) else "not loaded"
        return Entry(name, "item", value)

    return _capped(result.keys(), budget, item)


def _result_entry(result: Result, budget: _Budget) -> Entry:
    names = result.keys()
    children, more = _item_entries(result, budget)
    return Entry(result.name, "result", _count(len(names), "item"),
                 _clip(result.comment, COMMENT_CHARS), children, more)


def _capped(things: Iterable[Any], budget: _Budget, make: Any) -> tuple[list[Entry], int]:
    """Entries ``make(thing)`` while the budget lasts, and how many were left out."""
    things = list(things)
    entries: list[Entry] = []
    for position, thing in enumerate(things):
        if budget.left <= 0:
            return entries, len(things) - position
        budget.left -= 1
        entries.append(make(thing))
    return entries, 0


def _owner(group: Group) -> Any:
    """The trajectory a group belongs to (``None`` for a detached group)."""
    return getattr(group, "_owner", None)


def _run_entry(group: Group, budget: _Budget) -> Entry | None:
    """The per-run results whose ``$`` sits right below ``group``, or ``None``."""
    if not group.run_templates:
        return None
    owner = _owner(group)
    comments = owner.run_templates
    prefix = f"{group.full_name}.{RUN_WILDCARD}"
    comment = next((comments[t] for t in sorted(comments)
                    if (t == prefix or t.startswith(prefix + ".")) and comments[t]), "")
    n_runs = len(owner)
    run_items = owner._run_entries(group)  # items of <group>.$, and results below $

    def item(pair: tuple[str, Any]) -> Entry:
        name, entry = pair
        if isinstance(entry, RunItems):
            return Entry(name, "result", f"per run: {', '.join(entry.keys())}")
        return Entry(name, "item", _run_item_value(entry, n_runs))

    children, more = _capped(run_items.items(), budget, item)
    value = f"per run, {_count(len(run_items), 'item')}" if run_items else "per run"
    return Entry(RUN_WILDCARD, "runs", value, _clip(comment, COMMENT_CHARS), children, more)


def _run_item_value(item: Any, n_runs: int | None) -> str:
    """``"float64 (5,), in 5 of 6 runs"`` for a per-run item."""
    dtype, shape = getattr(item, "dtype", None), getattr(item, "shape", None)
    if dtype is None:
        kind = str(getattr(item, "kind", "values"))
    elif shape is None:
        kind = f"{dtype}, varying shape"
    else:
        kind = f"{dtype} {shape}" if shape else f"{dtype} scalar"
    held = len(item)
    runs = f"in {held} of {n_runs} runs" if n_runs is not None else f"in {_count(held, 'run')}"
    return f"{kind}, {runs}"


def _group_entry(group: Group, budget: _Budget, kind: str = "group") -> Entry:
    """``group`` with its children, spending ``budget`` line by line."""
    def child(node: Node) -> Entry:
        if isinstance(node, Group):
            return _group_entry(node, budget)
        if isinstance(node, Parameter):
            return _parameter_entry(node)
        if isinstance(node, Result):
            return _result_entry(node, budget)
        return Entry(node.name, "item", _short_repr(node))

    children, more = _capped(group.children.values(), budget, child)
    runs = None
    if group.run_templates:
        if budget.left > 0:
            budget.left -= 1
            runs = _run_entry(group, budget)
        else:
            more += 1
    if runs is not None:
        children.append(runs)
    count = len(group.children) + bool(group.run_templates)
    label = group.full_name if kind == "section" else group.name
    return Entry(label, kind, _count(count, "node"), _clip(group.comment, COMMENT_CHARS),
                 children, more)


def _status_value(traj: Trajectory) -> str:
    counts = traj._status_counts()
    return f"{len(traj)} ({', '.join(f'{name} {counts.get(name, 0)}' for name in _STATUSES)})"


def _grid_shape(traj: Trajectory) -> tuple[int, ...] | None:
    grid = find_grid({full: traj.get(full).range for full in traj.explored_parameters})
    return grid.shape if grid is not None and len(grid.shape) > 1 else None


def _exploration_entry(traj: Trajectory) -> Entry:
    explored = traj.explored_parameters
    if not explored:
        return Entry("exploration", "info", "nothing explored (a single run)")
    value = f"{_count(len(traj), 'point')} over {_count(len(explored), 'parameter')}"
    shape = _grid_shape(traj)
    if shape:
        value += f", grid {' x '.join(map(str, shape))}"

    def parameter(full: str) -> Entry:
        node = traj.get(full)
        return Entry(full.split(".", 1)[1], "parameter", _explored_value(node),
                     _clip(node.comment, COMMENT_CHARS))

    children, more = _capped(explored, _Budget(), parameter)
    return Entry("exploration", "info", value, "", children, more)


def _outline_or_reason(traj: Trajectory) -> Entry:
    """The trajectory's outline, or, when its file cannot be read (moved, removed, a
    relative name after a change of directory), an entry saying so: a view never raises."""
    try:
        return trajectory_outline(traj)
    except (ExplorerError, OSError) as error:
        return Entry(traj.name, "section", "", "",
                     [Entry("file", "info", f"not readable: {error}")])


def trajectory_outline(traj: Trajectory) -> Entry:
    """The outline both views of a trajectory are drawn from.

    Parameters
    ----------
    traj : Trajectory
        A trajectory, stored, loaded or only in memory.

    Returns
    -------
    Entry
        Labelled with the trajectory's name; its children are the run summary,
        the exploration and the four branches, each cut after :data:`MAX_LINES`.
    """
    info = [Entry("runs", "info", _status_value(traj)), _exploration_entry(traj)]
    if traj.filename:
        info.insert(0, Entry("file", "info", str(traj.filename)))
    branches = [_group_entry(getattr(traj, alias), _Budget(), "section")
                for alias in ("par", "dpar", "conf", "res")]
    return Entry(traj.name, "trajectory", "", _clip(traj.comment, COMMENT_CHARS * 2),
                 info + branches)


def group_outline(group: Group) -> Entry:
    """The outline of one group: its subtree, cut after :data:`MAX_LINES` lines."""
    return _group_entry(group, _Budget(), "section")


def result_outline(result: Result) -> Entry:
    """The outline of one result: its items, cut after :data:`MAX_LINES` lines."""
    entry = _result_entry(result, _Budget())
    entry.label = result.full_name
    return entry


# ---------------------------------------------------------------------- plain text
def _text_line(entry: Entry, depth: int) -> str:
    indent = "  " * depth
    if entry.kind in ("group", "section", "runs", "result"):
        line = f"{entry.label}/" if entry.kind != "result" else entry.label
        line += f"  ({entry.value})" if entry.value else ""
    elif entry.kind == "parameter":
        line = f"{entry.label} = {entry.value}"
    else:
        line = f"{entry.label}: {entry.value}" if entry.value else entry.label
    if entry.comment:
        line += f"  # {entry.comment}"
    return indent + line


def _text_lines(entry: Entry, depth: int) -> list[str]:
    lines = [_text_line(entry, depth)]
    for child in entry.children:
        lines.extend(_text_lines(child, depth + 1))
    if entry.more:
        lines.append("  " * (depth + 1) + f"... {entry.more} more")
    return lines


def _text(title: str, entry: Entry) -> str:
    lines = [f"{title}  # {entry.comment}" if entry.comment else title]
    for child in entry.children:
        lines.extend(_text_lines(child, 0 if child.kind in ("info", "section") else 1))
    if entry.more:
        lines.append(f"  ... {entry.more} more")
    return "\n".join(lines)


def trajectory_text(traj: Trajectory) -> str:
    """A multi-line text view of a trajectory: runs, exploration and the tree.

    Parameters
    ----------
    traj : Trajectory
        The trajectory to show; lazy result items stay unread.

    Returns
    -------
    str
        An indented tree, at most about :data:`MAX_LINES` lines per branch.
    """
    return _text(f"<Trajectory {traj.name!r}>", _outline_or_reason(traj))


def group_text(group: Group) -> str:
    """A multi-line text view of a group and what lies below it."""
    return _text(f"<Group {group.full_name}>", group_outline(group))


def result_text(result: Result) -> str:
    """A multi-line text view of a result: its comment and its items."""
    return _text(f"<Result {result.full_name}>", result_outline(result))


# ---------------------------------------------------------------------- HTML
_CSS = """
.exr-wrap { --exr-fg: var(--jp-content-font-color0, rgba(0, 0, 0, 1));
  --exr-fg2: var(--jp-content-font-color2, rgba(0, 0, 0, 0.55));
  --exr-line: var(--jp-border-color2, #e0e0e0); --exr-bg2: var(--jp-layout-color2, #eef1f5);
  --exr-ok: #2e7d32; --exr-bad: #c62828; --exr-wait: #8a6d00;
  color: var(--exr-fg); font-family: var(--jp-content-font-family, sans-serif);
  font-size: 13px; line-height: 1.5; max-width: 1000px; }
html[theme=dark] .exr-wrap, body[data-theme=dark] .exr-wrap, body.vscode-dark .exr-wrap {
  --exr-fg: rgba(255, 255, 255, 1); --exr-fg2: rgba(255, 255, 255, 0.6);
  --exr-line: #444; --exr-bg2: #2b2f36; --exr-ok: #81c784; --exr-bad: #ef9a9a;
  --exr-wait: #ffe082; }
.exr-wrap ul { list-style: none; margin: 0; padding: 0 0 0 1.2em; }
.exr-wrap > ul { padding-left: 0; }
.exr-wrap summary { display: flex; list-style: none; cursor: pointer; }
.exr-wrap summary::-webkit-details-marker { display: none; }
.exr-wrap summary::before { content: "\\25B8"; flex: 0 0 1.2em; color: var(--exr-fg2); }
.exr-wrap details[open] > summary::before { content: "\\25BE"; }
.exr-leaf { padding-left: 1.2em; }
.exr-head { border-bottom: 1px solid var(--exr-line); margin-bottom: 4px; padding-bottom: 2px; }
.exr-type { color: var(--exr-fg2); }
.exr-title { font-weight: bold; font-size: 14px; }
.exr-row { display: flex; flex: 1; gap: 1em; align-items: baseline; }
.exr-row:hover { background: var(--exr-bg2); }
.exr-name { flex: 0 0 14em; font-family: monospace; overflow: hidden; text-overflow: ellipsis; }
.exr-section > summary .exr-name { font-weight: bold; font-family: inherit; }
.exr-group > summary .exr-name, .exr-runs > summary .exr-name { font-weight: bold; }
.exr-value, .exr-count { flex: 0 0 26em; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
.exr-value { font-family: monospace; }
.exr-count, .exr-comment, .exr-more { color: var(--exr-fg2); }
.exr-comment { font-style: italic; }
.exr-completed { color: var(--exr-ok); } .exr-failed { color: var(--exr-bad); }
.exr-pending { color: var(--exr-wait); }
.exr-section { margin-top: 4px; }
details.exr-section > summary { background: var(--exr-bg2); }
"""

#: Groups whose outline has at most this many lines are shown open.
_OPEN_LINES = 30
#: Width of the name column at the top, and the indent of each level (em).
_NAME_EM = 14.0
_INDENT_EM = 1.2


def _span(css: str, text: str, title: bool = False) -> str:
    if not text:
        return ""
    text = html.escape(text)
    hover = f' title="{text}"' if title else ""
    return f'<span class="exr-{css}"{hover}>{text}</span>'


def _row(entry: Entry, depth: int) -> str:
    """Name, value and comment of ``entry``; names narrow with depth so values align."""
    width = max(_NAME_EM - _INDENT_EM * depth, 4.0)
    name = (f'<span class="exr-name" style="flex-basis: {width:.1f}em" '
            f'title="{html.escape(entry.label)}">{html.escape(entry.label)}</span>')
    if entry.kind == "info" and entry.label == "runs":  # the status counts coloured
        value = html.escape(entry.value)
        for status in _STATUSES:
            value = value.replace(f"{status} ", f'<span class="exr-{status}">{status}</span> ', 1)
        value = f'<span class="exr-value">{value}</span>'
    else:
        css = "count" if entry.kind in ("group", "section", "result", "runs") else "value"
        value = _span(css, entry.value, title=True)
    return f'<span class="exr-row">{name}{value}{_span("comment", entry.comment)}</span>'


def _html_entry(entry: Entry, depth: int) -> str:
    if not entry.children and not entry.more and entry.kind in ("parameter", "item", "info"):
        return f'<li class="exr-leaf">{_row(entry, depth)}</li>'
    opened = " open" if entry.kind == "section" or entry.size() <= _OPEN_LINES else ""
    return (f'<li><details class="exr-{entry.kind}"{opened}><summary>{_row(entry, depth)}'
            f"</summary>{_html_children(entry, depth + 1)}</details></li>")


def _html_children(entry: Entry, depth: int) -> str:
    parts = [_html_entry(child, depth) for child in entry.children]
    if entry.more:
        parts.append(f'<li class="exr-leaf">{_span("more", f"... {entry.more} more")}</li>')
    return f"<ul>{''.join(parts)}</ul>"


def _html(kind: str, title: str, outline: Entry) -> str:
    comment = f'<br>{_span("comment", outline.comment)}' if outline.comment else ""
    head = (f'<div class="exr-head"><span class="exr-type">explorer.{kind}</span> '
            f'<span class="exr-title">{html.escape(title)}</span>{comment}</div>')
    return (f'<div class="exr-wrap"><style>{_CSS}</style>{head}'
            f"{_html_children(outline, 0)}</div>")


def trajectory_html(traj: Trajectory) -> str:
    """The notebook view of a trajectory (``Trajectory._repr_html_``).

    Parameters
    ----------
    traj : Trajectory
        The trajectory to show; lazy result items stay unread.

    Returns
    -------
    str
        Static HTML with inline CSS: the name, comment, run counts, the
        exploration and a collapsible tree of every branch, each cut after
        :data:`MAX_LINES` lines. Every text from the trajectory is escaped.
    """
    return _html("Trajectory", traj.name, _outline_or_reason(traj))


def group_html(group: Group) -> str:
    """The notebook view of a group (``Group._repr_html_``): its collapsible subtree."""
    return _html("Group", group.full_name, group_outline(group))


def result_html(result: Result) -> str:
    """The notebook view of a result (``Result._repr_html_``): comment and items."""
    return _html("Result", result.full_name, result_outline(result))
