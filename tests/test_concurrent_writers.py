"""Several processes on one file: real processes, real files (API.md sections 4 and 5).

- While an environment runs an exploration, another process does what API.md
  documents (``ex.load_trajectory``, ``add_result``, ``store()``; storing a
  second trajectory into the file; adding notes in a loop). Its writes are
  refused with ``FileLockedError`` while the environment holds the file, and
  change nothing; the writes it reports as done are in the file afterwards, and
  every run of the exploration is stored exactly once.
- Environments on one file through a symlink, or through a relative and an
  absolute path, share one claim; writing through a symlink keeps the symlink.
- ``to_frame()`` sees one commit of the file while another process commits runs.
- With ``storage="lock"``, workers commit their runs as segments of their own, in
  parallel and with no lock: a worker killed while it writes a segment holds
  nobody up; the unfinished file it leaves is removed by the next environment on
  the file, as are segments that a later (merged) file replaces.

The file is a base and the committed segments of ``<file>.segments/``; the stored
bytes are read over every layer (``tests/layers.py``). The segments folder may
stay beside the file, empty.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import tables

import explorer as ex
from layers import column_runs, layer_files, leftovers, opened_layers, run_rows
from processes import alive

NAME = "Concurrent"
N_RUNS = 2000
GO_AT = 200     # the other processes start writing when this run starts
DELAY = 0.002   # seconds per run

OTHER = textwrap.dedent('''
    """Writes into a file that an environment may be writing; reports every attempt."""
    import json
    import os
    import sys
    import time

    import explorer as ex


    def report(path, **record):
        with open(path, "a") as stream:
            stream.write(json.dumps(record) + "\\n")


    def attempt(path, what, write):
        start = time.time()
        try:
            write()
        except Exception as error:
            report(path, what=what, start=start, end=time.time(), outcome=type(error).__name__,
                   locked=isinstance(error, ex.FileLockedError), message=str(error))
            return False
        report(path, what=what, start=start, end=time.time(), outcome="stored")
        return True


    def main():
        mode, filename, name, reports, go = sys.argv[1:]
        if mode == "note":  # loaded before the runs, stored (again) until it is stored
            traj = ex.load_trajectory(filename, name)
        report(reports, what="ready", start=time.time())
        while go != "-" and not os.path.exists(go):
            time.sleep(0.002)
        if mode == "note":
            traj.add_result("summary.note", text="from another process", pid=os.getpid(),
                            comment="added by another process")
            while not attempt(reports, "summary.note", traj.store):
                time.sleep(0.05)
        elif mode == "second":
            second = ex.Trajectory("Second", comment="stored by another process")
            second.add_parameter("y", 7)
            second.add_result("summary.note", text="second trajectory")
            while not attempt(reports, "Second", lambda: second.store(filename)):
                time.sleep(0.05)
        elif mode == "notes":  # a fresh load for every note: a refused note is dropped
            stored = number = 0
            while stored < 3:
                def write():
                    fresh = ex.load_trajectory(filename, name)
                    fresh.add_result(f"notes.n{number}", number=number)
                    fresh.store()
                stored += attempt(reports, f"notes.n{number}", write)
                number += 1
        elif mode == "environment":  # an environment of its own on the file
            def start():
                ex.Environment(name, filename, progress=False).close()
            attempt(reports, "environment", start)
        else:
            raise SystemExit(f"unknown mode {mode!r}")


    if __name__ == "__main__":
        main()
''')


class Other:
    """A process running :data:`OTHER` in one mode; its reports are JSON lines."""

    def __init__(self, directory: pathlib.Path, mode: str, filename: str, name: str = NAME,
                 go: str = "-"):
        script = directory / "other.py"
        if not script.exists():
            script.write_text(OTHER)
        self.mode = mode
        self.reports = directory / f"{mode}.reports"
        self.reports.unlink(missing_ok=True)
        self.stderr = directory / f"{mode}.stderr"
        with open(self.stderr, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), mode, filename, name, str(self.reports), go],
                cwd=os.getcwd(), stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)

    def records(self) -> list[dict]:
        if not self.reports.exists():
            return []
        return [json.loads(line) for line in self.reports.read_text().splitlines()
                if line.endswith("}")]

    def attempts(self) -> list[dict]:
        return [record for record in self.records() if record["what"] != "ready"]

    def wait_for(self, condition, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.proc.poll() is None, \
                f"{self.mode}: ended before {what}:\n{self.stderr.read_text()}"
            assert time.monotonic() < deadline, f"{self.mode}: no {what} in {timeout} s"
            time.sleep(0.01)

    def finish(self, timeout: float = 60.0) -> list[dict]:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"{self.mode}: still running after {timeout} s") from None
        assert code == 0, f"{self.mode}: exit {code}:\n{self.stderr.read_text()}"
        return self.attempts()


def slow_run(traj, go, go_at, delay):
    if traj.idx == go_at:
        pathlib.Path(go).touch()
    time.sleep(delay)
    traj.add_result("out.$", idx=traj.idx, comment="each run's index")
    return traj.idx * 2


def assert_every_run_stored_once(filename: str, n_runs: int, name: str = NAME) -> None:
    """Every run completed, with one row in the run tables and one real row in each
    per-run column, over all the file's layers."""
    frame = ex.load_trajectory(filename, name).to_frame()
    assert frame["status"].tolist() == ["completed"] * n_runs
    assert frame["return_value"].tolist() == [2 * idx for idx in range(n_runs)]
    assert frame["idx"].tolist() == list(range(n_runs))
    rows = run_rows(filename, name)
    assert sorted(rows["idx"].tolist()) == list(range(n_runs)), "a run has 0 or 2+ rows"
    columns = column_runs(filename, name)
    for column in ("returns/value", "results/out/$/idx"):
        assert sorted(columns[f"/{name}/{column}"].tolist()) == list(range(n_runs)), column


#: How segment files name this host (``<host>-<pid>-...``).
HOST = socket.gethostname().replace("-", "_").replace(os.sep, "_") or "host"


def unfinished_of(filename: str, pid: int) -> list[str]:
    """Unfinished files of process ``pid``: ``<file>.<pid>-<thread>.tmp`` beside the
    file, ``<host>-<pid>-<thread>-<n>.tmp`` in its segments folder."""
    real = os.path.realpath(filename)
    return sorted(glob.glob(f"{glob.escape(real)}.{pid}-*.tmp")
                  + glob.glob(os.path.join(glob.escape(f"{real}.segments"),
                                           f"{HOST}-{pid}-*.tmp")))


def committed_segments(filename: str) -> list[str]:
    """Names of the committed segment files in the file's segments folder (live or not)."""
    try:
        return sorted(name for name in os.listdir(f"{os.path.realpath(filename)}.segments")
                      if name.endswith(".h5"))
    except FileNotFoundError:
        return []


def assert_only_the_file_beside(directory, name: str, *others: str) -> None:
    """``directory`` holds the file ``name`` (maybe its segments folder, with no
    unfinished file in it) and ``others``, nothing else."""
    found = sorted(os.listdir(directory))
    expected = sorted([name, *others])
    assert found in (expected, sorted(expected + [f"{name}.segments"])), found
    segments = os.path.join(directory, f"{name}.segments")
    if os.path.isdir(segments):
        assert not [entry for entry in os.listdir(segments) if not entry.endswith(".h5")]
        assert committed_segments(os.path.join(directory, name)) == \
            [os.path.basename(path) for path in layer_files(os.path.join(directory, name))[1:]]


# ------------------------------------------------------------------ another process writes
@pytest.mark.slow
@pytest.mark.parametrize("workers, storage", [(1, "queue"), (2, "queue"), (2, "lock")])
def test_writes_of_another_process_during_an_exploration_are_refused_or_kept(
        tmp_path, monkeypatch, workers, storage):
    monkeypatch.chdir(tmp_path)
    filename = str(tmp_path / "shared.h5")
    go = tmp_path / "go"
    env = ex.Environment(NAME, filename, workers=workers, storage=storage, progress=False)
    try:
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": list(range(N_RUNS))})
        env.trajectory.store()
        others = [Other(tmp_path, mode, filename, go=str(go))
                  for mode in ("note", "second", "notes")]
        env._backend()  # the cluster starts while the others start
        for other in others:
            other.wait_for(other.records, "start")
        results = env.run(slow_run, str(go), GO_AT, DELAY)
        runs_ended = time.time()
        # the environment holds the file until every other process was refused once
        for other in others:
            other.wait_for(other.attempts, "first attempt")
        with opened_layers(filename) as handles:   # refused writes changed nothing
            for handle in handles:
                assert f"/{NAME}/results/summary" not in handle
                assert f"/{NAME}/results/notes" not in handle
                assert "/Second" not in handle
        for other in others:                      # and left nothing unfinished
            assert unfinished_of(filename, other.proc.pid) == []
        released = time.time()
    finally:
        env.close()
    reports = {other.mode: other.finish() for other in others}

    assert results == [(idx, 2 * idx) for idx in range(N_RUNS)]
    assert_every_run_stored_once(filename, N_RUNS)
    assert leftovers(filename) == []
    for mode, attempts in reports.items():
        first = attempts[0]
        assert first["start"] < runs_ended, f"{mode}: did not write while the runs went on"
        assert first["outcome"] == "FileLockedError" and first["locked"], first
        assert filename in first["message"] and f"pid {os.getpid()}" in first["message"]
        for attempt in attempts:
            assert attempt["outcome"] in ("stored", "FileLockedError"), attempt
            if attempt["outcome"] == "stored":  # only once the environment let go
                assert attempt["end"] >= released, attempt
        assert attempts[-1]["outcome"] == "stored"

    traj = ex.load_trajectory(filename, NAME)
    assert traj.res.summary.note.text == "from another process"
    assert traj.res.summary.note.pid == others[0].proc.pid
    notes = reports["notes"]
    assert [a["outcome"] for a in notes].count("stored") == 3
    for attempt in notes:
        stored = f"results.{attempt['what']}" in traj
        assert stored == (attempt["outcome"] == "stored"), attempt
    for attempt in notes:
        if attempt["outcome"] == "stored":
            number = int(attempt["what"][len("notes.n"):])
            assert traj[f"results.{attempt['what']}.number"] == number
    assert sorted(ex.trajectory_names(filename)) == [NAME, "Second"]
    second = ex.load_trajectory(filename, "Second")
    assert second.y == 7 and second.res.summary.note.text == "second trajectory"
    assert_only_the_file_beside(tmp_path, "shared.h5", "go", "other.py",
                                *[f"{m}.{k}" for m in ("note", "second", "notes")
                                  for k in ("reports", "stderr")])


# ------------------------------------------------------------------ one claim per file
def square(traj):
    return traj.x ** 2


@pytest.mark.slow
def test_a_symlinked_or_relative_path_shares_the_environments_claim(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    real = str(tmp_path / "data" / "real.h5")
    os.symlink(os.path.join("data", "real.h5"), "link.h5")
    scripts = tmp_path / "scripts"
    scripts.mkdir()

    env = ex.Environment("A", "link.h5", progress=False)    # relative, through the symlink
    try:
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": list(range(5))})
        assert env.run(square) == [(idx, idx * idx) for idx in range(5)]
        assert os.path.islink("link.h5") and os.readlink("link.h5") == "data/real.h5"
        # other processes: an environment on the real path, a store through the symlink
        others = [Other(scripts, "environment", real, "B"),
                  Other(scripts, "note", str(tmp_path / "link.h5"), "A")]
        for path in (real, "data/real.h5", str(tmp_path / "link.h5"),
                     str(tmp_path / "data" / ".." / "data" / "real.h5")):
            with pytest.raises(ex.FileLockedError) as info:
                ex.Environment("B", path, progress=False)
            assert path in str(info.value) and f"pid {os.getpid()}" in str(info.value)
        for other in others:
            other.wait_for(other.attempts, "attempt")
        refused = {other.mode: other.attempts()[0] for other in others}
    finally:
        env.close()
    reports = {other.mode: other.finish() for other in others}
    for mode, attempt in refused.items():
        assert attempt["outcome"] == "FileLockedError" and attempt["locked"], attempt
    assert reports["environment"] == [refused["environment"]]   # it does not try again
    assert reports["note"][-1]["outcome"] == "stored"           # once the environment closed

    assert os.path.islink("link.h5") and os.readlink("link.h5") == "data/real.h5"
    assert sorted(os.listdir(tmp_path)) == ["data", "link.h5", "scripts"]  # no link.h5.segments
    assert_only_the_file_beside(tmp_path / "data", "real.h5")   # no lock file, nothing unfinished
    assert ex.trajectory_names(real) == ["A"]                   # "B" never got in
    traj = ex.load_trajectory("link.h5", "A")
    assert traj.to_frame()["return_value"].tolist() == [idx * idx for idx in range(5)]
    assert traj.res.summary.note.text == "from another process"


# ------------------------------------------------------------------ reads during commits
WRITER = textwrap.dedent('''
    """Commits runs again and again: each env.run adds a few points and runs them."""
    import pathlib
    import sys

    import explorer as ex


    def run(traj):
        traj.add_result("out.$", a=traj.idx, b=traj.idx * 0.5, c=-traj.idx, comment="scalars")
        return traj.idx * 3


    def more(traj, results, total, step):
        if len(traj) < total:
            traj.expand({"x": list(range(len(traj), len(traj) + step))})


    if __name__ == "__main__":
        filename, ready, total, step = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        with ex.Environment("Torn", filename, progress=False) as env:
            env.trajectory.add_parameter("x", 0)
            env.trajectory.explore({"x": list(range(step))})
            env.trajectory.store()
            pathlib.Path(ready).touch()
            env.add_postprocessing(more, total, step)
            env.run(run)
''')


@pytest.mark.slow
def test_to_frame_sees_one_commit_while_another_process_commits(tmp_path):
    filename = str(tmp_path / "torn.h5")
    ready = tmp_path / "ready"
    (tmp_path / "writer.py").write_text(WRITER)
    with open(tmp_path / "writer.stderr", "w") as err:
        writer = subprocess.Popen([sys.executable, str(tmp_path / "writer.py"), filename,
                                   str(ready), "600", "10"], stdout=subprocess.DEVNULL,
                                  stderr=err, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert writer.poll() is None, (tmp_path / "writer.stderr").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        frames, torn, seen = 0, [], set()
        while writer.poll() is None:
            frame = ex.load_trajectory(filename, "Torn").to_frame()
            frames += 1
            completed = frame[frame["status"] == "completed"]
            seen.add(len(completed))
            columns = ["return_value", "a", "b", "c"]
            missing = [column for column in columns if column not in frame]
            if len(completed) and (missing or completed[columns].isna().any().any()):
                torn.append(completed[completed.isna().any(axis=1)].head(3).to_string()
                            if not missing else f"no column {missing}")
            elif len(completed):
                index = completed.index.to_numpy()
                assert completed["a"].tolist() == index.tolist()
                assert completed["return_value"].tolist() == (3 * index).tolist()
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.wait()
    assert writer.returncode == 0, (tmp_path / "writer.stderr").read_text()
    assert not torn, f"{len(torn)} of {frames} frames show runs completed without values:\n" \
                     f"{torn[0]}"
    assert frames >= 20 and len(seen) >= 10, (frames, sorted(seen))  # read while it committed
    final = ex.load_trajectory(filename, "Torn").to_frame()
    assert final["status"].tolist() == ["completed"] * 600


# ------------------------------------------------------------------ a worker dies writing
def noisy_run(traj, delay):
    time.sleep(delay)
    rng = np.random.default_rng(traj.idx)   # incompressible: writing a segment takes a while
    traj.add_result("out.$", idx=traj.idx, noise=rng.random(4000))
    return traj.idx * 2


def _segment_writer(name: str) -> int | None:
    """The pid of the worker that committed segment ``name`` (``<time_ns>-<host>-<pid>-<n>.h5``);
    ``None`` for a merged one (``...m.h5``), which the environment writes."""
    fields = name[:-len(".h5")].split("-")
    if len(fields) != 4 or not fields[3].isdigit():
        return None
    return int(fields[2])


@pytest.mark.slow
def test_a_worker_killed_while_it_writes_a_segment_does_not_stall_the_others(tmp_path):
    filename = str(tmp_path / "locked.h5")
    n_runs = 600
    env = ex.Environment(NAME, filename, workers=2, storage="lock", progress=False)
    try:
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": list(range(n_runs))})
        pids = sorted(env._backend().client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        victim, survivor = pids
        killed: dict = {}
        segments_seen: dict[str, float] = {}   # committed segment -> when first seen

        def look() -> None:
            for name in committed_segments(filename):
                segments_seen.setdefault(name, time.time())

        def kill_while_it_writes():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                look()
                if unfinished_of(filename, victim):
                    os.kill(victim, signal.SIGSTOP)
                    unfinished = unfinished_of(filename, victim)
                    if unfinished:      # stopped while its segment is still unfinished
                        look()
                        before = set(segments_seen)
                        os.kill(victim, signal.SIGKILL)
                        killed.update(at=time.time(), unfinished=unfinished, before=before)
                        break
                    os.kill(victim, signal.SIGCONT)
                time.sleep(0.0005)
            # the other worker goes on: segments it commits after the kill
            while time.monotonic() < deadline:
                look()
                if killed and any(_segment_writer(name) == survivor
                                  for name in set(segments_seen) - killed["before"]):
                    break
                time.sleep(0.002)

        killer = threading.Thread(target=kill_while_it_writes, daemon=True)
        killer.start()
        results = env.run(noisy_run, 0.004)
        ran = time.time()
        killer.join(timeout=60)
        assert killed, "the worker was never caught writing a segment"
        assert not alive(victim)
        assert results == [(idx, 2 * idx) for idx in range(n_runs)]
        after = sorted(seen for name, seen in segments_seen.items()
                       if name not in killed["before"] and _segment_writer(name) == survivor)
        first = after[0] if after else ran
        assert first - killed["at"] < 5.0, \
            f"next segment {first - killed['at']:.1f} s after the kill"
        # the unfinished segment was never committed: no segment of the victim came after
        assert not [name for name in set(segments_seen) - killed["before"]
                    if _segment_writer(name) == victim]
    finally:
        env.close()
    # the dead worker's unfinished segment is all that is left unfinished ...
    assert set(leftovers(filename)) <= set(killed["unfinished"])
    assert_every_run_stored_once(filename, n_runs)
    # ... and the next environment on the file removes it
    ex.Environment(ex.load_trajectory(filename, NAME), filename, progress=False).close()
    assert leftovers(filename) == []
    assert not any(os.path.exists(path) for path in killed["unfinished"])
    assert_every_run_stored_once(filename, n_runs)
    assert_only_the_file_beside(tmp_path, "locked.h5")


@contextlib.contextmanager
def _compactions_killed_after_their_commit(filename: str):
    """Within, the segments a compaction replaces stay in the folder, as if each
    compaction were killed right after its commit, before it deleted them."""
    folder = f"{os.path.realpath(filename)}.segments"
    remove = os.remove

    def remove_all_but_segments(path, *args, **kwargs):
        if os.path.dirname(os.path.realpath(path)) == folder and os.fspath(path).endswith(".h5"):
            return
        remove(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "remove", remove_all_but_segments)
        yield


def test_an_environment_removes_what_killed_writers_left_beside_the_file(tmp_path):
    """``Environment`` and ``Environment.resume`` remove the unfinished files of dead
    writers of this host and the segments a later file replaces; ``load_trajectory``
    only reads, and reads the file right with them present."""
    filename = str(tmp_path / "left.h5")
    real = os.path.realpath(filename)
    folder = f"{real}.segments"
    with ex.Environment(NAME, filename, workers=1, storage="lock", progress=False) as env:
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": list(range(4))})
        env.run(square)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          check=True, capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    assert not alive(dead_pid)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        for number, opening in enumerate(
                (lambda: ex.Environment(ex.load_trajectory(filename, NAME), filename,
                                        progress=False).close(),
                 lambda: ex.Environment.resume(filename, NAME, progress=False).close())):
            n_runs = 6 + 2 * number
            # more runs and a note, stored by compactions killed after their commit:
            # the segments they merged stay, replaced (their runs are in a later file)
            with _compactions_killed_after_their_commit(filename):
                traj = ex.load_trajectory(filename, NAME)
                traj.expand({"x": list(range(n_runs - 2, n_runs))})
                traj.add_result(f"notes.n{number}", number=number)
                traj.store()
                with ex.Environment.resume(filename, NAME, workers=1, storage="lock",
                                           progress=False) as env:
                    env.run(square)
            superseded = sorted({os.path.join(folder, name)
                                 for name in committed_segments(filename)}
                                - set(layer_files(filename)))
            assert superseded, "no compaction left the segments it replaced"
            replaced_rows = 0                  # what readers would count twice
            for path in superseded:
                with tables.open_file(path) as handle:
                    if f"/{NAME}/runs" in handle:
                        replaced_rows += handle.get_node(f"/{NAME}/runs").nrows
            assert replaced_rows, "the replaced segments hold no runs"
            # unfinished files: of dead writers of this host (the base's, a segment's),
            # of a live writer, and of a writer on another host
            header = b"\x89HDF\r\n\x1a\n" + bytes(100)
            dead_files = [f"{real}.{dead_pid}-140000000000.tmp",
                          os.path.join(folder, f"{HOST}-{dead_pid}-140000000000-3.tmp")]
            alive_files = [os.path.join(folder, f"{HOST}-{sleeper.pid}-140000000001-0.tmp"),
                           f"{real}.{sleeper.pid}-140000000001.tmp",
                           os.path.join(folder, f"other_host-{dead_pid}-1-0.tmp")]
            for path in dead_files + alive_files:
                pathlib.Path(path).write_bytes(header)

            def assert_read_right(n_runs=n_runs, number=number):
                loaded = ex.load_trajectory(filename, NAME)
                assert loaded.to_frame()["return_value"].tolist() == \
                    [x * x for x in range(n_runs)]
                assert all(loaded[f"results.notes.n{n}.number"] == n for n in range(number + 1))
                rows = run_rows(filename, NAME)               # the replaced segments skipped
                assert sorted(rows["idx"][rows["status"] == 1].tolist()) == list(range(n_runs))
                returns = column_runs(filename, NAME)[f"/{NAME}/returns/value"]
                assert sorted(returns.tolist()) == list(range(n_runs))

            # loading reads the file right with them present, and removes nothing
            assert_read_right()
            assert all(os.path.exists(path) for path in superseded + dead_files + alive_files)

            opening()
            assert not [path for path in superseded + dead_files if os.path.exists(path)]
            assert all(os.path.exists(path) for path in alive_files)  # not a dead writer's
            assert sorted(leftovers(filename)) == sorted(alive_files)
            for path in alive_files:
                os.remove(path)
            assert committed_segments(filename) == \
                [os.path.basename(path) for path in layer_files(filename)[1:]]
            assert_read_right()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert_only_the_file_beside(tmp_path, "left.h5")


# ------------------------------------------------------- stale copies of a trajectory
def test_a_stale_copy_cannot_overwrite_what_another_writer_stored(tmp_path):
    filename = str(tmp_path / "stale.h5")
    traj = ex.Trajectory("T")
    traj.add_parameter("x", 0)
    traj.explore({"x": [1, 2, 3]})
    traj.store(filename)
    first, second = ex.load_trajectory(filename), ex.load_trajectory(filename)
    second.expand({"x": [4, 5]})
    second.add_parameter("y", 1.5)
    second.store()
    first.add_result("summary.note", text="results only: no conflict")
    first.store()
    first.expand({"x": [6]})
    with pytest.raises(ex.FileLockedError) as info:
        first.store()
    assert "changed by another writer" in str(info.value) and "exploration" in str(info.value)
    first = ex.load_trajectory(filename)
    first.add_derived_parameter("z", 2)
    second.add_derived_parameter("w", 3)
    first.store()
    with pytest.raises(ex.FileLockedError, match="its parameters"):
        second.store()
    stored = ex.load_trajectory(filename)
    assert stored.get("x").range == [1, 2, 3, 4, 5]
    assert stored.y == 1.5 and stored.z == 2 and "w" not in stored
    assert stored.res.summary.note.text == "results only: no conflict"
    with opened_layers(filename) as handles:    # the state: in the last layer with a uid
        states = [handle.root.T for handle in handles
                  if "/T" in handle and "uid" in handle.root.T._v_attrs._f_list()]
        assert states[-1]._v_attrs.n_runs == 5
