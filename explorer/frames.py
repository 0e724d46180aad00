"""A trajectory's runs as a pandas table."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .records import RunStatus, is_record

if TYPE_CHECKING:
    import pandas as pd

    from .storage.base import RunTable
    from .trajectory import Trajectory

__all__ = ["trajectory_frame"]

_STATUS_NAMES = {int(status): status.name.lower() for status in RunStatus}


def _short(full: str) -> str:
    return full.rsplit(".", 1)[-1]


#: Columns that every frame has; a parameter or item of the same name gets its long name.
RUN_COLUMNS = ("return_value", "status", "duration", "error")


def _unique_labels(names: list[tuple[str, str]]) -> list[str]:
    """Short labels where unique, else the long ones: ``names`` is ``[(short, long)]``."""
    shorts = [short for short, _ in names]
    return [short if shorts.count(short) == 1 and short not in RUN_COLUMNS else long
            for short, long in names]


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str) or \
        np.ndim(value) == 0 and not isinstance(value, bytes) and value is not None


def trajectory_frame(trajectory: Trajectory) -> pd.DataFrame:
    """One row per run: explored parameters, scalar per-run results and run status.

    Parameters
    ----------
    trajectory : Trajectory
        A trajectory, stored or not.

    Returns
    -------
    pandas.DataFrame
        Indexed by run index (``run``); columns are the explored parameters
        (short names where unique), each scalar item (number or string) of the
        per-run results (its item name where unique, else ``<result>.<item>``),
        the return value (a record, a dict of scalars, as one column per key: the
        key where unique, else ``return_value.<key>``), ``status`` (``completed``,
        ``failed`` or ``pending``), ``duration`` (seconds), and ``error`` when a
        run failed. Runs without a value hold NaN/None.
    """
    import pandas as pd

    n_runs = len(trajectory)
    index = pd.RangeIndex(n_runs, name="run")
    scalars: dict[tuple[str, str], pd.Series] = {}
    store = trajectory._store
    table: RunTable | None = None
    returns: dict[int, Any] = {}
    errors: dict[int, str] = {}
    if store is not None:
        with store.snapshot():  # one commit: no run shows completed without its values
            stored = store.scalar_columns()
            table = store.run_table()
            returns = store.return_values(range(n_runs))
            if np.any(table.status == RunStatus.FAILED):
                errors = store.run_errors(range(n_runs))
        for (template, item), (runs, values) in stored.items():
            scalars[(template, item)] = pd.Series(values, index=runs)
    memory = trajectory._memory_runs
    for template in memory.templates():
        for item in memory.items(template):
            runs = list(memory.runs(template, item))
            values = [memory.get(template, item, idx) for idx in runs]
            if all(map(_is_scalar, values)) and \
                    len({isinstance(value, str) for value in values}) == 1:
                series = pd.Series(values, index=runs)
                if (template, item) in scalars:
                    series = series.combine_first(scalars[(template, item)])
                scalars[(template, item)] = series

    records = {idx: value for idx, value in returns.items() if is_record(value)}
    fields = pd.DataFrame.from_dict(records, orient="index") if records else pd.DataFrame()
    explored = trajectory.explored_parameters
    named = [(_short(full), full.split(".", 1)[1]) for full in explored]
    named += [(item, f"{template.split('.', 1)[1].replace('.$', '')}.{item}")
              for template, item in scalars]
    named += [(key, f"return_value.{key}") for key in fields.columns]
    labels = _unique_labels(named)
    columns: dict[str, Any] = {}
    for label, full in zip(labels, explored):
        columns[label] = trajectory.get(full).range
    for label, series in zip(labels[len(explored):], scalars.values()):
        columns[label] = series.reindex(index)
    for label, key in zip(labels[len(explored) + len(scalars):], fields.columns):
        columns[label] = fields[key].reindex(index)

    frame = pd.DataFrame(columns, index=index)
    status = np.zeros(n_runs, dtype=np.int8)
    duration = np.full(n_runs, np.nan)
    if table is not None:
        inside = table.idx < n_runs
        status[table.idx[inside]] = table.status[inside]
        duration[table.idx[inside]] = table.duration[inside]
    others = {idx: value for idx, value in returns.items() if idx not in records}
    if others or not records:
        frame["return_value"] = pd.Series(others, dtype=object if not others else None) \
            .reindex(index) if others else None
    frame["status"] = [_STATUS_NAMES[int(code)] for code in status]
    frame["duration"] = duration
    if errors:
        frame["error"] = pd.Series(errors, dtype=object).reindex(index)
    return frame
