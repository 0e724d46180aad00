"""numba-compiled simulators as run functions, and their batched evaluation.

A *simulator* is a ``numba.njit`` function whose arguments are named after the
trajectory's parameters (short names) and whose return values are the run's
outputs. ``env.run(simulator, outputs=("V", "nspikes"), result="neuron")`` stores
them as ``results.neuron.<run>.V`` and ``results.neuron.<run>.nspikes``.

Where the outputs have a fixed shape, a whole chunk of runs is evaluated inside
compiled code: the chunk's explored values go in as arrays, a compiled loop
calls the simulator for every point and writes its outputs into preallocated
stacked arrays, which are encoded for the file in one piece. The loop is
generated for the simulator's argument pattern and compiled once per process;
the simulator itself uses numba's on-disk cache when it was declared with
``cache=True``. Whatever cannot be batched (outputs whose shape varies, values
numba cannot take as arrays, a run that raises) is run one point at a time, so
that each failing run is recorded on its own.
"""
from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ExplorationError
from .execution.chunking import Points
from .naming import split_name

__all__ = ["Simulator", "simulator", "is_jitted", "SimulatorPlan", "plan_simulator",
           "BatchOutcome", "evaluate_batch", "call_simulator"]


def is_jitted(function: Any) -> bool:
    """Whether ``function`` is a numba-compiled (``njit``) dispatcher."""
    return type(function).__module__.startswith("numba.") and hasattr(function, "py_func")


@dataclass(frozen=True)
class Simulator:
    """A compiled simulator with the names of its outputs and of its result group.

    Parameters
    ----------
    function : numba dispatcher
        The ``numba.njit`` function; its argument names are parameter short
        names (or full names with dots replaced by nothing: use short names).
    outputs : tuple of str
        Names of the values it returns, in order.
    result : str
        The result group: outputs go to ``results.<result>.<run>.<output>``.
    parallel : bool
        Evaluate a chunk's points with ``numba.prange`` on several threads.
    batch : bool
        Evaluate whole chunks in compiled code (``False``: one call per run).
    """

    function: Any
    outputs: tuple[str, ...]
    result: str
    parallel: bool = False
    batch: bool = True

    def __post_init__(self) -> None:
        if not is_jitted(self.function):
            raise TypeError(f"a simulator must be a numba.njit function, got {self.function!r}")
        outputs = (self.outputs,) if isinstance(self.outputs, str) else tuple(self.outputs)
        if not outputs:
            raise ValueError("a simulator needs at least one output name")
        for name in outputs:
            split_name(name)  # a valid item name
        if len(set(outputs)) != len(outputs):
            raise ValueError(f"output names repeat: {outputs}")
        split_name(self.result)
        object.__setattr__(self, "outputs", outputs)

    @property
    def name(self) -> str:
        return getattr(self.function, "__name__", "simulator")

    @property
    def arguments(self) -> tuple[str, ...]:
        """The simulator's argument names, in call order."""
        return tuple(inspect.signature(self.function.py_func).parameters)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)


def simulator(function: Callable[..., Any] | None = None, *, outputs: Sequence[str],
              result: str | None = None, cache: bool = True, parallel: bool = False,
              batch: bool = True) -> Any:
    """Declare a simulator's outputs and result group (a decorator).

    The function is compiled with ``numba.njit(cache=cache)`` unless it already
    is a numba function. ``env.run(sim)`` then needs no further arguments::

        @ex.simulator(outputs=("V", "nspikes"), result="neuron")
        def lif(V_init, I, tau_V, tau_ref, dt, duration):
            ...
            return V, nspikes

    Parameters
    ----------
    outputs : sequence of str
        Names of the returned values, in order.
    result : str, optional
        Result group of the outputs (default: the function's name).
    cache : bool
        numba's on-disk cache for a function compiled here.
    parallel : bool
        Evaluate each chunk's points on several threads (``numba.prange``).
    batch : bool
        Evaluate whole chunks in compiled code.
    """

    def declare(function: Callable[..., Any]) -> Simulator:
        if not is_jitted(function):
            import numba

            function = numba.njit(cache=cache)(function)
        return Simulator(function, tuple(outputs), result or function.__name__, parallel, batch)

    return declare if function is None else declare(function)


# ---------------------------------------------------------------------- binding
@dataclass
class SimulatorPlan:
    """How to call a simulator for the runs of one trajectory (sent to workers).

    Attributes
    ----------
    simulator : Simulator
    sources : tuple
        Per argument: the full name of the explored parameter that feeds it, or
        ``None`` when it takes the same value in every run (``constants``).
    constants : dict
        Argument name -> value of arguments not explored.
    outputs : list of (shape, dtype), or None
        Shape and dtype of each output as the first run returned them; ``None``
        when they cannot be stacked (the chunk is then run point by point).
    single : bool
        The simulator returns its one output bare, not in a tuple.
    """

    simulator: Simulator
    sources: tuple[str | None, ...]
    constants: dict[str, Any]
    outputs: list[tuple[tuple[int, ...], str]] | None = None
    single: bool = False
    _buffers: list[np.ndarray] = field(default_factory=list, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_buffers": []}  # buffers stay in the process that made them

    def output_buffers(self, n: int) -> list[np.ndarray]:
        """Stacked arrays for ``n`` runs' outputs, reused from block to block.

        Fresh arrays of a chunk's size would be fresh memory every time, and
        touching it page by page costs about as much as a cheap simulator.
        """
        if not self._buffers or len(self._buffers[0]) < n:
            assert self.outputs is not None  # known once the simulator is planned
            self._buffers = [np.empty((n, *shape), dtype=dtype) for shape, dtype in self.outputs]
        return [buffer[:n] for buffer in self._buffers]

    @property
    def template(self) -> str:
        return f"results.{self.simulator.result}.$"

    def arguments(self, values: dict[str, Any]) -> list[Any]:
        """The call's arguments for one run's explored ``values``."""
        return [_plain(values[source]) if source is not None else self.constants[name]
                for name, source in zip(self.simulator.arguments, self.sources)]

    def outputs_of(self, returned: Any) -> tuple[Any, ...]:
        """The returned values as a tuple matching ``outputs``; a clear error if not."""
        names = self.simulator.outputs
        values = (returned,) if self.single else returned
        if not isinstance(values, tuple) or len(values) != len(names):
            got = f"{len(values)} values" if isinstance(values, tuple) else \
                f"one {type(values).__name__}"
            raise ExplorationError(
                f"simulator {self.simulator.name!r} returned {got}, but outputs= names "
                f"{len(names)}: {', '.join(names)}")
        return values


def plan_simulator(sim: Simulator, context: Any, first: dict[str, Any]) -> SimulatorPlan:
    """Bind ``sim``'s arguments to the parameters of a run context and probe its outputs.

    ``first`` is the first run's explored values; the simulator is called once
    with them to learn the outputs' shapes (and to check that it returns as
    many values as ``outputs`` names).

    Raises
    ------
    ExplorationError
        An argument names no parameter, or names one ambiguously, or the
        simulator returns a different number of values than ``outputs`` names.
    """
    signature = inspect.signature(sim.function.py_func)
    sources: list[str | None] = []
    constants: dict[str, Any] = {}
    for name, argument in signature.parameters.items():
        if argument.kind in (argument.VAR_POSITIONAL, argument.VAR_KEYWORD):
            raise ExplorationError(
                f"simulator {sim.name!r} takes *{name}; its arguments must each name a parameter")
        full = context.shortcuts.get(name, "")
        if full is None:
            matches = [f for f in context.defaults if f.rsplit(".", 1)[-1] == name]
            raise ExplorationError(
                f"argument {name!r} of simulator {sim.name!r} is ambiguous: it matches "
                f"{', '.join(matches)}; rename the argument or the parameters")
        if not full:
            if argument.default is not argument.empty:
                sources.append(None)
                constants[name] = argument.default
                continue
            known = ", ".join(sorted(k for k, v in context.shortcuts.items() if v)) or "none"
            raise ExplorationError(
                f"argument {name!r} of simulator {sim.name!r} matches no parameter of "
                f"trajectory {context.name!r} (parameters: {known})")
        if full in context.explored:
            sources.append(full)
        else:
            sources.append(None)
            constants[name] = _plain(context.defaults[full])
    plan = SimulatorPlan(sim, tuple(sources), constants)
    try:
        returned = sim.function(*plan.arguments(first))
    except Exception as err:
        from numba.core.errors import TypingError

        if isinstance(err, TypingError):  # would fail every run the same way
            raise ExplorationError(
                f"simulator {sim.name!r} does not compile for the values of the first run "
                f"({', '.join(f'{k}={v!r}' for k, v in zip(sim.arguments, plan.arguments(first)))}"
                f"): {err}") from None
        return plan  # the run fails again when it runs, and is recorded then
    plan.single = len(sim.outputs) == 1 and not isinstance(returned, tuple)
    plan.outputs = _stackable(plan.outputs_of(returned))
    return plan


def _plain(value: Any) -> Any:
    """A parameter value as numba takes it (lists become arrays)."""
    return np.asarray(value) if isinstance(value, list) else value


def _stackable(values: tuple[Any, ...]) -> list[tuple[tuple[int, ...], str]] | None:
    specs = []
    for value in values:
        if isinstance(value, (bool, int, float, complex, np.generic)):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biufc":
            return None
        specs.append((value.shape, value.dtype.str))
    return specs


# ---------------------------------------------------------------------- one run
def call_simulator(view: Any, plan: SimulatorPlan) -> None:
    """A run function calling the simulator for one run (the unbatched path)."""
    values = {source: view._value(source) for source in plan.sources if source is not None}
    returned = plan.simulator.function(*plan.arguments(values))
    view.add_result(f"{plan.simulator.result}.$",
                    **dict(zip(plan.simulator.outputs, plan.outputs_of(returned))))


# ---------------------------------------------------------------------- batches
@dataclass
class BatchOutcome:
    """What a batched evaluation of a chunk took."""

    runs: np.ndarray
    seconds: float
    compile_seconds: float


#: A chunk is evaluated in blocks of about this many bytes of outputs, each
#: handed on (compressed) while it is still in the processor's cache.
BLOCK_BYTES = 2 * 1024 * 1024

Consume = Callable[[np.ndarray, dict[str, np.ndarray], float, float], None]


def evaluate_batch(plan: SimulatorPlan, chunk: Points,
                   consume: Consume) -> BatchOutcome | None:
    """Evaluate every point of ``chunk`` in a compiled loop, block by block.

    ``consume(runs, outputs, started, seconds)`` gets each block's outputs
    (stacked arrays, valid only during the call) as soon as it is computed.
    Returns ``None`` when the chunk cannot be batched (its values are not
    numeric arrays, or some output's shape differs from the first run's, or a
    run raised); the caller then discards what it consumed and runs the
    points one at a time.
    """
    if plan.outputs is None or not chunk:
        return None
    import numba

    arrays = []
    for name, source in zip(plan.simulator.arguments, plan.sources):
        if source is None:
            arrays.append(plan.constants[name])
            continue
        column = np.asarray(chunk.column(source))
        if column.dtype.kind not in "biufc":
            return None
        arrays.append(column)
    n = len(chunk)
    row_bytes = sum(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
                    for shape, dtype in plan.outputs)
    block = max(1, min(n, BLOCK_BYTES // max(row_bytes, 1)))
    outputs = plan.output_buffers(block)
    explored = tuple(source is not None for source in plan.sources)
    loop = _loop(tuple(len(shape) for shape, _ in plan.outputs), explored, plan.single,
                 plan.simulator.parallel)

    def call(start: int, stop: int) -> tuple[Any, ...]:
        return (plan.simulator.function, *(out[:stop - start] for out in outputs),
                *(a[start:stop] if e else a for a, e in zip(arrays, explored)))

    clock = time.perf_counter()
    try:
        loop.compile(tuple(numba.typeof(value) for value in call(0, block)))
    except Exception:
        return None
    compile_seconds = time.perf_counter() - clock
    runs = np.asarray(chunk.indices, dtype=np.int64)
    seconds = 0.0
    for start in range(0, n, block):
        stop = min(n, start + block)
        arguments = call(start, stop)
        started = time.time()
        clock = time.perf_counter()
        try:
            loop(*arguments)
        except Exception:  # a run raised, or returned another shape: run point by point
            return None
        took = time.perf_counter() - clock
        seconds += took
        stacked = dict(zip(plan.simulator.outputs, arguments[1:1 + len(outputs)]))
        consume(runs[start:stop], stacked, started, took)
    return BatchOutcome(runs, seconds, compile_seconds)


#: Compiled loops of this process, by (output ranks, explored pattern, single, parallel).
_LOOPS: dict[tuple, Any] = {}


def _loop(ranks: tuple[int, ...], explored: tuple[bool, ...], single: bool,
          parallel: bool) -> Any:
    """The compiled loop for an argument pattern (generated once per process).

    ``ranks`` holds each output's number of dimensions. One-dimensional
    outputs are copied element by element: numba's general array assignment
    takes seconds to compile, this takes a fraction of one.
    """
    key = (ranks, explored, single, parallel)
    if key not in _LOOPS:
        import numba

        outs = [f"out{i}" for i in range(len(ranks))]
        args = [f"a{i}" for i in range(len(explored))]
        call = ", ".join(f"{a}[i]" if e else a for a, e in zip(args, explored))
        lines = [f"def loop(simulate, {', '.join(outs + args)}):",
                 f"    for i in numba.prange({outs[0]}.shape[0]):",
                 f"        returned = simulate({call})"]
        for k, (out, rank) in enumerate(zip(outs, ranks)):
            value = "returned" if single else f"returned[{k}]"
            if rank == 1:
                lines += [f"        value = {value}",
                          f"        if value.shape[0] != {out}.shape[1]:",
                          "            raise ValueError('an output changed shape')",
                          "        for j in range(value.shape[0]):",
                          f"            {out}[i, j] = value[j]"]
            else:
                lines.append(f"        {out}[i] = {value}")
        namespace: dict[str, Any] = {"numba": numba}
        exec(compile("\n".join(lines) + "\n", f"<explorer simulator loop {key}>", "exec"),
             namespace)
        _LOOPS[key] = numba.njit(parallel=parallel)(namespace["loop"])
    return _LOOPS[key]
