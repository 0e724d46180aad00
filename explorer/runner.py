"""What a worker does with a chunk of runs: run them, encode what they produced, hand it over.

This is the function the execution back ends map; it runs in whatever process
executes the chunk, so the costly encoding (stacking and compressing arrays)
happens beside the runs, in parallel, and the single writer only does I/O.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .execution.chunking import Points
from .records import RunRecord, RunStatus
from .runview import RunContext, iter_runs
from .simulators import SimulatorPlan, evaluate_batch
from .storage.base import Encoding

__all__ = ["ChunkReport", "RunJob", "run_job_chunk"]


@dataclass
class ChunkReport:
    """What a chunk hands back to the environment.

    Attributes
    ----------
    outcomes : list of (int, int, str)
        ``(run index, status, error text)`` per run, in the chunk's order; a
        chunk whose time budget ran out covers only its first runs.
    templates : dict
        Per-run result templates the runs added, with comments.
    seconds : float
        Work that grows with the chunk: the runs' durations and their encoding.
    batch : EncodedBatch or None
        The encoded results, unless the worker wrote them to the file itself.
    compile_seconds : float
        Time spent compiling a simulator's batch loop (not part of ``seconds``).
    """

    outcomes: list[tuple[int, int, str]]
    templates: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    batch: Any = None
    compile_seconds: float = 0.0


@dataclass
class RunJob:
    """Everything a chunk needs besides its points; shared by every chunk.

    ``writer``, when set, stores a batch itself (the ``storage="lock"`` mode);
    ``token`` is unique to one ``env.run``, and names what a chunk writes.
    ``simulator``, for a compiled simulator, lets whole chunks run in one
    compiled loop (``func`` then calls it for one run).
    """

    func: Callable[..., Any]
    context: RunContext
    args: Sequence[Any]
    kwargs: dict[str, Any]
    settings: Encoding
    writer: Callable[..., None] | None = None
    token: str = ""
    simulator: SimulatorPlan | None = None


def report_records(records: Iterable[RunRecord], settings: Encoding,
                   writer: Callable[..., None] | None = None,
                   name: str | None = None, budget: float | None = None) -> ChunkReport:
    """Encode ``records`` as they come and describe them; write them too when ``writer`` is given.

    ``records`` may be a generator of runs still executing: each record is
    encoded (its large arrays compressed) and dropped before the next run starts.
    With a ``budget``, no further record is taken once that many seconds have
    passed; the report's outcomes then cover only the records taken, in order.
    ``seconds`` of the report is the work that grows with the number of runs:
    the runs' durations plus the encoding, not the fixed cost of a write.
    ``name`` identifies the chunk to the writer, so that a chunk run twice
    (its worker died after writing) is stored once.
    """
    encoder = settings.encoder()
    outcomes: list[tuple[int, int, str]] = []
    templates: dict[str, str] = {}
    seconds = 0.0
    started = time.perf_counter()
    try:
        for record in records:
            clock = time.perf_counter()
            for template, (comment, _) in record.results.items():
                templates.setdefault(template, comment)
            outcomes.append((record.idx, int(record.status), record.error))
            encoder.add(record)
            seconds += time.perf_counter() - clock + record.duration
            if budget is not None and time.perf_counter() - started >= budget:
                break
    except BaseException:
        encoder.abandon()
        raise
    return _finish(encoder, ChunkReport(outcomes, templates, seconds), writer, name)


def _finish(encoder: Any, report: ChunkReport, writer: Callable[..., None] | None,
            name: str | None) -> ChunkReport:
    """Complete the encoding into ``report.batch``, or hand it to ``writer``."""
    clock = time.perf_counter()
    batch = encoder.finish()
    report.seconds += time.perf_counter() - clock
    if writer is not None:
        writer(batch, name)
        batch = None
    report.batch = batch
    return report


def report_batch(plan: SimulatorPlan, chunk: Points,
                 settings: Encoding, writer: Callable[..., None] | None = None,
                 name: str | None = None) -> ChunkReport | None:
    """Evaluate a chunk in a simulator's compiled loop, encoding block by block, and
    describe it; ``None`` if the chunk cannot be batched."""
    encoder = settings.encoder()
    encoding = 0.0

    def consume(runs: Any, outputs: dict[str, Any], started: float, seconds: float) -> None:
        nonlocal encoding
        clock = time.perf_counter()
        encoder.add_block(runs, started, seconds, plan.template, "", outputs)
        encoding += time.perf_counter() - clock

    try:
        outcome = evaluate_batch(plan, chunk, consume)
    except BaseException:
        encoder.abandon()
        raise
    if outcome is None:
        encoder.abandon()
        return None
    report = ChunkReport([(idx, int(RunStatus.COMPLETED), "") for idx in outcome.runs.tolist()],
                         {plan.template: ""}, outcome.seconds + encoding,
                         compile_seconds=outcome.compile_seconds)
    return _finish(encoder, report, writer, name)


def run_job_chunk(job: RunJob, chunk: Points) -> ChunkReport:
    """Run a chunk of points and report on it (on the first runs only, if its
    time budget runs out: the rest are the runs after those the report covers)."""
    name = f"{job.token}-{chunk.indices[0]:012d}-{len(chunk)}" if len(chunk) else None
    plan = job.simulator
    if plan is not None and plan.simulator.batch:
        report = report_batch(plan, chunk, job.settings, job.writer, name)
        if report is not None:
            return report
    records = iter_runs(job.func, job.context, chunk, job.args, job.kwargs)
    return report_records(records, job.settings, job.writer, name, chunk.budget)


def lost_chunk_records(chunk: Points, error: BaseException) -> list[RunRecord]:
    """Failed records for the runs of a chunk whose task failed as a whole."""
    text = f"{type(error).__name__}: {error}"
    return [RunRecord(idx, RunStatus.FAILED, error=f"the chunk running this run was lost: {text}")
            for idx in chunk.indices]


__all__ += ["report_records", "lost_chunk_records"]
