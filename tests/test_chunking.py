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
    planner = ChunkPlanner(todo, lambda runs, budget: Points.select(runs, {"x": list(range(1000))},
                                                                     budget), slots=2)
    seen = []
    for chunk in planner:
        seen += chunk.indices
        assert chunk.column("x") == chunk.indices
        assert chunk.budget is None                # not time-boxed: every chunk runs whole
        planner.observe(len(chunk), 1e-4 * len(chunk))   # 0.1 ms a run
    assert seen == todo
    assert planner.remaining == 0


def test_planner_sizes_chunks_from_the_measured_cost():
    planner = ChunkPlanner(list(range(100_000)), slots=2, target_seconds=0.2)
    first = next(iter(planner))
    assert len(first) == 256                      # a 16th of the runs per slot, at most 256
    assert ChunkPlanner(list(range(1000)), slots=2).plan() == (31, None)
    planner.observe(len(first), 0.001 * len(first))  # 1 ms a run: 200 runs make 0.2 s
    assert planner.plan() == (200, None)
    planner.observe(10, 0.002 * 10)               # a dearer chunk leaves the estimate alone
    assert planner.plan() == (200, None)
    assert ChunkPlanner(list(range(50)), fixed=7).plan() == (7, None)


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


def test_time_boxed_planner_spreads_half_the_runs_over_the_first_chunks_with_a_budget():
    planner = ChunkPlanner(list(range(10_000)), lambda runs, budget: (runs, budget), slots=2,
                           target_seconds=0.3, time_boxed=True, budget_seconds=0.8)
    first = [next(planner) for _ in range(4)]     # two chunks a slot before any result
    assert [len(runs) for runs, _ in first] == [1250] * 4
    assert {budget for _, budget in first} == {0.8}
    assert planner.remaining == 5000
    planner.observe(1000, 0.1)                     # 0.1 ms a run: 3000 runs make 0.3 s
    planner.give_back(first[0][0][1000:])          # the budget ran out after 1000 runs
    runs, budget = next(planner)
    assert budget is None                          # measured: sized, and run whole
    assert runs[:250] == list(range(1000, 1250))   # the undone runs lead
    assert runs[250:] == list(range(5000, 5000 + len(runs) - 250))
    assert len(runs) == 1313                       # a 4th of the 5250 left
    # a share no larger than the small first chunks is not time-boxed
    small = ChunkPlanner(list(range(40)), lambda runs, budget: (runs, budget), slots=2,
                         time_boxed=True)
    assert next(small) == (list(range(10)), None)


def test_runs_handed_back_go_out_again_before_new_ones_and_each_run_once():
    todo = list(range(0, 3000, 3))
    planner = ChunkPlanner(todo, slots=2, time_boxed=True)
    seen: list[int] = []
    pending = [next(planner), next(planner)]
    assert planner.remaining == len(todo) - sum(map(len, pending))
    done, undone = pending[0][:40], pending[0][40:]
    seen += done
    planner.observe(len(done), 0.004)              # 0.1 ms a run: chunks of 3000 runs
    planner.give_back(undone)
    assert planner.remaining == len(todo) - len(pending[1]) - len(done)
    again = next(planner)
    assert again[:len(undone)] == undone           # the undone runs lead the next chunk
    seen += pending[1] + again
    for chunk in planner:                          # the rest, handed out whole
        seen += chunk
    assert sorted(seen) == todo and len(seen) == len(todo)
    with pytest.raises(StopIteration):
        next(planner)
    planner.give_back([3, 6])                      # a dry planner fills again
    assert next(planner) == [3, 6] and planner.remaining == 0


def test_a_splittable_chunk_gives_up_runs_it_has_not_started_and_keeps_the_others():
    chunk = Points.select(range(10), RANGES, splittable=True)
    runs = iter(chunk)
    next(runs)
    assert chunk.taken() == 1 and chunk.pace() is None  # the first run has only just begun
    taken = [0] + [next(runs)[0] for _ in range(2)]    # runs 0-2 started
    assert chunk.left() == 7 and chunk.taken() == 3 and chunk.pace() >= 0
    assert chunk.give_up(4) == (6, 4)                  # runs 6-9 are someone else's
    assert [idx for idx, _ in runs] == [3, 4, 5]       # it stops before them
    assert chunk.give_up(1) is None                    # nothing left to give
    head, tail = chunk.split_at(6)
    assert taken + head.indices[3:] == head.indices == list(range(6))
    assert tail.splittable and tail.left() == 4        # a new chunk: nothing taken yet
    assert list(tail) == [(idx, {"neuron.I": RANGES["neuron.I"][idx], "seed": RANGES["seed"][idx]})
                          for idx in range(6, 10)]


def test_a_chunk_gives_up_at_most_what_is_left_and_only_if_splittable():
    waiting = Points.select([7, 8, 9], RANGES, budget=0.5, splittable=True)
    assert waiting.pace() is None                      # not started: no pace yet
    assert waiting.give_up(10) == (0, 3)               # all of it, before it starts
    assert list(waiting) == []
    fixed = Points.select([1, 2, 3], RANGES)
    assert fixed.give_up(2) is None and list(fixed) == list(Points.select([1, 2, 3], RANGES))
    batch = Points.select([1, 2, 3], RANGES, splittable=True)
    batch.column("seed")                               # read whole, as a compiled loop does
    assert batch.left() == 0 and batch.give_up(2) is None


def test_split_progress_does_not_travel_and_chunks_join_in_order():
    chunk = Points.select([4, 5, 6, 7], RANGES, budget=1.0, splittable=True)
    next(iter(chunk))
    chunk.give_up(2)
    copy = pickle.loads(pickle.dumps(chunk))           # what a worker receives
    assert copy.splittable and copy.budget == 1.0 and copy.left() == 4
    joined = Points.joined([Points.select([9], RANGES, splittable=True),
                            Points.select([2, 3], RANGES, splittable=True)])
    assert joined.indices == [9, 2, 3] and joined.budget is None and joined.splittable
    assert joined.column("seed") == [RANGES["seed"][idx] for idx in (9, 2, 3)]
    assert not Points.joined([Points.select([1], RANGES),
                              Points.select([2], RANGES, splittable=True)]).splittable
