"""What a run function sees: a light, picklable view of one run.

A :class:`RunContext` (the values every run shares) is built once from the
trajectory and shared by every chunk of runs; a :class:`RunView` adds one run's
explored values and collects the results the run adds, as plain data that the
environment's single writer stores. Neither holds a file or the trajectory.
"""
from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import AmbiguousNameError, InvalidNameError, NodeNotFoundError, ParameterLockedError
from .naming import BRANCH_ALIASES, RUN_WILDCARD, is_run_name, run_name, split_branch, split_name
from .records import RunRecord, RunStatus, is_record
from .suggest import did_you_mean
from .values import result_kind

__all__ = ["RunContext", "RunView", "run_one", "iter_runs", "context_from_trajectory"]


@dataclass
class RunContext:
    """Values shared by every run of an exploration.

    Attributes
    ----------
    name : str
        The trajectory's name.
    defaults : dict
        Full name -> default value of every parameter, derived parameter and config.
    explored : list of str
        Full names of explored parameters.
    shortcuts : dict
        Short name -> full name (``None`` when ambiguous).
    groups : set of str
        Full names of every group.
    allow_pickle : bool
        Whether results may hold pickled objects.
    seed : int or None
        Seed of the exploration; each run gets ``numpy.random.default_rng``
        of ``SeedSequence(seed, spawn_key=(idx,))``.
    """

    name: str
    defaults: dict[str, Any]
    explored: list[str]
    shortcuts: dict[str, str | None]
    groups: set[str]
    allow_pickle: bool = False
    seed: int | None = None
    n_runs: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def context_from_trajectory(trajectory: Any, seed: int | None = None) -> RunContext:
    """Build the shared :class:`RunContext` of ``trajectory``."""
    parameters = trajectory.parameters_dict()
    defaults = {full: parameter.default for full, parameter in parameters.items()}
    shortcuts: dict[str, str | None] = {}
    groups: set[str] = set()
    for full in defaults:
        short = full.rsplit(".", 1)[-1]
        shortcuts[short] = full if short not in shortcuts else None
        segments = full.split(".")
        groups.update(".".join(segments[:i]) for i in range(1, len(segments)))
    return RunContext(trajectory.name, defaults, trajectory.explored_parameters, shortcuts,
                      groups, trajectory.allow_pickle, seed, len(trajectory))


#: Result names already checked, and the template each stands for (per process).
_TEMPLATES: dict[str, str] = {}
#: Item names already checked.
_ITEM_NAMES: set[str] = set()


class _PathView:
    """Natural naming below a group of a :class:`RunView`."""

    __slots__ = ("_view", "_path")

    def __init__(self, view: RunView, path: str):
        self._view = view
        self._path = path

    def __getattr__(self, segment: str) -> Any:
        if segment.startswith("_"):
            raise AttributeError(segment)
        return self._view._lookup(f"{self._path}.{segment}")

    def __getitem__(self, name: str) -> Any:
        return self._view._lookup(f"{self._path}.{name}")

    def __setattr__(self, segment: str, value: Any) -> None:
        if segment in _PathView.__slots__:
            object.__setattr__(self, segment, value)
            return
        raise ParameterLockedError(
            f"{self._path}.{segment} cannot be changed inside a run: parameters are locked")

    def to_dict(self, short_names: bool = False) -> dict[str, Any]:
        """Every value below this group, by full (or short) name."""
        prefix = self._path + "."
        found = {full: self._view._value(full) for full in self._view._context.defaults
                 if full.startswith(prefix)}
        if short_names:
            return {full.rsplit(".", 1)[-1]: value for full, value in found.items()}
        return found


#: Trajectory methods a run cannot call, and what to do instead.
_NOT_IN_RUNS = {
    name: "a run's values per run are results; use traj.add_result('<name>.$', item=value) "
          "(per-run derived values, as pypet's per-run derived parameters)"
    for name in ("add_derived_parameter", "add_parameter", "add_config")}


class RunView:
    """The trajectory as one run sees it: values, natural naming, ``add_result``.

    Attributes
    ----------
    idx : int
        The run index (also ``v_idx``).
    run_name : str
        ``run_00000013``; also what ``$`` in a result name becomes.
    """

    def __init__(self, context: RunContext, idx: int, explored_values: dict[str, Any]):
        d = self.__dict__
        d["_context"] = context
        d["idx"] = idx
        d["_explored_values"] = explored_values
        d["_results"] = {}
        d["_rng"] = None

    @property
    def v_idx(self) -> int:
        """The run index (pypet's name)."""
        return self.idx

    @property
    def run_name(self) -> str:
        """The run's name, ``run_00000013``."""
        return run_name(self.idx)

    @property
    def name(self) -> str:
        """The trajectory's name."""
        return self._context.name

    @property
    def rng(self) -> np.random.Generator:
        """A random generator that depends only on the exploration's seed and the run index."""
        if self._rng is None:
            sequence = np.random.SeedSequence(self._context.seed, spawn_key=(self.idx,))
            self.__dict__["_rng"] = np.random.default_rng(sequence)
        return self._rng

    def __len__(self) -> int:
        return self._context.n_runs

    def _value(self, full: str) -> Any:
        if full in self._explored_values:
            return self._explored_values[full]
        return self._context.defaults[full]

    def _lookup(self, name: str) -> Any:
        segments = name.split(".")
        branch, rest = split_branch(segments)
        if branch is None:
            if len(rest) == 1:
                return self._shortcut(rest[0])
            matches = [f"{b}.{name}" for b in ("parameters", "derived_parameters", "config")
                       if f"{b}.{name}" in self._context.defaults
                       or f"{b}.{name}" in self._context.groups]
            if len(matches) > 1:
                raise AmbiguousNameError(f"{name!r} matches {', '.join(matches)}")
            if not matches:
                raise NodeNotFoundError(f"run {self.idx}: no parameter or group {name!r}")
            full = matches[0]
        else:
            full = ".".join([branch, *rest])
        if full in self._context.defaults:
            return self._value(full)
        if full in self._context.groups or full in BRANCH_ALIASES.values():
            return _PathView(self, full)
        raise NodeNotFoundError(f"run {self.idx}: no parameter or group {full!r}")

    def _shortcut(self, short: str) -> Any:
        if short in BRANCH_ALIASES:
            return _PathView(self, BRANCH_ALIASES[short])
        if short in self._context.shortcuts:
            full = self._context.shortcuts[short]
            if full is None:
                matches = [f for f in self._context.defaults if f.rsplit(".", 1)[-1] == short]
                raise AmbiguousNameError(
                    f"{short!r} is ambiguous, it matches: {', '.join(matches)}; use a full name")
            return self._value(full)
        groups = [g for g in self._context.groups if g.rsplit(".", 1)[-1] == short]
        if len(groups) == 1:
            return _PathView(self, groups[0])
        if groups:
            raise AmbiguousNameError(f"{short!r} is ambiguous, it matches: {', '.join(groups)}")
        if short in _NOT_IN_RUNS:
            raise NodeNotFoundError(f"run {self.idx}: {short}() is not available inside a run: "
                                    f"{_NOT_IN_RUNS[short]}")
        names = [*self._context.shortcuts, *(g.rsplit(".", 1)[-1] for g in self._context.groups)]
        raise NodeNotFoundError(f"run {self.idx}: trajectory {self.name!r} has no {short!r}"
                                f"{did_you_mean(short, names)}")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._shortcut(name)

    def __getitem__(self, name: str) -> Any:
        return self._lookup(name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise ParameterLockedError(
            f"cannot set {name!r} inside a run: parameters are locked while runs execute; "
            "store outputs with traj.add_result(...)")

    def get(self, name: str) -> Any:
        """The value at ``name`` (a run sees values, not nodes)."""
        return self._lookup(name)

    def add_result(self, name: str, comment: str = "", **items: Any) -> None:
        """Add this run's result; ``$`` stands for the run's name.

        A name without ``$`` is placed under ``results.runs.<run name>``.
        """
        if not items:
            raise ValueError(f"result {name!r} needs at least one item (name=value)")
        template = _TEMPLATES.get(name) or self._template(name)
        for item, value in items.items():
            if item not in _ITEM_NAMES:
                split_name(item)
                _ITEM_NAMES.add(item)
            result_kind(f"{name}.{item}", value, self._context.allow_pickle)
        _, stored = self._results.setdefault(template, (comment, {}))
        clash = stored.keys() & items.keys()
        if clash:
            raise InvalidNameError(
                f"run {self.idx} already added {sorted(clash)} to {template!r}")
        stored.update(items)

    def _template(self, name: str) -> str:
        """The per-run template a result name stands for (cached when run-independent)."""
        segments = split_name(name, allow_wildcard=True)
        branch, rest = split_branch(segments)
        if branch not in (None, "results"):
            raise InvalidNameError(f"results go in the 'results' branch, not in {name!r}")
        here = [i for i, s in enumerate(rest) if s == RUN_WILDCARD or s == self.run_name]
        others = [s for s in rest if is_run_name(s) and s != self.run_name]
        if others:
            raise InvalidNameError(
                f"run {self.idx} cannot add results of another run ({others[0]}) in {name!r}")
        if len(here) > 1:
            raise InvalidNameError(f"result {name!r} may name the run only once")
        if here:
            rest = [RUN_WILDCARD if i == here[0] else s for i, s in enumerate(rest)]
        else:
            rest = ["runs", RUN_WILDCARD, *rest]
        template = ".".join(["results", *rest])
        if not any(is_run_name(s) for s in segments):
            _TEMPLATES[name] = template
        return template

    def __repr__(self) -> str:
        return f"<RunView {self.name} {self.run_name}>"


def run_one(func: Callable[..., Any], context: RunContext, idx: int,
            explored_values: dict[str, Any], args: Sequence[Any],
            kwargs: dict[str, Any]) -> RunRecord:
    """Call ``func(view, *args, **kwargs)`` for one run and return what it produced."""
    view = RunView(context, idx, explored_values)
    started = time.time()
    clock = time.perf_counter()
    try:
        value = func(view, *args, **kwargs)
        if not is_record(value):  # a record's fields are checked scalars already
            result_kind(f"return value of run {idx}", value, context.allow_pickle)
    except Exception as err:  # a failing run is recorded, the others go on
        return RunRecord(idx, RunStatus.FAILED, error=f"{type(err).__name__}: {err}",
                         traceback=traceback.format_exc(), started=started,
                         duration=time.perf_counter() - clock)
    return RunRecord(idx, RunStatus.COMPLETED, value, view._results, started=started,
                     duration=time.perf_counter() - clock)


def iter_runs(func: Callable[..., Any], context: RunContext,
              chunk: Iterable[tuple[int, dict[str, Any]]], args: Sequence[Any] = (),
              kwargs: dict[str, Any] | None = None) -> Iterator[RunRecord]:
    """Run every ``(idx, explored_values)`` of ``chunk`` in turn, yielding each record."""
    kwargs = kwargs or {}
    for idx, values in chunk:
        yield run_one(func, context, idx, values, args, kwargs)



