"""``workers="auto"``: in this process for small explorations, a local cluster when
the measured work pays for its start-up (see ``explorer/execution/auto.py``)."""
from __future__ import annotations

import importlib.util
import pathlib
import sys
import time

import pytest

import explorer as ex
from explorer.execution.auto import CLUSTER_START_SECONDS, cores, worth_a_cluster

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "firing_rate.py"


def tutorial_module():
    """The tutorial example as a module (its folder on the path, as ``python examples/...``
    puts it, for the modules beside it)."""
    folder = str(EXAMPLE.parent)
    if folder not in sys.path:
        sys.path.append(folder)
    spec = importlib.util.spec_from_file_location("firing_rate_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def five_ms(view):
    time.sleep(0.005)
    return view.idx


def test_the_rule():
    assert not worth_a_cluster(1000.0, 1)  # one core: never
    assert not worth_a_cluster(CLUSTER_START_SECONDS * 2 - 0.1, 2)
    assert worth_a_cluster(CLUSTER_START_SECONDS * 2 + 0.1, 2)
    assert worth_a_cluster(CLUSTER_START_SECONDS * 1.4, 8)  # 8 cores: 3.43 s are enough


def test_the_tutorial_runs_in_this_process(tmp_path, neuron_traj, grid):
    tutorial = tutorial_module()
    neuron_traj.explore(grid)
    env = ex.Environment(neuron_traj, filename=str(tmp_path / "t.h5"), workers="auto",
                         progress=False)
    assert env.workers is None  # not decided before the runs
    results = env.run(tutorial.run_neuron)
    assert env.workers == 1 and env.dashboard_link is None
    env.close()
    assert len(results) == 63
    assert ex.load_trajectory(str(tmp_path / "t.h5"))._status_counts()["completed"] == 63


@pytest.mark.slow
@pytest.mark.skipif(cores() < 2, reason="a cluster pays only with 2 cores or more")
def test_2000_runs_of_5_ms_start_a_local_cluster(tmp_path):
    traj = ex.Trajectory("T")
    traj.add_parameter("idx", 0)
    traj.explore({"idx": list(range(2000))})
    env = ex.Environment(traj, filename=str(tmp_path / "t.h5"), workers="auto", progress=False)
    results = env.run(five_ms)
    assert env.workers == cores()
    assert env.dashboard_link.startswith("http")
    env.close()
    assert results == [(idx, idx) for idx in range(2000)]
    stored = ex.load_trajectory(str(tmp_path / "t.h5"))
    assert stored._status_counts()["completed"] == 2000
    assert stored.sessions()["runs"].tolist() == [2000]  # one session, every run once


def test_auto_is_checked():
    with pytest.raises(ValueError, match="'auto'"):
        ex.Environment("T", "never.h5", workers="many")
