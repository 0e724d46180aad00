"""The lock file beside an explorer file is removed when its claim is given up, and
the claim stays exclusive: real processes, real files.

``<file>.lock`` is locked with ``flock`` for as long as a claim is held. Removing
a locked file's path lets the next claimant create a new file there and lock it
while a waiter still locks the old one; explorer removes the lock file only
while it holds it, and a claimant that locked a file no longer at the path tries
again (``explorer/storage/lockfile.py``). So:

- a process waiting for an environment's claim gets it when the environment
  closes, not before; meanwhile and afterwards nobody else gets it; no lock
  file remains once every claim is given up;
- several processes taking and giving up the claim in a tight loop are never
  inside it together (a counter read and written inside the claim counts every
  pass, and the log of entries and exits never interleaves);
- a process that exits with its environment still open removes its lock file;
  a forked child that exits leaves its parent's lock alone;
- discarding a file leaves a lock file someone holds.
"""
from __future__ import annotations

import glob
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import explorer as ex
from explorer.storage.hdf5.backend import BACKEND
from explorer.storage.lockfile import FileClaim

HOLDER = textwrap.dedent('''
    import json, os, sys, time
    import explorer as ex
    from explorer.storage.lockfile import FileClaim

    def log(path, event, **more):
        with open(path, "a") as stream:  # one write per line: O_APPEND keeps them whole
            stream.write(json.dumps(dict(event=event, pid=os.getpid(), t=time.time(),
                                         **more)) + "\\n")

    def wait_for(path):
        while not os.path.exists(path):
            time.sleep(0.005)

    def main():
        mode, filename, logfile, go = sys.argv[1:]
        lock = os.path.realpath(filename) + ".lock"
        if mode == "environment":  # holds an environment open until told to close it
            env = ex.Environment("Claimed", filename, progress=False)
            env.trajectory.add_parameter("x", 0)
            env.trajectory.explore({"x": [1, 2, 3]})
            env.run(lambda traj: traj.x)
            log(logfile, "open")
            wait_for(go)
            log(logfile, "closing")
            env.close()
            log(logfile, "closed")
        elif mode == "waiter":  # waits for the claim, holds it until told to let it go
            log(logfile, "waiting")
            claim = FileClaim(filename, "the waiting process", wait=60)
            log(logfile, "acquired", same=os.stat(lock).st_ino == os.fstat(claim._fd).st_ino)
            wait_for(go)
            claim.release()
            log(logfile, "released")
        elif mode == "loop":  # takes and gives up the claim, counting in a shared file
            counter = filename + ".count"
            for _ in range(int(go)):
                with FileClaim(filename, "a loop", wait=60):
                    log(logfile, "enter")
                    with open(counter) as stream:
                        value = int(stream.read())
                    time.sleep(0.003)
                    with open(counter, "w") as stream:
                        stream.write(str(value + 1))
                    log(logfile, "exit")
        elif mode == "left-open":  # exits with its environment still open
            env = ex.Environment("Claimed", filename, progress=False)
            env.trajectory.add_parameter("x", 0)
            env.trajectory.explore({"x": [1, 2]})
            env.run(lambda traj: traj.x)
            log(logfile, "exiting", lock_exists=os.path.exists(lock))
        elif mode == "fork":  # a forked child exits normally while the parent holds
            env = ex.Environment("Claimed", filename, progress=False)
            child = os.fork()
            if child == 0:
                sys.exit(0)  # runs the atexit handlers the parent registered
            os.waitpid(child, 0)
            log(logfile, "child-exited", lock_exists=os.path.exists(lock))
            wait_for(go)
            env.close()
            log(logfile, "closed")
        else:
            raise SystemExit(f"unknown mode {mode!r}")

    if __name__ == "__main__":
        main()
''')


def start(directory, mode, filename, go="-"):
    """A process running :data:`HOLDER` in ``mode``; its events go to ``<mode>.log``."""
    script = directory / "holder.py"
    if not script.exists():
        script.write_text(HOLDER)
    logfile = str(directory / f"{mode}-{time.monotonic_ns()}.log")
    process = subprocess.Popen([sys.executable, str(script), mode, filename, logfile, str(go)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    process.logfile = logfile
    return process


def events(process):
    try:
        with open(process.logfile) as stream:
            return [json.loads(line) for line in stream]
    except FileNotFoundError:
        return []


def wait_for_event(process, event, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [record for record in events(process) if record["event"] == event]
        if found:
            return found[0]
        if process.poll() is not None:
            break
        time.sleep(0.01)
    output = process.stdout.read() if process.poll() is not None else "(still running)"
    raise AssertionError(f"no {event!r} from {process.args[2]}: {events(process)}\n{output}")


def finish(process):
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output


def refused(h5path):
    """Whether a claim, tried at once from this process, is refused."""
    try:
        FileClaim(h5path, "the test", wait=0).release()
    except ex.FileLockedError:
        return True
    return False


def lock_of(h5path):
    return os.path.realpath(h5path) + ".lock"


@pytest.mark.slow
def test_a_waiting_process_gets_the_claim_when_the_environment_closes(tmp_path, h5path):
    holder = start(tmp_path, "environment", h5path, go=tmp_path / "close")
    try:
        wait_for_event(holder, "open")
        assert os.path.exists(lock_of(h5path)) and refused(h5path)
        waiter = start(tmp_path, "waiter", h5path, go=tmp_path / "let-go")
        wait_for_event(waiter, "waiting")
        time.sleep(0.5)  # the waiter is blocked on the environment's lock file now
        assert not [record for record in events(waiter) if record["event"] == "acquired"]
        (tmp_path / "close").touch()
        closing = wait_for_event(holder, "closing")
        acquired = wait_for_event(waiter, "acquired")
        finish(holder)
        assert acquired["t"] > closing["t"] and acquired["same"]
        # the lock file the waiter holds is a new one at the path: it still excludes
        assert os.path.exists(lock_of(h5path)) and refused(h5path)
        assert str(waiter.pid) in pathlib.Path(lock_of(h5path)).read_text()
        (tmp_path / "let-go").touch()
        wait_for_event(waiter, "released")
        finish(waiter)
    finally:
        for process in (holder, locals().get("waiter")):
            if process is not None and process.poll() is None:
                process.kill()
    assert not glob.glob(str(tmp_path / "**" / "*.lock"), recursive=True)
    assert ex.load_trajectory(h5path)._status_counts()["completed"] == 3


def test_processes_taking_the_claim_in_a_loop_are_never_inside_it_together(tmp_path, h5path):
    processes, passes = 4, 30
    with open(h5path + ".count", "w") as stream:
        stream.write("0")
    loops = [start(tmp_path, "loop", h5path, go=passes) for _ in range(processes)]
    try:
        for loop in loops:
            finish(loop)
    finally:
        for loop in loops:
            if loop.poll() is None:
                loop.kill()
    with open(h5path + ".count") as stream:
        assert int(stream.read()) == processes * passes  # no pass overwrote another's
    log = sorted((record for loop in loops for record in events(loop)),
                 key=lambda record: record["t"])
    assert len(log) == 2 * processes * passes
    inside = None
    for record in log:
        if record["event"] == "enter":
            assert inside is None, f"{record['pid']} entered while {inside} was inside"
            inside = record["pid"]
        else:
            assert inside == record["pid"]
            inside = None
    assert not os.path.exists(lock_of(h5path))


@pytest.mark.slow
def test_a_process_exiting_with_its_environment_open_removes_its_lock_file(tmp_path, h5path):
    process = start(tmp_path, "left-open", h5path)
    finish(process)
    assert wait_for_event(process, "exiting")["lock_exists"]  # held until the very end
    assert not os.path.exists(lock_of(h5path))
    assert ex.load_trajectory(h5path)._status_counts()["completed"] == 2


@pytest.mark.slow
def test_a_forked_child_exiting_leaves_its_parents_lock(tmp_path, h5path):
    process = start(tmp_path, "fork", h5path, go=tmp_path / "close")
    try:
        assert wait_for_event(process, "child-exited")["lock_exists"]
        assert refused(h5path)  # still the parent's
        (tmp_path / "close").touch()
        wait_for_event(process, "closed")
        finish(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert not os.path.exists(lock_of(h5path))


def test_discarding_a_file_leaves_a_lock_someone_holds(tmp_path, h5path):
    ex.Trajectory("T").store(h5path)
    waiter = start(tmp_path, "waiter", h5path, go=tmp_path / "let-go")
    try:
        assert wait_for_event(waiter, "acquired")["same"]
        BACKEND.discard(h5path)
        assert not os.path.exists(h5path)
        assert os.path.exists(lock_of(h5path)) and refused(h5path)
        (tmp_path / "let-go").touch()
        finish(waiter)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert not os.path.exists(lock_of(h5path))
    ex.Trajectory("T").store(h5path)  # and no lock is left by a discard nobody minds
    BACKEND.discard(h5path)
    assert not os.path.exists(lock_of(h5path)) and not os.path.exists(h5path)


def test_a_claim_given_up_in_this_process_removes_its_lock_file(h5path):
    with ex.Environment("T", h5path, progress=False) as env:
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": list(np.arange(3))})
        env.run(lambda traj: int(traj.x))
        assert os.path.exists(lock_of(h5path))
    assert not os.path.exists(lock_of(h5path))
    ex.load_trajectory(h5path).store()  # a write outside an environment claims too
    assert not os.path.exists(lock_of(h5path))
