"""One pass of runs through an executor: what ``env.run`` does between planning and results.

A :class:`RunSession` takes the chunk reports as they come back and keeps
what follows from them in one place: the planner learns each chunk's cost and
gets back the runs a time-boxed chunk did not reach; the reports' batches go
to the appender, committed on its clock; failures, timings, the progress bar
and the session's provenance record are kept up to date. The environment
only builds the job and hands the reports over (:meth:`RunSession.absorb`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import DiskFullError
from .execution.chunking import ChunkPlanner, Points
from .provenance import collect, now
from .records import RunStatus
from .runner import ChunkReport, lost_chunk_records, report_records

__all__ = ["RunSession", "COMMIT_SECONDS", "TAIL_COMMIT_SECONDS"]

#: Finished runs are committed to the file at least this often (seconds)...
COMMIT_SECONDS = 2.0
#: ...and, once every run is handed out, this often: the last results are then
#: committed with the session record when the runs end.
TAIL_COMMIT_SECONDS = 10.0


class RunSession:
    """The bookkeeping of one pass of runs.

    Parameters
    ----------
    trajectory : Trajectory
        Learns the per-run result templates the runs add.
    planner : ChunkPlanner
        Hands out the runs; told each chunk's cost and the runs it left.
    appender : Appender
        Where the reports' batches go.
    own_appender : bool
        Whether this session commits and closes ``appender`` at the end (else
        a ``commits_every`` block does, on its clock).
    settings : Encoding
        Encodes the records of runs whose chunk was lost.
    bar : tqdm
        The progress bar.
    record : bool
        Whether the session log gets a provenance record.
    """

    def __init__(self, trajectory: Any, planner: ChunkPlanner, appender: Any,
                 own_appender: bool, settings: Any, bar: Any, record: bool):
        self.trajectory = trajectory
        self.planner = planner
        self.appender = appender
        self.own_appender = own_appender
        self.settings = settings
        self.bar = bar
        self.record: dict[str, Any] | None = {} if record else None
        self.failed: list[tuple[int, str]] = []
        self.reported = 0
        self.timings = {"run_seconds": 0.0, "compile_seconds": 0.0}

    def started(self) -> None:
        """The first chunks are out: collect the provenance facts meanwhile."""
        if self.record is not None:
            self.record.update(collect())  # versions, host, git state: a few ms

    def absorb(self, chunk: Points, report: ChunkReport | BaseException) -> None:
        """Take in one chunk's report (or the exception that lost the chunk)."""
        if isinstance(report, DiskFullError):  # a worker could not store runs
            raise report
        if isinstance(report, BaseException):
            report = report_records(lost_chunk_records(chunk, report), self.settings)
        self.planner.observe(len(report.outcomes), report.seconds)
        self.planner.give_back(chunk.indices[len(report.outcomes):])
        self.timings["run_seconds"] += report.seconds
        self.timings["compile_seconds"] += report.compile_seconds
        for template, comment in report.templates.items():
            self.trajectory._register_template(template, comment)
        self.failed += [(idx, error) for idx, status, error in report.outcomes
                        if status == RunStatus.FAILED]
        if report.batch is not None:
            self.appender.add(report.batch)
        self.reported += len(report.outcomes)
        self.bar.update(len(report.outcomes))
        if self.failed:
            self.bar.set_postfix(failed=len(self.failed), refresh=False)
        if self.appender.due(None if self.planner.remaining else TAIL_COMMIT_SECONDS):
            self.appender.commit()

    def finish(self, interrupted: Callable[[], bool], signal_name: str | None) -> None:
        """Close the bar, add the session record, and commit what is left."""
        self.bar.close()
        if self.record is not None:
            if not self.record:  # stopped before the first chunks were out
                self.record.update(collect())
            self.record.update(end=now(), runs=self.reported, interrupted=signal_name,
                               **self.timings)
        try:
            if self.record is not None:
                self.appender.add_session(self.record)
            if self.own_appender or self.appender.due() or interrupted():
                self.appender.commit(final=self.own_appender)
        finally:
            if self.own_appender:
                self.appender.close()
