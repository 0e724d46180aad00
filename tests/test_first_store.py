"""A process killed before its trajectory was first stored leaves a file one can go on from."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import explorer as ex

SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import explorer as ex

    def square(traj):
        return traj.x ** 2

    if __name__ == "__main__":
        env = ex.Environment("K", sys.argv[1], progress=False, seed=7)
        if sys.argv[2] == "kill":  # killed before the parameters were ever stored
            os.kill(os.getpid(), signal.SIGKILL)
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": [1, 2, 3]})
        print(env.run(square))
        env.close()
""")


def _script(tmp_path, filename, mode):
    path = tmp_path / "script.py"
    path.write_text(SCRIPT)
    return subprocess.run([sys.executable, str(path), filename, mode], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_a_kill_before_the_first_store_can_be_started_again(tmp_path):
    filename = str(tmp_path / "k.h5")
    killed = _script(tmp_path, filename, "kill")
    assert killed.returncode == -9
    assert ex.trajectory_names(filename) == ["K"]  # created, and nothing in it
    with pytest.raises(ex.ExplorerError) as info:
        ex.Environment.resume(filename, "K", progress=False)
    message = str(info.value)
    assert filename in message and "nothing to resume" in message
    assert "from the start" in message
    again = _script(tmp_path, filename, "run")  # the same script, unchanged
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "[(0, 1), (1, 4), (2, 9)]"
    traj = ex.load_trajectory(filename)
    assert traj.to_frame()["status"].tolist() == ["completed"] * 3


def test_a_trajectory_with_anything_stored_is_still_refused(tmp_path):
    filename = str(tmp_path / "kept.h5")
    traj = ex.Trajectory("K")
    traj.add_parameter("x", 0)
    traj.store(filename)
    with pytest.raises(ex.TrajectoryExistsError):
        ex.Environment("K", filename, progress=False)
    assert ex.load_trajectory(filename).x == 0
