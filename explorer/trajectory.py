"""Trajectory: the parameter tree, its exploration and its results.

The trajectory holds parameters, derived parameters, config and results in a
:class:`~explorer.tree.Group` tree with natural naming, knows which runs the
exploration defines, and talks to a file only through the
:class:`~explorer.storage.base.TrajectoryStore` interface.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .display import trajectory_html, trajectory_text
from .errors import (
    AmbiguousNameError,
    DuplicateNameError,
    ExplorationError,
    ExplorerError,
    FileFormatError,
    InvalidNameError,
    NodeNotFoundError,
    ParameterLockedError,
    TrajectoryNotFoundError,
)
from .exploration import not_a_list
from .frames import trajectory_frame
from .grids import trajectory_dataset
from .naming import (
    BRANCH_ALIASES,
    BRANCHES,
    CURRENT_RUN,
    RUN_WILDCARD,
    is_run_name,
    run_index,
    run_name,
    split_branch,
    split_name,
)
from .parameters import Parameter
from .records import RunStatus
from .results import LazyItem, MemoryRunResults, Result, RunItem, RunItems, RunNode
from .storage.base import (
    ResultRecord,
    StoredTrajectory,
    TrajectoryChanges,
    TrajectoryStore,
    TreeRecord,
    backend,
)
from .suggest import did_you_mean
from .tree import Group, Node
from .values import result_kind

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from .records import RunRecord

__all__ = ["Trajectory", "load_trajectory", "trajectory_names"]

_PARAMETER_BRANCHES = ("parameters", "derived_parameters", "config")


def _value_and_comment(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str):
        return value[0], value[1]
    return value, None


class Trajectory:
    """A tree of parameters and results, explored over runs and stored in HDF5.

    Parameters
    ----------
    name : str
        The trajectory's name; a file may hold several trajectories.
    comment : str
        A description stored with the trajectory.
    allow_pickle : bool
        Accept (and, on load, read) values of types explorer cannot store natively,
        pickled. Off by default: pickles run code when read.

    Examples
    --------
    >>> traj = Trajectory("FiringRate")
    >>> traj.add_parameter("neuron.tau_V", 12.0, comment="membrane time constant")
    >>> traj.par.neuron.tau_V
    12.0
    """

    def __init__(self, name: str = "trajectory", comment: str = "", *,
                 allow_pickle: bool = False):
        split = split_name(name)
        if len(split) != 1:
            raise InvalidNameError(f"a trajectory name is a single identifier, got {name!r}")
        d = self.__dict__
        d["name"] = name
        d["comment"] = comment
        d["allow_pickle"] = bool(allow_pickle)
        d["_roots"] = {branch: Group(branch, self) for branch in BRANCHES}
        d["_current"] = None
        d["_locked"] = False
        d["_n_runs"] = 1
        d["_explored"] = []
        d["_run_templates"] = {}
        d["_memory_runs"] = MemoryRunResults()
        d["_store"] = None
        d["_revision"] = 0
        d["_tree_revision"] = 0
        d["_stored_at"] = None  # (revision, tree revision) of the last store committed
        d["_handed_at"] = None  # ... of the last handed to the store (committed or pending)
        d["_pending_results"] = set()  # ids of results handed over, not committed yet
        d["_stored_points"] = 0  # explored points stored
        d["_loaded"] = False  # read from a file (its parameters lock once runs completed)
        d["_ran"] = False  # whether its stored runs are known to include completed ones

    # ---------------------------------------------------------------- adding nodes
    def add_parameter(self, name: str, value: Any, comment: str = "") -> Parameter:
        """Add a parameter (branch ``parameters``/``par``).

        Parameters
        ----------
        name : str
            Dotted name, e.g. ``"neuron.tau_V"``; may start with ``parameters.``.
        value : object
            The default value; its type is the parameter's type.
        comment : str
            A description.
        """
        return self._add_parameter("parameters", name, value, comment)

    def add_derived_parameter(self, name: str, value: Any, comment: str = "") -> Parameter:
        """Add a derived parameter (branch ``derived_parameters``/``dpar``)."""
        return self._add_parameter("derived_parameters", name, value, comment)

    def add_config(self, name: str, value: Any, comment: str = "") -> Parameter:
        """Add a config value (branch ``config``/``conf``)."""
        return self._add_parameter("config", name, value, comment)

    def add_parameter_group(self, name: str, comment: str = "") -> Group:
        """Add (or comment) a group in the ``parameters`` branch."""
        return self.add_group(name, comment, branch="parameters")

    def add_group(self, name: str, comment: str = "", *, branch: str | None = None) -> Group:
        """Add a group; ``name`` starts with its branch unless ``branch`` is given."""
        branch, rest = self._locate(name, branch)
        if not rest:
            raise InvalidNameError(f"{name!r} names a branch, not a group inside it")
        group = self._make_groups(branch, rest)
        if comment:
            group.comment = comment
            self._touch()
        return group

    def add_result(self, name: str, comment: str = "", *, overwrite: bool = False,
                   **items: Any) -> Result | None:
        """Add a result: named items under a dotted name (branch ``results``/``res``).

        A ``$`` segment stands for the current run's name (see :meth:`set_run`);
        such per-run results are kept column-wise, stacked over runs.

        Parameters
        ----------
        name : str
            Dotted name, e.g. ``"summary.firing_rates"`` or ``"neuron.$"``.
        comment : str
            A description.
        overwrite : bool
            Replace a result of the same name (never done silently).
        **items
            The items: arrays, scalars, strings, pandas objects...

        Returns
        -------
        Result or None
            The new node; ``None`` for a per-run result.
        """
        branch, rest = self._locate(name, "results", allow_wildcard=True)
        if branch != "results":
            raise InvalidNameError(f"results go in the 'results' branch, not in {name!r}")
        if not items:
            raise ValueError(f"result {name!r} needs at least one item (name=value)")
        for item, value in items.items():
            split_name(item)
            result_kind(f"{name}.{item}", value, self.allow_pickle)
        run_segments = [i for i, s in enumerate(rest) if s == RUN_WILDCARD or is_run_name(s)]
        if run_segments:
            self._add_run_result(name, rest, run_segments, items, comment)
            return None
        return self._put_result(rest, Result("", items, comment), overwrite)

    def _put_result(self, rest: list[str], result: Result, overwrite: bool) -> Result:
        parent = self._make_groups("results", rest[:-1])
        existing = parent.children.get(rest[-1])
        if isinstance(existing, Group):
            raise InvalidNameError(f"{existing.full_name!r} is a group and cannot become a result")
        if existing is not None and not overwrite:
            raise DuplicateNameError(
                f"result {existing.full_name!r} already exists; pass overwrite=True to replace it")
        result.full_name = f"{parent.full_name}.{rest[-1]}"
        parent.children[rest[-1]] = result
        self._touch(tree=False)  # results are written apart from the parameter tree
        return result

    def _add_run_result(self, name: str, rest: list[str], run_segments: list[int],
                        items: dict[str, Any], comment: str) -> None:
        if len(run_segments) > 1:
            raise InvalidNameError(f"result {name!r} may name the run only once")
        position = run_segments[0]
        if rest[position] == RUN_WILDCARD:
            if self._current is None:
                raise InvalidNameError(
                    f"'$' in {name!r} means the current run, and none is set: call "
                    "traj.set_run(idx) first, or add the result inside a run function")
            idx = self._current
        else:
            idx = run_index(rest[position])
        self._check_run(idx)
        template = ".".join(["results", *rest[:position], RUN_WILDCARD, *rest[position + 1:]])
        self._register_template(template, comment)
        self._memory_runs.add(template, idx, items, comment)

    def _register_template(self, template: str, comment: str) -> None:
        if template in self._run_templates:
            return
        segments = template.split(".")
        position = segments.index(RUN_WILDCARD)
        group = self._make_groups("results", segments[1:position])
        group.run_templates.add(".".join(segments[position + 1:]))
        self._run_templates[template] = comment

    def _add_parameter(self, default_branch: str, name: str, value: Any,
                       comment: str) -> Parameter:
        branch, rest = self._locate(name, default_branch)
        if branch != default_branch:
            raise InvalidNameError(
                f"{name!r} is in branch {branch!r}; use the add_ method of that branch")
        if not rest:
            raise InvalidNameError(f"{name!r} names a branch, not a parameter")
        if self._locked:
            raise ParameterLockedError(
                f"cannot add {name!r} while runs execute: parameters are locked")
        parent = self._make_groups(branch, rest[:-1])
        if rest[-1] in parent.children:
            raise DuplicateNameError(f"{parent.full_name}.{rest[-1]} already exists")
        parameter = Parameter(f"{parent.full_name}.{rest[-1]}", value, comment,
                              allow_pickle=self.allow_pickle, state=self._parameter_state,
                              on_change=self._touch,
                              guard=self._refuse_if_ran if branch == "parameters" else
                              lambda what: None)
        parent.children[rest[-1]] = parameter
        self._touch()
        return parameter

    def _touch(self, tree: bool = True) -> None:
        """Note a change, so the next store writes it: of the parameter tree, or
        (``tree=False``) only of the exploration or the results."""
        self.__dict__["_revision"] += 1
        if tree:
            self.__dict__["_tree_revision"] += 1

    def _parameter_state(self) -> tuple[int | None, bool]:
        return self._current, self._locked

    def _locate(self, name: str, default_branch: str | None,
                allow_wildcard: bool = False) -> tuple[str, list[str]]:
        branch, rest = split_branch(split_name(name, allow_wildcard=allow_wildcard))
        branch = branch or default_branch
        if branch is None:
            raise InvalidNameError(
                f"{name!r} must start with a branch: one of {', '.join(BRANCH_ALIASES)}")
        if not rest:
            raise InvalidNameError(f"{name!r} names the branch {branch!r}, not a node in it")
        return branch, rest

    def _make_groups(self, branch: str, segments: Sequence[str]) -> Group:
        group = self._roots[branch]
        for segment in segments:
            child = group.children.get(segment)
            if child is None:
                child = Group(f"{group.full_name}.{segment}", self)
                group.children[segment] = child
            elif not isinstance(child, Group):
                raise InvalidNameError(
                    f"{child.full_name!r} is a leaf and cannot hold {segment!r} below it")
            group = child
        return group

    # ------------------------------------------------------------- natural naming
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in BRANCH_ALIASES:
            return self._roots[BRANCH_ALIASES[name]]
        return self._shortcut(name)._natural()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__ or hasattr(type(self), name):
            object.__setattr__(self, name, value)
            self._touch()
            return
        raise AttributeError(
            f"cannot set {name!r} on a trajectory; use traj.add_parameter({name!r}, ...) or "
            f"natural naming inside a branch, e.g. traj.par.{name} = ...")

    def __getitem__(self, name: str) -> Any:
        node = self._resolve(name)
        return node._natural() if isinstance(node, (Node, RunNode)) else node

    def get(self, name: str) -> Any:
        """The node (``Parameter``, ``Result`` or ``Group``) at a dotted name.

        The name may start with a branch or its alias, or leave it out when it
        is unique; a single segment may be the short name of a unique leaf.
        """
        return self._resolve(name)

    def __contains__(self, name: str) -> bool:
        try:
            self._resolve(name)
        except (LookupError, AttributeError, InvalidNameError):
            return False
        return True

    def _resolve(self, name: str) -> Any:
        segments = name.split(".") if isinstance(name, str) else split_name(name)
        for segment in segments:
            if segment != CURRENT_RUN and not is_run_name(segment):
                split_name(segment)
        branch, rest = split_branch(segments)
        if branch is not None:
            return self._walk(self._roots[branch], rest, name)
        found = []
        missing: LookupError | AttributeError | None = None
        for candidate in BRANCHES:
            if rest[0] in self._roots[candidate].children:
                try:
                    found.append(self._walk(self._roots[candidate], rest, name))
                except (LookupError, AttributeError) as err:
                    missing = missing or err
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = [getattr(node, "full_name", repr(node)) for node in found]
            raise AmbiguousNameError(f"{name!r} matches several nodes: {', '.join(names)}")
        if missing is not None:
            raise NodeNotFoundError(f"nothing at {name!r}: {missing}")
        return self._walk(self._shortcut(rest[0]), rest[1:], name)

    @staticmethod
    def _walk(node: Any, segments: Sequence[str], name: str) -> Any:
        for segment in segments:
            if hasattr(node, "_child"):
                node = node._child(segment)
            else:
                try:
                    node = node[segment]
                except (KeyError, TypeError, IndexError):
                    raise NodeNotFoundError(f"nothing at {name!r}: no {segment!r}") from None
        return node

    def _shortcut(self, short: str) -> Any:
        leaves: list[Node] = []
        groups: list[Node] = []
        for root in self._roots.values():
            for node in root.walk():
                if node.name == short:
                    (groups if isinstance(node, Group) else leaves).append(node)
        matches = leaves or groups
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise AmbiguousNameError(
                f"{short!r} is ambiguous, it matches: "
                f"{', '.join(node.full_name for node in matches)}; use a full name")
        names = {node.name for root in self._roots.values() for node in root.walk()}
        raise NodeNotFoundError(f"trajectory {self.name!r} has no node named {short!r}"
                                f"{did_you_mean(short, sorted(names | set(BRANCH_ALIASES)))}")

    def _assign(self, full_name: str, value: Any) -> None:
        value, comment = _value_and_comment(value)
        branch, rest = split_branch(full_name.split("."))
        node = self._roots[branch]
        with contextlib.suppress(LookupError):
            node = self._walk(node, rest, full_name)
        if isinstance(node, Parameter):
            node.value = value
            if comment is not None:
                node.comment = comment
        elif branch == "results":
            self.add_result(full_name, comment or "", **{rest[-1]: value})
        elif branch is not None and (node is self._roots[branch] or not isinstance(node, Group)):
            self._add_parameter(branch, full_name, value, comment or "")
        else:
            raise InvalidNameError(f"{full_name!r} is a group; it cannot be given a value")

    def _run_child(self, group: Group, segment: str) -> RunNode:
        if segment == CURRENT_RUN:
            if self._current is None:
                raise NodeNotFoundError(
                    f"'crun' in {group.full_name}.crun means the current run, and none is "
                    "set: call traj.set_run(idx) first")
            idx = self._current
        else:
            idx = run_index(segment)
            self._check_run(idx)
        return RunNode(self._run_sources(), f"{group.full_name}.{RUN_WILDCARD}", idx,
                       set(self._run_templates))

    def _run_sources(self) -> list[Any]:
        """Where per-run results are: memory (not stored yet) first, then the file."""
        if self._store is None:
            return [self._memory_runs]
        return [self._memory_runs, self._store.run_results()]

    def _run_items(self, group: Group) -> dict[str, RunItem]:
        """The items of ``<group>.$`` over all runs (see :meth:`Group.run_items`)."""
        return {name: entry for name, entry in self._run_entries(group).items()
                if isinstance(entry, RunItem)}

    def _run_entries(self, group: Group) -> dict[str, RunItem | RunItems]:
        """What per-run results show below ``group``: each item of ``<group>.$`` over
        all runs, and the results whose ``$`` sits right below the group."""
        sources = self._run_sources()
        entries: dict[str, RunItem | RunItems] = {}
        for suffix in sorted(group.run_templates):
            template = f"{group.full_name}.{RUN_WILDCARD}"
            if suffix:
                head = suffix.split(".")[0]
                entries.setdefault(head, RunItems(sources, f"{template}.{head}", len(self)))
                continue
            for source in sources:
                for item in source.items(template):
                    if item not in entries:
                        entries[item] = RunItem(sources, template, item, len(self))
        return entries

    # ---------------------------------------------------------------- exploration
    def explore(self, exploration: Mapping[str, Sequence[Any]]) -> None:
        """Explore parameters: lists of equal length, zipped point by point.

        Parameters
        ----------
        exploration : mapping of str to sequence
            Parameter names (as for :meth:`get`) and their values per run, e.g. from
            :func:`~explorer.cartesian_product`.

        Raises
        ------
        ExplorationError
            Unknown or non-parameter names, unequal or zero lengths, or a
            trajectory that is already explored (use :meth:`expand`).
        UnsupportedTypeError
            A value whose type differs from the parameter's default.
        """
        if self._explored:
            raise ExplorationError(
                f"trajectory {self.name!r} is already explored over "
                f"{', '.join(self._explored)}; use traj.expand(...) to add points")
        self._refuse_if_ran("cannot explore it")
        self._apply(exploration, append=False)

    def _refuse_if_ran(self, what: str) -> None:
        """Refuse to change the parameters of a reloaded trajectory whose stored runs
        completed: their results would sit beside values they were not computed with."""
        if not self._loaded or self._store is None:
            return
        if not self._ran:
            table = self._store.run_table()
            self.__dict__["_ran"] = bool(np.any(table.status == RunStatus.COMPLETED))
            if not self._ran:
                return
        raise ParameterLockedError(
            f"{what}: trajectory {self.name!r} in {self.filename!r} has completed runs, "
            "computed with its stored parameters, and they must keep matching their "
            "results. Add points with traj.expand({...}), or start a new trajectory "
            "(another name, or another file) for other values")

    def expand(self, exploration: Mapping[str, Sequence[Any]]) -> None:
        """Append points to the exploration (the same parameters, zipped).

        On a trajectory not yet explored this is :meth:`explore`.
        """
        if not self._explored:
            self._apply(exploration, append=False)
        else:
            self._apply(exploration, append=True)

    def _apply(self, exploration: Mapping[str, Sequence[Any]], append: bool,
               checked: bool = False) -> None:
        if self._locked:
            raise ParameterLockedError("cannot explore while runs execute")
        if not isinstance(exploration, Mapping) or not exploration:
            raise ExplorationError(
                f"an exploration is a non-empty dict of name -> list, got {exploration!r:.80}")
        parameters: dict[str, tuple[Parameter, list[Any]]] = {}
        for name, values in exploration.items():
            parameter = self._explorable(name)
            problem = not_a_list(values) or ("" if hasattr(values, "__len__") else
                                             f"{type(values).__name__}, which has no length")
            if problem:
                raise ExplorationError(
                    f"values for {name!r} must be a list (one value per run), got {problem}; "
                    f"e.g. {{{name!r}: [value1, value2]}}")
            if parameter.full_name in parameters:
                raise ExplorationError(f"{name!r} is given twice ({parameter.full_name})")
            parameters[parameter.full_name] = (parameter, list(values))
        lengths = {full: len(values) for full, (_, values) in parameters.items()}
        if len(set(lengths.values())) != 1 or 0 in lengths.values():
            raise ExplorationError(
                "explored values must be non-empty lists of equal length, got "
                + ", ".join(f"{full}: {n}" for full, n in lengths.items()))
        if append and set(parameters) != set(self._explored):
            missing = sorted(set(self._explored) - set(parameters))
            extra = sorted(set(parameters) - set(self._explored))
            raise ExplorationError(
                "expand needs values for exactly the explored parameters "
                f"{self._explored}; missing: {missing}, not explored: {extra}")
        coerced = {full: values if checked else parameter.coerce(values)
                   for full, (parameter, values) in parameters.items()}
        for full, (parameter, _) in parameters.items():
            old = parameter.range if append else []
            parameter._set_range((old or []) + coerced[full])
        if not append:
            self.__dict__["_explored"] = list(parameters)
        self.__dict__["_n_runs"] = len(self.get(self._explored[0]).range)
        self._touch(tree=False)  # ranges are written apart from the parameter tree

    def _explorable(self, name: str) -> Parameter:
        if not isinstance(name, str):
            raise ExplorationError(f"explored names are str, got {name!r}")
        try:
            node = self._resolve(name)
        except (LookupError, AttributeError, InvalidNameError) as err:
            raise ExplorationError(f"cannot explore {name!r}: {err}") from None
        if not isinstance(node, Parameter) or node.branch != "parameters":
            raise ExplorationError(
                f"cannot explore {name!r}: only parameters (branch 'parameters') can be "
                f"explored, it is {getattr(node, 'full_name', node)!r}")
        return node

    def __len__(self) -> int:
        return self._n_runs

    @property
    def run_names(self) -> list[str]:
        """The names of all runs: ``["run_00000000", ...]``."""
        return [run_name(idx) for idx in range(self._n_runs)]

    @property
    def explored_parameters(self) -> list[str]:
        """Full names of the explored parameters."""
        return list(self._explored)

    @property
    def current_run(self) -> int | None:
        """The index of the run set with :meth:`set_run`, or ``None``."""
        return self._current

    @property
    def v_idx(self) -> int | None:
        """The current run index (pypet's name for :attr:`current_run`)."""
        return self._current

    @property
    def is_locked(self) -> bool:
        """Whether parameters are locked because runs execute."""
        return self._locked

    def set_run(self, run: int | str) -> None:
        """Show run ``run``'s values: explored parameters and ``crun`` follow it.

        Parameters
        ----------
        run : int or str
            A run index or run name (``"run_00000013"``).
        """
        idx = run_index(run)
        self._check_run(idx)
        self.__dict__["_current"] = idx

    def restore_default(self) -> None:
        """Undo :meth:`set_run`: parameters show their defaults again."""
        self.__dict__["_current"] = None

    def iter_runs(self) -> Iterator[int]:
        """Set each run in turn and yield its index; defaults are restored after."""
        try:
            for idx in range(self._n_runs):
                self.set_run(idx)
                yield idx
        finally:
            self.restore_default()

    def _check_run(self, idx: int) -> None:
        if not 0 <= idx < self._n_runs:
            raise ExplorationError(
                f"trajectory {self.name!r} has no run {idx}: it has {self._n_runs} run(s), "
                f"0..{self._n_runs - 1}")

    @contextlib.contextmanager
    def _locked_parameters(self) -> Iterator[None]:
        self.__dict__["_locked"] = True
        try:
            yield
        finally:
            self.__dict__["_locked"] = False

    # ---------------------------------------------------------------- inventories
    def parameters_dict(self, branches: Sequence[str] = _PARAMETER_BRANCHES
                        ) -> dict[str, Parameter]:
        """Every parameter node of the given branches by full name."""
        return {node.full_name: node for branch in branches
                for node in self._roots[branch].leaves() if isinstance(node, Parameter)}

    def results_list(self) -> list[Result]:
        """Every :class:`Result` node (not the per-run results)."""
        return [node for node in self._roots["results"].leaves() if isinstance(node, Result)]

    @property
    def run_templates(self) -> dict[str, str]:
        """Per-run result names (with ``$``) and their comments."""
        return dict(self._run_templates)

    # ------------------------------------------------------------------- storage
    @property
    def filename(self) -> str | None:
        """The file the trajectory is stored in, or ``None``."""
        return None if self._store is None else self._store.filename

    def store(self, filename: str | None = None, *, overwrite_file: bool = False) -> None:
        """Write the trajectory to its HDF5 file (or to ``filename``).

        Parameters, exploration and results added since the last store are written;
        stored data is kept. Storing under a new file name copies everything,
        stored runs included, and the trajectory then belongs to that file.

        Parameters
        ----------
        filename : str, optional
            Target file; needed the first time.
        overwrite_file : bool
            Replace a different trajectory of the same name in the file (only that
            trajectory; others in the file are kept).

        Raises
        ------
        TrajectoryExistsError
            The file already holds another trajectory of this name.
        """
        if filename is None:
            if self._store is None:
                raise ExplorerError(
                    f"trajectory {self.name!r} has no file yet: call traj.store('file.h5')")
        elif self._store is None or not self._store.same_file(filename):
            store = backend().open(filename, self.name)
            store.create(self.comment, self.allow_pickle, overwrite=overwrite_file,
                         copy_from=self._store)
            self._bind(store, copied=self._store is not None)
        self._write()

    def _write(self) -> None:
        """Hand the store what changed since the last store (see ``TrajectoryChanges``)."""
        store = self._store
        assert store is not None
        revision = (self._revision, self._tree_revision)
        pending = self._pending_results
        results = [result for result in self.results_list()
                   if not result.stored and id(result) not in pending]
        if self._handed_at == revision and not results and not self._memory_runs:
            return
        handed_tree = self._handed_at[1] if self._handed_at is not None else None
        tree = None if handed_tree == self._tree_revision else [
            TreeRecord(node.full_name, node.comment, node.kind, node.default)
            if isinstance(node, Parameter) else TreeRecord(node.full_name, node.comment)
            for branch in _PARAMETER_BRANCHES for node in self._roots[branch].walk()]
        start = min(self._stored_points, len(self)) if self._explored else 0
        exploration = {name: self.get(name).range[start:] for name in self._explored}
        records = [ResultRecord(result.full_name, result.comment,
                                {item: value.load() if isinstance(value, LazyItem) else value
                                 for item, value in result._raw_items().items()},
                                self._result_groups(result.full_name))
                   for result in results]
        run_items = list(self._memory_runs.entries())
        changes = TrajectoryChanges(
            self.comment, len(self), tree,
            {branch: self._roots[branch].comment for branch in _PARAMETER_BRANCHES},
            list(self._explored), exploration, start, records, run_items)
        points = len(self) if self._explored else 0

        def stored() -> None:  # committed: only now is what was written stored
            self._memory_runs.discard(run_items)  # not what was added since
            for result in results:
                result.stored = True
                pending.discard(id(result))
            self.__dict__["_stored_at"] = revision
            self.__dict__["_stored_points"] = max(self._stored_points, points)

        def dropped() -> None:  # not committed after all: written again by the next store
            for result in results:
                pending.discard(id(result))
            self.__dict__["_handed_at"] = self._stored_at

        # until committed (with an open appender's runs, later), not handed over again
        pending.update(id(result) for result in results)
        self.__dict__["_handed_at"] = revision
        try:
            store.write(changes, stored, dropped)
        except BaseException:
            dropped()
            raise

    def _result_groups(self, full_name: str) -> list[tuple[str, str]]:
        """Full name and comment of the groups above a result, outermost first."""
        segments = full_name.split(".")
        groups = [("results", self._roots["results"].comment)]
        for depth in range(2, len(segments)):
            name = ".".join(segments[:depth])
            groups.append((name, getattr(self.get(name), "comment", "")))
        return groups

    def _bind(self, store: TrajectoryStore, *, copied: bool = False,
              stored: bool = False) -> None:
        """Belong to ``store``: what the trajectory holds is stored there if ``stored``
        (it was read from it) or ``copied`` (the store copied its previous file)."""
        d = self.__dict__
        d["_store"] = store
        d["_pending_results"] = set()
        if stored:
            d["_stored_at"] = d["_handed_at"] = (self._revision, self._tree_revision)
            d["_stored_points"] = len(self) if self._explored else 0
        elif not copied:
            d["_stored_at"] = d["_handed_at"] = None
            d["_stored_points"] = 0
            for result in self.results_list():
                result.stored = False
        else:
            d["_handed_at"] = self._stored_at

    @classmethod
    def _from_stored(cls, name: str, stored: StoredTrajectory, store: TrajectoryStore,
                     allow_pickle: bool) -> Trajectory:
        """The trajectory a store read (see ``StoredTrajectory``), bound to it."""
        traj = cls(name, stored.comment, allow_pickle=allow_pickle)
        adders = {"parameters": traj.add_parameter,
                  "derived_parameters": traj.add_derived_parameter, "config": traj.add_config}
        for record in stored.tree:
            if record.kind is None:
                traj.add_group(record.full_name, record.comment)
            else:
                adders[record.full_name.split(".")[0]](record.full_name, record.value,
                                                       record.comment)
        if stored.exploration:
            traj._apply(stored.exploration, append=False, checked=True)  # checked when stored
        for group, comment in stored.result_groups:
            traj.add_group(group, comment)
        for stored_result in stored.results:
            result = Result("", stored_result.items, stored_result.comment)
            result.stored = True
            traj._put_result(stored_result.full_name.split(".")[1:], result, overwrite=False)
        for template, comment in stored.templates.items():
            traj._register_template(template, comment)
        traj._bind(store, stored=True)
        traj.__dict__["_loaded"] = True
        return traj

    def _add_run_records(self, records: list[RunRecord]) -> None:
        """Register the result templates of records the environment wrote."""
        for record in records:
            for template, (comment, _) in record.results.items():
                self._register_template(template, comment)

    def close(self) -> None:
        """Release the file handle (data stays readable by reopening)."""
        if self._store is not None:
            self._store.close()

    def to_frame(self) -> pd.DataFrame:
        """A table with one row per run.

        Columns: the explored parameters (short names where unique), every scalar
        item of the per-run results, ``return_value``, ``status`` and
        ``duration`` (seconds) of each run.
        """
        return trajectory_frame(self)

    def failures(self) -> pd.DataFrame:
        """Why runs failed: one row per run whose last attempt raised.

        Returns
        -------
        pandas.DataFrame
            Indexed by run index (``run``), with columns ``error``
            (``"ExceptionType: message"``) and ``traceback``; empty when no run failed.
        """
        import pandas as pd

        failures = self._store.run_failures(range(len(self))) if self._store else {}
        index = pd.Index(list(failures), name="run", dtype=np.int64)
        return pd.DataFrame({"error": [error for error, _ in failures.values()],
                             "traceback": [trace for _, trace in failures.values()]},
                            index=index, dtype=object)

    def sessions(self) -> pd.DataFrame:
        """Provenance: one row per ``env.run`` (or optimizer) session that wrote runs.

        Returns
        -------
        pandas.DataFrame
            One row per session, oldest first; columns are the record's fields
            (when and where it ran, with which versions, git commit and command,
            which runs). Empty for a trajectory not stored yet.
        """
        import pandas as pd

        records = self._store.sessions() if self._store is not None else []
        return pd.DataFrame.from_records(records) if records else pd.DataFrame()

    def _status_counts(self) -> dict[str, int]:
        """How many runs are ``completed``, ``failed`` and ``pending``."""
        counts = {"completed": 0, "failed": 0, "pending": len(self)}
        if self._store is None:
            return counts
        table = self._store.run_table()
        inside = table.idx < len(self)
        for status in (RunStatus.COMPLETED, RunStatus.FAILED):
            counts[status.name.lower()] = int(np.count_nonzero(table.status[inside] == status))
        counts["pending"] = len(self) - counts["completed"] - counts["failed"]
        return counts

    def to_xarray(self) -> xr.Dataset:
        """The runs as an :class:`xarray.Dataset` (needs the ``xarray`` extra).

        For a cartesian exploration the dimensions are the explored parameters, in
        the product's order; otherwise the dimension is ``run`` with the explored
        parameters as coordinates on it. Per-run arrays of one shape add their own
        dimensions (``<item>_dim_0``, ...); scalar items and return values are
        variables; runs without a value (failed, not run) hold NaN.
        """
        return trajectory_dataset(self)

    def _repr_html_(self) -> str:
        return trajectory_html(self)

    def __repr__(self) -> str:
        return trajectory_text(self)


def trajectory_names(filename: str) -> list[str]:
    """Names of the trajectories stored in ``filename``; see :func:`explorer.trajectory_names`."""
    return backend().trajectory_names(filename)


def load_trajectory(filename: str, name: str | None = None, *, load: str = "lazy",
                    allow_pickle: bool = False) -> Trajectory:
    """Open a stored trajectory; see :func:`explorer.load_trajectory`."""
    storage = backend()
    if name is None:
        names = storage.trajectory_names(filename)
        if len(names) != 1:
            raise TrajectoryNotFoundError(
                f"{filename!r} holds {len(names)} trajectories "
                f"({', '.join(names) or 'none'}); pass the name of the one to load")
        name = names[0]
    store = storage.open(filename, name)
    try:
        stored = store.read(load, allow_pickle)
        try:
            return Trajectory._from_stored(name, stored, store, allow_pickle)
        except FileFormatError:
            raise
        except ExplorerError as error:  # what the file holds does not fit together
            raise FileFormatError(
                f"{filename!r} is damaged or is not a valid explorer file: trajectory "
                f"{name!r}: {type(error).__name__}: {error}") from error
    except FileFormatError:
        store.close()  # a damaged file is not kept open: it may be repaired meanwhile
        raise
