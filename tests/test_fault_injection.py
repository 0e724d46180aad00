"""Fault injection (issue 16): SIGKILL of a writing driver at many random instants.

A driver (``fault_driver.py``) explores 2,000 runs, each storing a scalar and a
1,000-float array, in steps of 250 runs (one ``env.run`` and so at least one
commit per step). The test kills its whole process group (dask workers
included) with SIGKILL at ``EXPLORER_FAULT_KILLS`` (default 50) random instants
per mode: one process, 2 workers with ``storage="queue"`` and with
``storage="lock"``. Kills are chained: after each one the test checks the file,
then starts the driver again on it (``Environment.resume``), which runs on
where the last one stopped, until it is killed again or completes; a completed
exploration is checked in full and the next one starts in a fresh directory.
After the last kill, the driver resumes the last file to the end.

Where a kill lands, in turn:

- ``uniform``: at a uniformly random instant of the driver's expected lifetime
  (start-up included);
- ``near a write``: once the driver began a random number of the runs left, at
  the next change beside the file (an entry of its directory appearing,
  disappearing or renamed, or the file itself changing), within 50 ms of it:
  inside copies, merges and compactions, whatever the layout;
- ``in a commit``: once the driver began a random number of the runs left, as
  soon as the last run of an ``env.run`` call has begun (the runs log tells),
  within the time measured from there to that call's return: inside the
  commit that ends every ``env.run``.

The lifetime and the commit time are measured on a first driver of each mode,
left to complete, and on every driver after it. Kills after the last commit of
an exploration (in the session record, the close) complete it.

After each kill:

- the file opens (``ex.load_trajectory``), the exploration reads back whole
  (``x`` of every run, each run once in ``to_frame()``), no run failed;
- every run seen completed after an earlier kill, and every run of an
  ``env.run`` call that had returned before the kill, is completed, with the
  right scalar and return value; arrays read back exactly (100 of the runs
  newly completed and 20 of the others, at random);
- no run seen completed after kill ``k`` was executed again by a later driver
  (each execution is logged by the run itself);
- what is left beside the file stays bounded, and blocks nothing: the next
  driver starts on the file as it is and must not fail.

After each completed exploration, ``Environment.resume(...).run`` in this process
runs nothing and returns every run's value once, arrays read back exactly (300
at random; every one of the last exploration), and every run executed at most
once per driver.

Only explorer's public API is used: nothing here knows file names beside the
file, directories or HDF5 paths. ``EXPLORER_FAULT_SEED`` replays a schedule of
kill instants (timing still varies); the seed is printed, with a summary of the
kills, on stdout (``pytest -s``), and what each driver did is listed in
``drivers.txt`` in the mode's directory.

The three modes' chains run side by side, each in a process of its own (this
file run as a script: ``python tests/test_fault_injection.py MODE DIR SEED``),
started together by the first of the three tests; each test waits for its own.
"""
from __future__ import annotations

import collections
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import explorer as ex
import fault_driver as driver

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

KILLS = max(1, int(os.environ.get("EXPLORER_FAULT_KILLS", "50")))
DRIVER = str(pathlib.Path(driver.__file__).resolve())
MODES = {"serial": (1, "queue"), "queue": (2, "queue"), "lock": (2, "lock")}
#: a kill triggered by a change beside the file lands within this long of it
TRIGGER_WINDOW = 0.05
#: a driver still running after this long hangs
HUNG = 120
#: how often the test looks at the driver's logs and at the file's directory
POLL = 0.002
#: what the file and everything beside it may take, at most, right after a kill:
#: a few times the data (a copy or segments being written), never one per kill
BYTES_BOUND = 4 * driver.N_RUNS * driver.TRACE_LENGTH * 8 + 32 * 2 ** 20
#: arrays read back after each kill: of runs newly stored, of runs stored before;
#: and once an exploration is complete (the last one: every array)
NEW_ARRAYS_CHECKED, OLD_ARRAYS_CHECKED, DONE_ARRAYS_CHECKED = 100, 20, 300


# ------------------------------------------------------------------ processes
def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def kill_group(proc: subprocess.Popen) -> int:
    """SIGKILL the driver's process group; wait until every member is gone."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    returncode = proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while group_members(proc.pid):
        assert time.monotonic() < deadline, \
            f"processes {group_members(proc.pid)} outlived their killed driver"
        time.sleep(0.005)
    return returncode


def beside(directory: pathlib.Path, filename: pathlib.Path) -> tuple:
    """What a write changes: the names under ``directory`` and the file's identity."""
    names = []
    for root, dirs, files in os.walk(directory):
        names += [os.path.join(root, name) for name in dirs + files]
    try:
        stat = os.stat(filename)
        identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    except FileNotFoundError:
        identity = None
    return identity, frozenset(names)


def bytes_under(directory: pathlib.Path) -> int:
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


def log_lines(path: pathlib.Path) -> list[list[int]]:
    """The whole lines of a log of integers (a killed writer leaves no half line)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    text = text[:text.rfind("\n") + 1]
    return [[int(field) for field in line.split()] for line in text.splitlines()]


# ------------------------------------------------------------------ one exploration
class Exploration:
    """One file explored from scratch by a chain of killed drivers, and what was seen."""

    def __init__(self, root: pathlib.Path, number: int, workers: int, storage: str):
        self.number = number
        self.data = root / f"data{number:03d}"      # the file and whatever explorer puts beside it
        self.logs = root / f"logs{number:03d}"      # the test's own files
        self.data.mkdir()
        self.logs.mkdir()
        self.filename = self.data / "faults.h5"
        self.workers, self.storage = workers, storage
        self.sessions = 0
        self.resumable = False                      # the file holds the explored trajectory
        self.completed: set[int] = set()
        self.first_seen: dict[int, int] = {}        # run -> session after which it was seen stored
        self.length = 0

    def start_driver(self) -> tuple[subprocess.Popen, int]:
        session = self.sessions
        self.sessions += 1
        mode = "resume" if self.resumable else "start"
        with open(self.logs / f"{session:03d}.{mode}.out", "w") as out:
            proc = subprocess.Popen(
                [sys.executable, DRIVER, mode, str(self.filename), str(self.workers),
                 self.storage, str(self.logs), str(session)],
                cwd=self.logs, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        return proc, session

    def output(self, session: int) -> str:
        found = sorted(self.logs.glob(f"{session:03d}.*.out"))
        return found[0].read_text()[-4000:] if found else ""

    def executions(self) -> list[list[int]]:
        return log_lines(self.logs / "runs.log")

    def returned(self) -> int:
        """Runs of the ``env.run`` calls that returned (committed), so far."""
        return max([runs for _, runs in log_lines(self.logs / "committed.log")], default=0)

    @property
    def done(self) -> bool:
        return len(self.completed) == driver.N_RUNS

    # -------------------------------------------------------------- checks
    def check(self, session: int, rng: random.Random, context: str) -> int:
        """Check the file after driver ``session`` ended; returns the runs newly stored."""
        committed = self.returned()
        exists = self.filename.exists()
        traj = None
        if exists:
            try:
                traj = ex.load_trajectory(str(self.filename), driver.NAME)
            except ex.TrajectoryNotFoundError:
                traj = None                    # killed before the trajectory was stored
        try:
            if traj is None or not traj.explored_parameters:
                # killed before the exploration was first stored: no run can be
                assert not self.completed and committed == 0, \
                    f"{context}: the file lost its exploration " \
                    f"({'no file' if not exists else 'no trajectory' if traj is None else traj})"
                self.resumable, self.length = False, 0
                return 0
            self.resumable = True
            return self._check_trajectory(traj, session, committed, rng, context)
        finally:
            if traj is not None:
                traj.close()

    def _check_trajectory(self, traj, session: int, committed: int, rng: random.Random,
                          context: str) -> int:
        frame = traj.to_frame()
        length = len(traj)
        assert driver.STEP <= length <= driver.N_RUNS, f"{context}: {length} runs explored"
        assert frame.index.tolist() == list(range(length)), \
            f"{context}: to_frame() rows are not each run once: {_dupes(frame.index)}"
        assert frame["x"].tolist() == list(range(length)), f"{context}: explored x changed"
        status = frame["status"].astype(str)
        unexpected = sorted(set(status) - {"completed", "pending"})
        assert not unexpected, \
            f"{context}: runs {frame.index[status.isin(unexpected)].tolist()[:20]} are " \
            f"{unexpected}: {frame.loc[status.isin(unexpected)].head().to_dict('index')}"
        completed = set(frame.index[status == "completed"].tolist())
        lost = sorted(self.completed - completed)
        assert not lost, f"{context}: runs stored before an earlier kill are gone: {lost[:20]} " \
                         f"({len(lost)} runs)"
        unstored = sorted(set(range(committed)) - completed)
        assert not unstored, \
            f"{context}: runs of an env.run that had returned before the kill are not stored: " \
            f"{unstored[:20]} ({len(unstored)} runs)"
        if completed:
            rows = frame.loc[sorted(completed)]
            expected = [driver.value(x) for x in rows["x"]]
            wrong = rows.index[rows["value"].to_numpy() != np.array(expected)].tolist()
            assert not wrong, f"{context}: runs {wrong[:20]} store a wrong scalar"
            wrong = rows.index[rows["return_value"].to_numpy() != 2 * rows["x"].to_numpy()]
            assert not len(wrong), f"{context}: runs {wrong.tolist()[:20]} return a wrong value"
        new = sorted(completed - self.completed)
        old = sorted(self.completed)
        checked = rng.sample(new, min(NEW_ARRAYS_CHECKED, len(new))) + \
            rng.sample(old, min(OLD_ARRAYS_CHECKED, len(old)))
        names, results = traj.run_names, traj.res.out if checked else None
        for idx in checked:
            stored = results[names[idx]].trace
            assert np.array_equal(stored, driver.trace(idx)), \
                f"{context}: run {idx} reads back a wrong array"
        for idx in new:
            self.first_seen[idx] = session
        self.completed = completed
        self.length = length
        self.check_executions(context)
        return len(new)

    def check_executions(self, context: str) -> None:
        again = [(idx, ran) for idx, ran, _ in self.executions()
                 if idx in self.first_seen and ran > self.first_seen[idx]]
        assert not again, \
            f"{context}: runs stored before a kill ran again afterwards (run, driver): " \
            f"{again[:20]} (stored after drivers {[self.first_seen[i] for i, _ in again[:20]]})"

    def check_complete(self, rng: random.Random, context: str, every_array: bool) -> None:
        """Every run once: a resume (here, one process) runs nothing; arrays read back."""
        before = len(self.executions())
        with ex.Environment.resume(str(self.filename), driver.NAME, progress=False) as env:
            results = env.run(driver.run, str(self.logs), self.sessions)
        assert results == [(idx, 2 * idx) for idx in range(driver.N_RUNS)], \
            f"{context}: resume of a complete exploration returned {results[:10]}..."
        executions = self.executions()
        assert len(executions) == before, \
            f"{context}: resume of a complete exploration ran {executions[before:][:20]}"
        traj = ex.load_trajectory(str(self.filename), driver.NAME)
        try:
            frame = traj.to_frame()
            assert frame.index.tolist() == list(range(driver.N_RUNS))
            assert (frame["status"].astype(str) == "completed").all()
            names, results = traj.run_names, traj.res.out
            runs = range(driver.N_RUNS) if every_array else \
                rng.sample(range(driver.N_RUNS), DONE_ARRAYS_CHECKED)
            for idx in runs:
                assert np.array_equal(results[names[idx]].trace,
                                      driver.trace(idx)), \
                    f"{context}: run {idx} reads back a wrong array"
        finally:
            traj.close()
        per_driver = collections.Counter((idx, ran) for idx, ran, _ in executions)
        twice = [key for key, count in per_driver.items() if count > 1]
        assert not twice, f"{context}: runs executed twice by one driver (run, driver): " \
                          f"{twice[:20]}"
        assert {idx for idx, _, _ in executions} == set(range(driver.N_RUNS))


def _dupes(index) -> str:
    counts = collections.Counter(index.tolist())
    return f"repeated {[idx for idx, n in counts.items() if n > 1][:20]}, {len(index)} rows"


# ------------------------------------------------------------------ the chain of kills
class Tail:
    """The lines of integers appended to a log since the last look."""

    def __init__(self, path: pathlib.Path):
        self.path, self.offset = path, 0
        try:
            self.offset = path.stat().st_size
        except FileNotFoundError:
            pass

    def read(self) -> list[list[int]]:
        try:
            with open(self.path, "rb") as stream:
                stream.seek(self.offset)
                data = stream.read()
        except FileNotFoundError:
            return []
        whole = data[:data.rfind(b"\n") + 1]
        self.offset += len(whole)
        return [[int(field) for field in line.split()] for line in whole.decode().splitlines()]


class Schedule:
    """Where a driver's lifetime goes, measured on every driver (the first one completes)."""

    def __init__(self):
        self.startup: list[float] = []     # driver start to its first run
        self.per_run: list[float] = []     # first run to end, per run begun
        self.windows: list[float] = []     # a step's last run began ... its env.run returned

    def observe(self, outcome: dict) -> None:
        if outcome["first_run"] is not None:
            self.startup.append(outcome["first_run"])
            if outcome["runs"] >= driver.STEP // 2:
                self.per_run.append((outcome["at"] - outcome["first_run"]) / outcome["runs"])

    def running_time(self, exploration: Exploration) -> float:
        """Expected time from the first run of a driver started now to its end."""
        left = max(driver.N_RUNS - len(exploration.completed), driver.STEP // 5)
        return float(np.median(self.per_run[-10:])) * left

    def lifetime(self, exploration: Exploration) -> float:
        """Expected lifetime of a driver started on ``exploration`` now."""
        return float(np.median(self.startup[-10:])) + self.running_time(exploration)

    def window(self) -> float:
        return min(max(1.2 * float(np.median(self.windows[-20:])), 0.005), 0.5)


def watch(proc: subprocess.Popen, exploration: Exploration, session: int,
          schedule: Schedule, kind: str, delay: float, rng: random.Random) -> dict:
    """Poll the driver until it exits or must be killed, and kill it then.

    ``kind``: ``"uniform"``, killed ``delay`` seconds after its start;
    ``"near a write"``, once it began ``delay`` runs, killed within
    ``TRIGGER_WINDOW`` of the next change beside the file; ``"in a commit"``, once
    it began ``delay`` runs, killed within the measured commit window after the
    next step's last run began; ``"none"``: left to end.
    """
    started = time.monotonic()
    runs, commits = Tail(exploration.logs / "runs.log"), Tail(exploration.logs / "committed.log")
    covered = set(exploration.completed)     # runs stored before, or begun by this driver
    frontier = 0                             # the first run not covered
    while frontier in covered:
        frontier += 1
    # the end of this driver's first env.run: the runs explored, or the step after
    length = exploration.length if exploration.resumable else 0
    boundary = length if frontier < length else (frontier // driver.STEP + 1) * driver.STEP
    step_ends: dict[int, float] = {}         # step end -> when its last run began
    returned: set[int] = set()               # env.run calls that returned (their step end)
    first_run = last_change = deadline = None
    runs_begun = 0
    armed = False                            # the trigger of the last two kinds
    if kind == "uniform":
        deadline = started + delay
    state = beside(exploration.data, exploration.filename)
    while proc.poll() is None:
        now = time.monotonic()
        if now - started > HUNG:
            kill_group(proc)
            raise AssertionError(f"driver {session} still ran after {HUNG} s: it hung\n"
                                 f"{exploration.output(session)}")
        began = [idx for idx, ran, _ in runs.read() if ran == session]
        if began and first_run is None:
            first_run = now - started
        covered.update(began)
        runs_begun += len(began)
        armed = kind in ("near a write", "in a commit") and runs_begun > delay
        while frontier in covered:
            frontier += 1
        while boundary <= min(frontier, driver.N_RUNS):
            step_ends[boundary] = now
            if kind == "in a commit" and deadline is None and armed:
                deadline = now + rng.uniform(0, schedule.window())
            boundary += driver.STEP
        for ran, step_end in commits.read():
            if ran == session:
                returned.add(step_end)
                if step_end in step_ends:
                    schedule.windows.append(now - step_ends[step_end])
        current = beside(exploration.data, exploration.filename)
        if current != state:
            state, last_change = current, now
            if kind == "near a write" and deadline is None and armed:
                deadline = now + rng.uniform(0, TRIGGER_WINDOW)
        if deadline is not None and now >= deadline:
            returncode = kill_group(proc)
            return dict(killed=returncode == -signal.SIGKILL, returncode=returncode,
                        at=now - started, first_run=first_run, runs=runs_begun,
                        near_change=last_change is not None and
                        now - last_change <= TRIGGER_WINDOW,
                        in_commit=any(end not in returned for end in step_ends))
        time.sleep(POLL)
    kill_group(proc)                      # a driver that exited leaves no worker behind
    ended = time.monotonic() - started
    runs_begun += sum(ran == session for _, ran, _ in runs.read())
    if first_run is None and runs_begun:
        first_run = ended
    return dict(killed=False, returncode=proc.returncode, at=ended, first_run=first_run,
                runs=runs_begun, near_change=False, in_commit=False)


KINDS = ("uniform", "near a write", "in a commit")


_current: list[subprocess.Popen] = []    # the driver running now, killed on SIGTERM


def chain(directory: pathlib.Path, mode: str, seed: int) -> None:
    """Kill ``KILLS`` drivers of ``mode`` in turn, checking the file after each."""
    workers, storage = MODES[mode]
    rng = random.Random(seed)
    print(f"{mode}: seed {seed} (EXPLORER_FAULT_SEED replays the kill schedule)")
    started, cpu = time.monotonic(), time.process_time()
    schedule = Schedule()
    explorations = [Exploration(directory, 0, workers, storage)]
    kinds: collections.Counter = collections.Counter()
    kills = near_change = in_commit = completed = drivers = 0
    max_bytes = 0
    history: list[str] = []

    while True:
        exploration = explorations[-1]
        final = kills >= KILLS             # then the last file is resumed to the end
        if final and not exploration.resumable:
            break
        proc, session = exploration.start_driver()
        _current[:] = [proc]
        if final or not schedule.per_run:  # the first driver: measure its lifetime
            kind = "none"
            outcome = watch(proc, exploration, session, schedule, kind, 0.0, rng)
            assert outcome["first_run"] is not None, exploration.output(session)
        else:
            drivers += 1
            kind = KINDS[drivers % len(KINDS)]
            delay = rng.uniform(0, schedule.lifetime(exploration)) if kind == "uniform" else \
                rng.randrange(driver.N_RUNS - len(exploration.completed))
            outcome = watch(proc, exploration, session, schedule, kind, delay, rng)
        schedule.observe(outcome)
        where = "before any run" if outcome["first_run"] is None else \
            "in a commit" if outcome["in_commit"] else "while running"
        context = (f"{mode} (seed {seed}), exploration {exploration.number}, driver {session} "
                   f"({'killed' if outcome['killed'] else 'ended'} after {outcome['at']:.3f} s, "
                   f"{kind}, {where}; {len(exploration.completed)} runs stored before)")
        if outcome["killed"]:
            kills += 1
            kinds[f"{kind}: {where}"] += 1
            near_change += outcome["near_change"]
            in_commit += outcome["in_commit"]
        else:
            assert outcome["returncode"] == 0, \
                f"{context}: the driver failed (exit {outcome['returncode']}):\n" \
                f"{exploration.output(session)}"
        size = bytes_under(exploration.data)
        max_bytes = max(max_bytes, size)
        try:
            assert size <= BYTES_BOUND, \
                f"{context}: {size} bytes in the file's directory (bound {BYTES_BOUND}): " \
                f"what killed writers leave piles up"
            new = exploration.check(session, rng, context)
            assert outcome["killed"] or exploration.done, \
                f"{context}: the driver ended with {len(exploration.completed)} runs stored"
            if exploration.done:
                exploration.check_complete(rng, context, every_array=kills >= KILLS)
        except AssertionError:
            print("\n".join(history[-10:]))
            raise
        history.append(f"{context}: {new} more runs stored")
        with open(directory / "drivers.txt", "a") as stream:   # what each driver did
            stream.write(history[-1] + "\n")
        if exploration.done:
            completed += 1
            shutil.rmtree(exploration.data)    # checked: its logs are enough
            if final:
                break
            explorations.append(Exploration(directory, len(explorations), workers, storage))

    print(f"{mode}: {kills} kills in {time.monotonic() - started:.1f} s "
          f"({time.process_time() - cpu:.1f} s of processor time in this process), "
          f"{completed} explorations of {driver.N_RUNS} runs completed; "
          f"{near_change} kills within {TRIGGER_WINDOW * 1000:.0f} ms of a change beside the "
          f"file, {in_commit} between a step's last run and its env.run's return")
    print(f"{mode}: driver start to first run {np.median(schedule.startup):.2f} s, "
          f"{np.median(schedule.per_run) * 1000:.2f} ms per run, "
          f"step's last run to env.run's return "
          f"{np.median(schedule.windows) * 1000:.0f} ms (median); "
          f"at most {max_bytes / 2 ** 20:.1f} MiB in the file's directory after a kill")
    for name, count in sorted(kinds.items()):
        print(f"{mode}:   {count:3d} kills {name}")
    # the test does what it says: kills fell right after writes began or ended, and
    # between the last run of an env.run and its return, where its commit is
    assert near_change >= KILLS // 5 and in_commit >= KILLS // 10, \
        f"{mode}: {near_change} kills near a change beside the file, {in_commit} in commits"


# ------------------------------------------------------------------ the modes side by side
def _chain_process(mode: str, root: pathlib.Path, seed: int) -> subprocess.Popen:
    """This file run as a script: one mode's chain of kills, in a process of its own."""
    directory = root / mode
    directory.mkdir()
    with open(root / f"{mode}.out", "w") as out:
        return subprocess.Popen([sys.executable, __file__, mode, str(directory), str(seed)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def chains(request, tmp_path_factory):
    """The chain of every selected mode, started together when the first test needs one.

    Each chain is a process with its own directory, drivers and random schedule;
    the modes share nothing but the processors, so they run side by side and the
    three tests take about as long as the slowest one.
    """
    selected = [item.callspec.params["mode"] for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec")]
    root = tmp_path_factory.mktemp("faults")
    fixed = os.environ.get("EXPLORER_FAULT_SEED")
    started = {mode: _chain_process(mode, root, int(fixed) if fixed else
                                    random.SystemRandom().randrange(2 ** 32))
               for mode in MODES if mode in selected}
    yield root, started
    for proc in started.values():
        if proc.poll() is None:
            proc.terminate()               # it kills its driver's process group, then exits
            proc.wait(timeout=60)


@pytest.mark.parametrize("mode", list(MODES))
def test_sigkill_at_random_instants_keeps_every_committed_run(chains, mode):
    root, started = chains
    proc = started[mode]
    proc.wait(timeout=HUNG * KILLS)
    output = (root / f"{mode}.out").read_text()
    print(f"\n{output}")
    assert proc.returncode == 0, f"{mode} (its directory: {root / mode}):\n{output[-6000:]}"


def _stop(signum, frame):
    for proc in _current:
        kill_group(proc)
    sys.exit(f"stopped by signal {signum}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    chain(pathlib.Path(sys.argv[2]), sys.argv[1], int(sys.argv[3]))
