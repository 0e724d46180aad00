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
- With ``storage="lock"``, a worker killed while it holds the writers' lock holds
  the others up for moments, not for a lease; what it left in the journal goes.
"""
from __future__ import annotations

import fcntl
import glob
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import tables

import explorer as ex
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
    """Every run completed, with one row in the run table and one in each per-run column."""
    frame = ex.load_trajectory(filename, name).to_frame()
    assert frame["status"].tolist() == ["completed"] * n_runs
    assert frame["return_value"].tolist() == [2 * idx for idx in range(n_runs)]
    assert frame["idx"].tolist() == list(range(n_runs))
    with tables.open_file(filename, "r") as handle:
        rows = handle.get_node(f"/{name}/runs").read()
        assert sorted(rows["idx"].tolist()) == list(range(n_runs)), "a run has 0 or 2+ rows"
        for column in ("returns/value", "results/out/$/idx"):
            group = handle.get_node(f"/{name}/{column}")
            runs = np.concatenate([segment.runs.read() for segment in group._f_iter_nodes("Group")])
            assert sorted(runs[runs >= 0].tolist()) == list(range(n_runs)), column


def journal_leftovers(filename: str) -> list[str]:
    """Unfinished shards and empty folders in the file's journal, and copies beside it."""
    journal = f"{os.path.realpath(filename)}.journal"
    folders = [journal] + glob.glob(os.path.join(journal, "*"))
    return (glob.glob(os.path.join(journal, "**", "*.tmp"), recursive=True)
            + [folder for folder in folders if os.path.isdir(folder) and not os.listdir(folder)]
            + glob.glob(f"{os.path.realpath(filename)}.*.tmp"))


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
        with tables.open_file(filename, "r") as handle:  # refused writes changed nothing
            assert f"/{NAME}/results/summary" not in handle
            assert f"/{NAME}/results/notes" not in handle
            assert "/Second" not in handle
        for other in others:
            assert glob.glob(f"{filename}.{other.proc.pid}-*.tmp") == []
        released = time.time()
    finally:
        env.close()
    reports = {other.mode: other.finish() for other in others}

    assert results == [(idx, 2 * idx) for idx in range(N_RUNS)]
    assert_every_run_stored_once(filename, N_RUNS)
    assert journal_leftovers(filename) == []
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
            assert traj[f"results.{attempt['what']}.number"] == int(attempt["what"][len("notes.n"):])
    assert sorted(ex.trajectory_names(filename)) == [NAME, "Second"]
    second = ex.load_trajectory(filename, "Second")
    assert second.y == 7 and second.res.summary.note.text == "second trajectory"
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["shared.h5", "go", "other.py"] + [f"{m}.{k}" for m in ("note", "second", "notes")
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
    assert sorted(os.listdir(tmp_path)) == ["data", "link.h5", "scripts"]
    assert os.listdir(tmp_path / "data") == ["real.h5"]         # no lock file, no copy left
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
    rng = np.random.default_rng(traj.idx)   # incompressible: writing a shard takes a while
    traj.add_result("out.$", idx=traj.idx, noise=rng.random(4000))
    return traj.idx * 2


def _holds_writer_lock(lock_path: str, pid: int) -> bool:
    """Whether process ``pid`` (stopped) holds the OS lock of ``lock_path``."""
    try:
        descriptor = os.open(lock_path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        try:
            holder = json.loads(os.read(descriptor, 4096) or b"{}").get("pid")
        except ValueError:
            return False
        if holder != pid:
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True   # held, and only the holder writes its pid into the file
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return False
    finally:
        os.close(descriptor)


@pytest.mark.slow
def test_a_worker_killed_holding_the_writers_lock_does_not_stall_the_others(tmp_path):
    filename = str(tmp_path / "locked.h5")
    lock_path = f"{filename}.writer.lock"
    journal = f"{filename}.journal"
    n_runs = 600
    env = ex.Environment(NAME, filename, workers=2, storage="lock", progress=False)
    try:
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": list(range(n_runs))})
        pids = sorted(env._backend().client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        victim = pids[0]
        killed: dict = {}
        shards_seen: dict[str, float] = {}

        def kill_while_it_writes():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                for shard in glob.glob(os.path.join(journal, "*", "*.h5")):
                    shards_seen.setdefault(os.path.basename(shard), time.time())
                try:
                    holder = json.loads(pathlib.Path(lock_path).read_text() or "{}").get("pid")
                except (OSError, ValueError):
                    holder = None
                if holder == victim:
                    os.kill(victim, signal.SIGSTOP)
                    unfinished = glob.glob(os.path.join(journal, "*", f"*.h5.{victim}-*.tmp"))
                    if unfinished and _holds_writer_lock(lock_path, victim):
                        before = set(shards_seen)
                        os.kill(victim, signal.SIGKILL)
                        killed.update(at=time.time(), unfinished=unfinished, before=before)
                        break
                    os.kill(victim, signal.SIGCONT)
                time.sleep(0.0005)
            # the others go on: shards written after the kill
            while time.monotonic() < deadline:
                for shard in glob.glob(os.path.join(journal, "*", "*.h5")):
                    shards_seen.setdefault(os.path.basename(shard), time.time())
                if killed and set(shards_seen) - killed["before"]:
                    break
                time.sleep(0.002)

        killer = threading.Thread(target=kill_while_it_writes, daemon=True)
        killer.start()
        results = env.run(noisy_run, 0.004)
        ran = time.time()
        killer.join(timeout=60)
        assert killed, "the worker was never caught holding the writers' lock"
        assert not alive(victim)
        assert results == [(idx, 2 * idx) for idx in range(n_runs)]
        after = sorted(seen for name, seen in shards_seen.items() if name not in killed["before"])
        first = after[0] if after else ran
        # the default lease of a distributed.Lock would have held them for 30 s
        assert first - killed["at"] < 5.0, f"next shard {first - killed['at']:.1f} s after the kill"
        # the dead writer's unfinished shard and the journal's folders are gone
        assert journal_leftovers(filename) == [], killed["unfinished"]
    finally:
        env.close()
    assert_every_run_stored_once(filename, n_runs)
    assert journal_leftovers(filename) == []
    assert not os.path.exists(journal)
    assert sorted(os.listdir(tmp_path)) == ["locked.h5"]


def test_loading_or_resuming_removes_what_killed_writers_left_in_the_journal(tmp_path):
    filename = str(tmp_path / "left.h5")
    with ex.Environment(NAME, filename, workers=1, storage="lock", progress=False) as env:
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": list(range(4))})
        env.run(square)
    assert not os.path.exists(f"{filename}.journal")
    loaded = ex.load_trajectory(filename, NAME)
    uid = loaded._store.uid
    for opening in (lambda: ex.load_trajectory(filename, NAME),
                    lambda: ex.Environment(loaded, filename, progress=False).close()):
        # what a worker killed while writing a shard leaves: an unfinished copy of it in
        # its trajectory's folder, and maybe an empty folder of a replaced trajectory
        folder = pathlib.Path(f"{filename}.journal/{NAME}-{uid}")
        folder.mkdir(parents=True)
        (folder / "chunk-0-4.h5.999999-1.tmp").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
        pathlib.Path(f"{filename}.journal/{NAME}-replaced").mkdir()
        opening()
        assert journal_leftovers(filename) == []
        assert not os.path.exists(f"{filename}.journal")
    assert sorted(os.listdir(tmp_path)) == ["left.h5"]


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
    with tables.open_file(filename) as handle:
        assert handle.root.T._v_attrs.n_runs == 5
