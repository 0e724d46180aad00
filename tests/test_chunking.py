"""Chunks of runs: what the planner hands out and what a chunk carries."""
import pickle

import pytest

from explorer.execution.chunking import ChunkPlanner, Points

RANGES = {"neuron.I": [0.1 * i for i in range(10)], "seed": list(range(100, 110))}


@pytest.mark.parametrize("indices", [[3], [0, 1, 2], [9, 2, 5, 7]])
def test_points_carry_each_runs_values_and_survive_pickling(indices):
    points = pickle.loads(pickle.dumps(Points.select(indices, RANGES)))
    assert len(points) == len(indices)
    assert points.indices == indices
    assert list(points) == [(idx, {"neuron.I": RANGES["neuron.I"][idx],
                                   "seed": RANGES["seed"][idx]}) for idx in indices]
    assert points.column("seed") == [RANGES["seed"][idx] for idx in indices]


def test_points_of_no_run_and_of_no_parameter():
    assert list(Points.select([], RANGES)) == []
    assert list(Points.select([4, 6], {})) == [(4, {}), (6, {})]


def test_planner_hands_out_every_run_once_in_order():
    todo = [idx for idx in range(1000) if idx % 7]
    planner = ChunkPlanner(todo, lambda runs: Points.select(runs, {"x": list(range(1000))}),
                           slots=2)
    seen = []
    for chunk in planner:
        seen += chunk.indices
        assert chunk.column("x") == chunk.indices
        planner.observe(len(chunk), 1e-4 * len(chunk))   # 0.1 ms a run
    assert seen == todo
    assert planner.remaining == 0


def test_planner_sizes_chunks_from_the_measured_cost():
    planner = ChunkPlanner(list(range(100_000)), slots=2, target_seconds=0.2)
    first = next(iter(planner))
    assert len(first) == 256                      # a 16th of the runs per slot, at most 256
    assert ChunkPlanner(list(range(1000)), slots=2).size() == 31
    planner.observe(len(first), 0.001 * len(first))  # 1 ms a run: 200 runs make 0.2 s
    assert planner.size() == 200
    planner.observe(10, 0.002 * 10)               # a dearer chunk leaves the estimate alone
    assert planner.size() == 200
    assert ChunkPlanner(list(range(50)), fixed=7).size() == 7


def test_planner_shrinks_chunks_near_the_end_but_not_below_a_quarter_of_the_target():
    planner = ChunkPlanner(list(range(2000)), slots=2, target_seconds=0.2)
    planner.observe(100, 0.1)                      # 1 ms a run: 200 runs make 0.2 s
    sizes = []
    for chunk in planner:
        sizes.append(len(chunk))
    assert sum(sizes) == 2000
    assert max(sizes) == 200
    assert min(sizes[:-1]) >= 50                   # only the very last may be smaller
    assert sizes[-2] < 200
