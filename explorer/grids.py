"""A trajectory's runs as an :class:`xarray.Dataset`: a grid when the exploration is one.

A cartesian exploration is recognised from its stored points: each explored
parameter takes a few distinct values, and the points are every combination of
them in nested-loop order (as :func:`~explorer.cartesian_product` makes them).
The dataset then has one dimension per explored parameter, slowest first;
otherwise (zipped, expanded off the grid, array-valued parameters) the
dimension is ``run``, with the explored parameters as coordinates on it.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ExplorerError

if TYPE_CHECKING:
    import xarray as xr

    from .trajectory import Trajectory

__all__ = ["Grid", "find_grid", "trajectory_dataset"]


class Grid:
    """The axes of a cartesian exploration.

    Attributes
    ----------
    names : list of str
        Full names of the explored parameters, slowest varying first.
    values : list of list
        Each axis' values, in the order the exploration visits them; run ``i``
        sits at flat position ``i`` of the grid (C order of :attr:`shape`).
    """

    def __init__(self, names: list[str], values: list[list[Any]]):
        self.names = names
        self.values = values

    @property
    def shape(self) -> tuple[int, ...]:
        """The number of values of each axis."""
        return tuple(len(axis) for axis in self.values)


def _codes(values: list[Any]) -> tuple[list[Any], np.ndarray] | None:
    """Distinct values in order of first appearance, and each value's number."""
    numbers: dict[Any, int] = {}
    codes = np.empty(len(values), dtype=np.int64)
    try:
        for i, value in enumerate(values):
            codes[i] = numbers.setdefault(value, len(numbers))
    except TypeError:  # arrays and lists: not a grid axis
        return None
    return list(numbers), codes


def find_grid(explored: dict[str, list[Any]]) -> Grid | None:
    """The grid the points of ``explored`` (name -> one value per run) form, if any.

    Every run must sit on its own point of the product of each parameter's
    distinct values, visited in nested-loop order for some order of the
    parameters (the slowest first).
    """
    if not explored:
        return None
    coded = {name: _codes(values) for name, values in explored.items()}
    if any(found is None for found in coded.values()):
        return None
    n_runs = len(next(iter(explored.values())))
    shape = [len(coded[name][0]) for name in explored]  # type: ignore[index]
    if math.prod(shape) != n_runs:
        return None
    # the slowest axis changes value least often between consecutive runs
    changes = {name: int(np.count_nonzero(np.diff(coded[name][1])))  # type: ignore[index]
               for name in explored}
    names = sorted(explored, key=lambda name: changes[name])
    sizes = tuple(len(coded[name][0]) for name in names)  # type: ignore[index]
    expected = np.unravel_index(np.arange(n_runs), sizes)
    if not all(np.array_equal(coded[name][1], axis)  # type: ignore[index]
               for name, axis in zip(names, expected)):
        return None
    return Grid(names, [coded[name][0] for name in names])  # type: ignore[index]


def _xarray() -> Any:
    try:
        import xarray
    except ImportError:
        raise ExplorerError("to_xarray() needs xarray: pip install 'explorer[xarray]' "
                            "(or pip install xarray)") from None
    return xarray


def _fill(values: np.ndarray, runs: np.ndarray, n_runs: int) -> np.ndarray:
    """One row per run: ``values[i]`` at run ``runs[i]``, NaN (or None) elsewhere."""
    if len(runs) == n_runs:
        return values
    dtype = values.dtype if values.dtype.kind in "fcO" else \
        np.dtype(object) if values.dtype.kind in "USb" else np.result_type(values.dtype, float)
    out = np.full((n_runs, *values.shape[1:]), None if dtype.kind == "O" else np.nan, dtype=dtype)
    out[runs] = values
    return out


def trajectory_dataset(trajectory: Trajectory) -> xr.Dataset:
    """The runs of ``trajectory`` as a Dataset; see :meth:`Trajectory.to_xarray`."""
    xarray = _xarray()
    frame = trajectory.to_frame()
    n_runs = len(trajectory)
    explored = {full: trajectory.get(full).range for full in trajectory.explored_parameters}
    labels = dict(zip(trajectory.explored_parameters, frame.columns))
    grid = find_grid(explored)
    if grid is not None:
        dims = [labels[name] for name in grid.names]
        shape = grid.shape
        coords: dict[str, Any] = {labels[name]: axis for name, axis in
                                  zip(grid.names, grid.values)}
    else:
        dims, shape = ["run"], (n_runs,)
        coords = {"run": np.arange(n_runs)}
        coords.update({labels[name]: ("run", frame[labels[name]].to_numpy())
                       for name in trajectory.explored_parameters})

    def on_grid(rows: np.ndarray) -> np.ndarray:
        return rows.reshape(*shape, *rows.shape[1:])

    variables: dict[str, Any] = {}
    for column in frame.columns:
        if column in labels.values():
            continue
        values = frame[column].to_numpy()
        if values.dtype == object and column != "error" and all(
                isinstance(value, (int, float)) or value is None for value in values):
            values = values.astype(float)
        variables[column] = (dims, on_grid(values))
    taken = set(variables) | set(coords)
    for template in trajectory.run_templates:
        group = trajectory.get(template.rsplit(".", 1)[0]) if template.endswith(".$") else None
        if group is None:
            continue
        for name, item in group.run_items().items():
            item_shape = item.shape
            if item.dtype is None or not item_shape or len(item) == 0:
                continue  # scalars are frame columns; ragged or non-numeric are left out
            label = name if name not in taken else \
                f"{template.split('.', 1)[1].replace('.$', '')}.{name}"
            taken.add(label)
            rows = _fill(np.asarray(item[:]), item.runs, n_runs)
            variables[label] = ([*dims, *(f"{label}_dim_{k}" for k in range(len(item_shape)))],
                                on_grid(rows))
    return xarray.Dataset(variables, coords=coords,
                          attrs={"trajectory": trajectory.name, "comment": trajectory.comment})
