"""LIF benchmark: compiled simulators against a run function, the raw floor and pypet.

Workload: the tutorial's leaky integrate-and-fire neuron (``lif_model.py``,
compiled with numba), 10,000 Euler steps per run, over the grid ``I``
(``runs / 10`` values in [0, 1]) x ``tau_ref`` (10 values, 1..10 ms), at
1,000 and 10,000 runs (``--sizes``). Every run stores its voltage trace ``V``
(80 KB) and its spike count ``nspikes``.

Figures per size (timed ones repeated ``--repeat`` times, best kept):

1. the raw floor, no framework (``bench_scaling.raw_floor``): the compiled
   loop over every grid point into a preallocated ``(runs, 10000)`` array,
   then one stacked PyTables write of V (blosc:lz4 level 5 + shuffle,
   explorer's default codec) and of the spike counts;
2. explorer, three ways of running the same model, each with ``workers=1``
   (in this process) and on a 2-worker dask cluster:

   * run function: ``def run(traj)`` calling ``lif_model.simulate`` and
     ``traj.add_result("neuron.$", V=V, nspikes=n)``;
   * njit simulator, unbatched: ``lif_simulators.lif_unbatched``
     (``ex.Simulator(..., batch=False)``: explorer calls the compiled
     function once per run);
   * njit simulator, batched: ``lif_simulators.lif`` (``@ex.simulator``):
     whole chunks of runs evaluated in one compiled loop, outputs stacked;

   steady state: numba's code is loaded and the batch loop compiled (in this
   process and in every worker) by small warm-up explorations first; the
   cluster is started once the way ``Environment(..., workers=2)`` starts it
   (``DaskExecutor``) and passed as ``client=``. The time is ``env.run``
   alone (file writes included); "work" is ``env.timings["run_seconds"]``
   (run and encoding time summed over workers). The batch loop's compile
   time, taken from ``env.timings["compile_seconds"]`` of the warm-ups, is
   printed apart;
3. pypet 0.7 (best of its serial, LOCK and QUEUE + pool + freeze_input
   modes; ``pypet_lif.py`` in its own virtualenv made by ``setup_pypet.sh``)
   measured on the 1,000-run grid and extrapolated per run to the other
   sizes (said so in the table).

And explorer's overhead per run: a trivial simulator ``y = 2 x``
(``lif_simulators.trivial``) over 100,000 values of ``x`` (``--trivial-runs``);
overhead/run = (``env.run`` - the same compiled loop without explorer
(``lif_simulators.trivial_loop``)) / runs; ``workers=1`` is the target
figure, 2 workers, the unbatched simulator and a run function
``traj.add_result("out.$", y=2 * traj.x)`` are context.

Every explorer file is read back once per way of running it (not timed):
``nspikes`` of every run and two runs' ``V`` must equal the floor's.

Ratios: "/floor" = time / floor time; "vs pypet" = pypet's best time per run /
this figure's time per run (how many times faster). "other" is the load of
processes outside the benchmark during the kept try (cores kept busy: machine
busy CPU minus this process tree's); ``*`` marks figures disturbed by more
than 0.25 core.

Targets (issue), on the 10,000-run grid: explorer batched >= 100x faster per
run than pypet's best mode (the faster of explorer's workers=1 and 2-worker
figures); explorer batched with ``workers=1`` <= 2x the floor (one process
each); overhead <= 20 us per run on the 100,000-run trivial benchmark
(``workers=1``). Exit status 1 if a target fails at full size, or if pypet
could not be measured (unless ``--no-pypet``). Smaller sizes are smoke tests.

Usage: python benchmarks/bench_lif.py [--sizes 1000,10000] [--trivial-runs 100000]
       [--repeat 3] [--no-pypet | --pypet-json FILE] [--save-pypet FILE]
       [--pypet-runs 1000] [--no-dask] [--dir DIR] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import tables

import explorer as ex
import lif_model  # beside this script: workers import it and load numba's cache
import lif_simulators  # the @ex.simulator declarations, importable by workers
from bench_scaling import (
    NEURON,
    TAU_REFS,
    Timer,
    clean_up,
    pick,
    raw_floor,
    remove_leftovers,
    setup_lif,
    start_cluster,
)

NAME = "lif"
HERE = os.path.dirname(os.path.abspath(__file__))
PYPET_PYTHON = os.path.join(HERE, ".pypet-venv", "bin", "python")
PYPET_TIMEOUT_S = 3600
TARGETS = {"vs_pypet": 100.0, "vs_floor": 2.0, "overhead_us": 20.0}
FULL = {"size": 10_000, "trivial_runs": 100_000}
CHECK_RUNS = (123, -1)  # runs whose V is compared with the floor's


# ---------------------------------------------------------------------- workloads
def run_function(traj):
    """A plain run function: the same model and results as ``lif_simulators.lif``."""
    V, nspikes = lif_model.simulate(traj.V_init, traj.I, traj.tau_V, traj.tau_ref, traj.dt,
                                    int(round(traj.duration / traj.dt)))
    traj.add_result("neuron.$", V=V, nspikes=nspikes)


def trivial_function(traj):
    traj.add_result("out.$", y=traj.x * 2.0)


def setup_trivial(traj, runs: int) -> None:
    traj.add_parameter("x", 0.0)
    traj.explore({"x": np.arange(runs, dtype=float).tolist()})


#: name -> (label, what env.run gets)
LIF = {"function": ("run function", run_function),
       "unbatched": ("njit simulator, unbatched", lif_simulators.lif_unbatched),
       "batched": ("njit simulator, batched", lif_simulators.lif)}
TRIVIAL = {"batched": ("trivial simulator, batched", lif_simulators.trivial),
           "unbatched": ("trivial simulator, unbatched (context)",
                         lif_simulators.trivial_unbatched),
           "function": ("run function traj.add_result (context)", trivial_function)}


# ---------------------------------------------------------------------- explorer
def explore(path: str, workload: str, variant: str, runs: int, **options) -> dict:
    """One exploration into a new ``path``: env.run's time, other load and env.timings."""
    func = (LIF if workload == "lif" else TRIVIAL)[variant][1]
    remove_leftovers(path)
    os.sync()
    with ex.Environment(NAME, filename=path, overwrite_file=True, progress=False,
                        **options) as env:
        if workload == "lif":
            setup_lif(env.trajectory, runs // len(TAU_REFS))
        else:
            setup_trivial(env.trajectory, runs)
        with Timer() as timer:
            results = env.run(func)
    if len(results) != runs:
        raise RuntimeError(f"{len(results)} results for {runs} runs")
    return {"s": timer.s, "other": timer.other, "work_s": env.timings.get("run_seconds", 0.0),
            "compile_s": env.timings.get("compile_seconds", 0.0)}


def check_file(path: str, reference: dict) -> str:
    """Compare a LIF exploration's stored results with the floor's (not timed)."""
    traj = ex.load_trajectory(path, NAME)
    frame = traj.to_frame()
    counts = reference["nspikes"]
    if len(frame) != len(counts):
        return f"{len(frame)} rows for {len(counts)} runs"
    if not np.array_equal(frame["nspikes"].to_numpy(), counts):
        return f"{int((frame['nspikes'].to_numpy() != counts).sum())} spike counts differ"
    for run, V in reference["V"].items():
        traj.set_run(run)
        if not np.array_equal(traj.res.neuron.crun.V, V):
            return f"run {run}'s V differs"
    return "ok"


def measure(f: dict, config: str, workdir: str, args, **options) -> None:
    """Warm-ups, then every timed try of one configuration (``w1`` or ``d2``)."""
    path = os.path.join(workdir, f"{config}.h5")
    # warm-up: numba's cache loaded, batch loops compiled (8+ chunks: every worker gets one)
    with Timer() as timer:
        for variant in LIF:
            tries = explore(path, "lif", variant, 200, chunk_size=25, **options)
            f[f"{config}_compile_lif_{variant}"] = tries["compile_s"]
        for variant in TRIVIAL:
            tries = explore(path, "trivial", variant, 2000, chunk_size=250, **options)
            f[f"{config}_compile_trivial_{variant}"] = tries["compile_s"]
    f[f"{config}_warmup_s"] = timer.s
    for size in args.sizes:
        for attempt in range(args.repeat):
            for variant in LIF:
                key = f"{config}_lif_{variant}_{size}"
                f.setdefault(key, []).append(explore(path, "lif", variant, size, **options))
                if attempt == 0:
                    f["checks"][size][f"{LIF[variant][0]}, {config}"] = \
                        check_file(path, f["reference"][size])
    variants = list(TRIVIAL) if config == "w1" else ["batched"]
    for _ in range(args.repeat):
        for variant in variants:
            f.setdefault(f"{config}_trivial_{variant}", []).append(
                explore(path, "trivial", variant, args.trivial_runs, **options))
    if not args.keep:
        remove_leftovers(path)


def steady_dask(f: dict, workdir: str, args) -> None:
    with Timer() as timer:
        executor, client = start_cluster(2)
    f["d2_start_s"] = timer.s
    try:
        measure(f, "d2", workdir, args, client=client)
    finally:
        with Timer() as timer:
            executor.close()  # closes the client and the cluster it started
        f["d2_stop_s"] = timer.s


# ---------------------------------------------------------------------- references
def floors(f: dict, workdir: str, args) -> None:
    """The raw floor per size; the stored spike counts and two traces for the checks."""
    samples = lif_model.n_steps(NEURON["duration"], NEURON["dt"])
    out = np.empty((max(args.sizes), samples))
    out.fill(0.0)  # page in once: the floor times the loop, not the page faults
    path = os.path.join(workdir, "floor.h5")
    f["reference"], f["checks"] = {}, {}
    for size in args.sizes:
        f["checks"][size] = {}
        for _ in range(args.repeat):
            loop, write = raw_floor(path, size // len(TAU_REFS), out[:size])
            f.setdefault(f"floor_loop_{size}", []).append(loop)
            f.setdefault(f"floor_write_{size}", []).append(write)
        f[f"floor_mb_{size}"] = os.path.getsize(path) / 1e6
        with tables.open_file(path) as handle:
            f["reference"][size] = {
                "nspikes": handle.root.nspikes.read(),
                "V": {run % size: handle.root.V[run % size] for run in CHECK_RUNS}}
        os.remove(path)
    del out


def trivial_reference(f: dict, args) -> None:
    x = np.arange(args.trivial_runs, dtype=float)
    out = np.empty_like(x)
    lif_simulators.trivial_loop(out, x)  # load numba's cache
    for _ in range(args.repeat):
        with Timer() as timer:
            lif_simulators.trivial_loop(out, x)
        f.setdefault("trivial_loop", []).append({"s": timer.s, "other": timer.other})
    if not np.array_equal(out, 2.0 * x):
        raise RuntimeError("trivial_loop computed something else")


# ---------------------------------------------------------------------- pypet
def _last_json(text: str) -> dict:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise ValueError("no output")
    return json.loads(lines[-1])


def pypet(args) -> tuple[dict | None, str]:
    """pypet's figures (``pypet_lif.py``'s JSON) and where they come from, or (None, why)."""
    if args.pypet_json:
        try:
            with open(args.pypet_json) as handle:
                return _last_json(handle.read()), f"from {args.pypet_json}"
        except (OSError, ValueError) as err:
            return None, f"could not read {args.pypet_json}: {err}"
    if not args.pypet:
        return None, "--no-pypet"
    if not os.path.exists(PYPET_PYTHON):
        setup = os.path.join(HERE, "setup_pypet.sh")
        if not os.path.exists(setup):
            return None, f"{setup} is missing"
        print(f"pypet: making its virtualenv (bash {os.path.relpath(setup)}) ...", flush=True)
        try:
            done = subprocess.run(["bash", setup], capture_output=True, text=True,
                                  timeout=PYPET_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return None, f"setup_pypet.sh took more than {PYPET_TIMEOUT_S} s"
        if done.returncode or not os.path.exists(PYPET_PYTHON):
            tail = "\n    ".join(done.stderr.strip().splitlines()[-5:])
            return None, f"setup_pypet.sh failed (exit {done.returncode}):\n    {tail}"
    script = os.path.join(HERE, "pypet_lif.py")
    if not os.path.exists(script):
        return None, f"{script} is missing"
    command = [PYPET_PYTHON, script, "--runs", str(args.pypet_runs), "--modes", args.pypet_modes]
    print(f"pypet: {' '.join(os.path.relpath(c) if os.sep in c else c for c in command)} ...",
          flush=True)
    try:
        with Timer() as timer:
            done = subprocess.run(command, capture_output=True, text=True,
                                  timeout=PYPET_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return None, f"pypet_lif.py took more than {PYPET_TIMEOUT_S} s"
    try:
        result = _last_json(done.stdout)
    except ValueError as err:
        tail = "\n    ".join(done.stderr.strip().splitlines()[-8:])
        return None, f"pypet_lif.py (exit {done.returncode}) gave no JSON ({err}):\n    {tail}"
    result["_wall_s"], result["_other"] = timer.s, timer.other
    if args.save_pypet:
        with open(args.save_pypet, "w") as handle:
            handle.write(json.dumps({k: v for k, v in result.items()
                                     if not k.startswith("_")}) + "\n")
    return result, f"measured now ({timer.s:.0f} s wall, other load {timer.other:.2f})"


def pypet_best(result: dict | None) -> tuple[str | None, float | None, str]:
    """(mode, ms per run, note) of the fastest mode whose results checked out."""
    if not result:
        return None, None, ""
    modes = result.get("modes", {})
    ok = {m: r for m, r in modes.items() if "run_s" in r and r.get("check", "ok") == "ok"}
    if not ok:
        return None, None, "no mode ran with correct results"
    best = min(ok, key=lambda m: ok[m]["run_s"])
    note = "" if best == result.get("best") else \
        f" (pypet_lif.py's own pick {result.get('best')!r} did not check out)"
    return best, ok[best]["run_s"] / result["runs"] * 1e3, note


# ---------------------------------------------------------------------- report
def _load(other: float, seconds: float) -> str:
    # CPU times tick every 10 ms: the load of shorter figures means nothing
    return f"{other:4.2f}" + ("*" if other > 0.25 else " ") if seconds >= 0.1 else "  -  "


def _tries(times: list[float]) -> str:
    return "" if len(times) < 2 else "(" + ", ".join(f"{t:.2f}" for t in times) + ")"


def lif_table(f: dict, size: int, pypet_ms: float | None, pypet_label: str) -> dict:
    """Print one size's table; return {row key: seconds} for the targets."""
    loop, write = pick(f[f"floor_loop_{size}"]), pick(f[f"floor_write_{size}"])
    floor = loop[0] + write[0]
    rows = [("floor", "raw floor: compiled loop into an array", loop, None),
            ("floor_write", "raw floor: one stacked write, V + nspikes", write, None),
            ("floor_total", "raw floor: total", (floor, max(loop[1], write[1]), []), None)]
    for config, where in (("w1", "workers=1"), ("d2", "2 workers")):
        for variant, (label, _) in LIF.items():
            tries = f.get(f"{config}_lif_{variant}_{size}")
            if tries:
                kept = min(tries, key=lambda t: t["s"])
                rows.append((f"{config}_{variant}", f"{label}, {where}", pick(tries),
                             kept["work_s"]))
    if pypet_ms is not None:
        rows.append(("pypet", pypet_label, (pypet_ms * size / 1e3, float("nan"), []), None))
    print(f"  {'figure':<50}{'time':>8}  {'runs/s':>8}  {'per run':>9}  {'/floor':>6}  "
          f"{'vs pypet':>8}  {'work':>6}  {'other':>5}  tries")
    shown = {}
    for key, label, (seconds, other, times), work in rows:
        shown[key] = seconds
        per_run = seconds / size * 1e3
        line = f"  {label:<50}{seconds:7.2f}s  {size / seconds:8,.0f}  {per_run:6.3f} ms  " \
               f"{seconds / floor:5.2f}x  "
        line += f"{pypet_ms / per_run:7.0f}x  " if pypet_ms is not None else f"{'':>8}  "
        line += f"{work:5.2f}s  " if work is not None else f"{'':>6}  "
        load = "  -  " if key == "pypet" else _load(other, seconds)
        print(line + f"{load}  {_tries(times)}")
    return shown


def report(f: dict, args, pypet_result: dict | None, pypet_source: str) -> bool:
    full = max(args.sizes) >= FULL["size"] and args.trivial_runs >= FULL["trivial_runs"]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    commit = subprocess.run(["git", "-C", HERE, "describe", "--always", "--dirty"],
                            capture_output=True, text=True, check=False).stdout.strip()
    print(f"\nexplorer {commit or '?'}; python {platform.python_version()}, numpy "
          f"{np.__version__}, tables {tables.__version__}, numba "
          f"{__import__('numba').__version__}, distributed "
          f"{__import__('distributed').__version__}, {os.cpu_count()} cores; best of "
          f"{args.repeat} (all tries in parentheses); load average at the end: {load}")
    print("'work': env.timings['run_seconds'] (runs + encoding, summed over workers); "
          "'other': cores kept busy by processes outside this benchmark during the kept try "
          "(* above 0.25: the figure is disturbed)")

    mode, pypet_ms, note = pypet_best(pypet_result)
    if pypet_result is None:
        print(f"\npypet: not measured ({pypet_source})")
    else:
        print(f"\npypet {pypet_result.get('pypet_version')} (python "
              f"{pypet_result.get('python')}, numpy {pypet_result.get('numpy')}, tables "
              f"{pypet_result.get('tables')}), {pypet_result['runs']:,} runs, {pypet_source}:")
        for name, r in pypet_result.get("modes", {}).items():
            if "error" in r:
                print(f"  {name:<7} error: {r['error']}")
            else:
                print(f"  {name:<7} env.run {r['run_s']:7.2f} s  {r['ms_per_run']:7.2f} ms/run  "
                      f"(Environment to close {r['total_s']:.2f} s, {r.get('file_mb', 0):.0f} MB, "
                      f"check: {r.get('check')}, 1-min load after: {r.get('loadavg_1m')})")
        print(f"  best: {mode}, {pypet_ms:.2f} ms/run{note}" if mode else f"  best: none, {note}")

    shown = {}
    for size in args.sizes:
        samples = lif_model.n_steps(NEURON["duration"], NEURON["dt"])
        print(f"\nLIF grid, {size:,} runs x {samples:,} steps, V and nspikes stored "
              f"({size * samples * 8 / 1e6:,.0f} MB raw, {f[f'floor_mb_{size}']:.0f} MB in the "
              f"floor's file); steady state")
        if mode is None:
            label = ""
        elif size == pypet_result["runs"]:
            label = f"pypet best ({mode}), measured"
        else:
            label = f"pypet best ({mode}), extrapolated from {pypet_result['runs']:,} runs"
        shown[size] = lif_table(f, size, pypet_ms, label)
        bad = {k: v for k, v in f["checks"][size].items() if v != "ok"}
        print(f"  stored results read back: {'all equal to the floor' if not bad else bad}")

    runs = args.trivial_runs
    reference = pick(f["trivial_loop"])
    print(f"\nTrivial simulator y = 2 x, {runs:,} runs; overhead/run = (env.run - the same "
          f"compiled loop without explorer) / runs")
    print(f"  {'figure':<50}{'time':>8}  {'runs/s':>12}  {'per run':>9}  {'overhead':>9}  "
          f"{'other':>5}  tries")
    rows = [("loop", "compiled loop without explorer", reference)]
    for config, where in (("w1", "workers=1"), ("d2", "2 workers")):
        for variant, (label, _) in TRIVIAL.items():
            if f.get(f"{config}_trivial_{variant}"):
                rows.append((f"{config}_{variant}", f"{label}, {where}",
                             pick(f[f"{config}_trivial_{variant}"])))
    overhead = {}
    for key, label, (seconds, other, times) in rows:
        us = (seconds - reference[0]) / runs * 1e6
        overhead[key] = us
        over = f"{us:6.2f} us" if key != "loop" else ""
        print(f"  {label:<50}{seconds:7.3f}s  {runs / seconds:12,.0f}  "
              f"{seconds / runs * 1e6:6.2f} us  {over:>9}  {_load(other, seconds)}  "
              f"{_tries(times)}")

    compile_in = f.get("w1_compile_lif_batched", 0.0)
    print(f"\n  fixed costs (excluded above): batch loop compile in this process: LIF "
          f"{compile_in:.2f} s, trivial {f.get('w1_compile_trivial_batched', 0.0):.2f} s; "
          f"numba's first call here {f['numba_first_s']:.2f} s; warm-ups {f['w1_warmup_s']:.1f} s")
    if "d2_start_s" in f:
        print(f"  dask 2 workers: cluster start {f['d2_start_s']:.2f} s, batch loop compile "
              f"summed over the workers: LIF {f.get('d2_compile_lif_batched', 0.0):.2f} s, "
              f"trivial {f.get('d2_compile_trivial_batched', 0.0):.2f} s; warm-ups "
              f"{f['d2_warmup_s']:.1f} s, stop {f['d2_stop_s']:.2f} s")
    timed = [t["compile_s"] for k, v in f.items() if isinstance(v, list) and
             (k.startswith("w1_") or k.startswith("d2_")) for t in v]
    print(f"  compile_seconds in the timed tries: at most {max(timed, default=0.0) * 1e3:.1f} ms "
          f"(the batch loops' lookup per chunk)")

    size = FULL["size"] if FULL["size"] in args.sizes else max(args.sizes)
    figures = shown[size]
    checks = []
    batched = {k: figures[k] for k in ("w1_batched", "d2_batched") if k in figures}
    best_key = min(batched, key=batched.get)
    where = "workers=1" if best_key == "w1_batched" else "2 workers"
    if pypet_ms is not None:
        speed = pypet_ms / (batched[best_key] / size * 1e3)
        checks.append((f"batched ({where}) vs pypet best ({mode}), per run",
                       f"{speed:.0f}x", f">= {TARGETS['vs_pypet']:.0f}x",
                       "PASS" if speed >= TARGETS["vs_pypet"] else "FAIL"))
    else:
        checks.append(("batched vs pypet best, per run", "-", f">= {TARGETS['vs_pypet']:.0f}x",
                       "not measured"))
    ratio = figures["w1_batched"] / figures["floor_total"]
    checks.append(("batched (workers=1) / raw floor", f"{ratio:.2f}x",
                   f"<= {TARGETS['vs_floor']:.0f}x",
                   "PASS" if ratio <= TARGETS["vs_floor"] else "FAIL"))
    us = overhead["w1_batched"]
    checks.append(("trivial: overhead per run, workers=1", f"{us:.1f} us",
                   f"<= {TARGETS['overhead_us']:.0f} us",
                   "PASS" if us <= TARGETS["overhead_us"] else "FAIL"))
    print(f"\n  {'target (' + format(size, ',') + '-run grid)':<52}{'measured':>9}  "
          f"{'limit':<9} result")
    for label, value, limit, result in checks:
        print(f"  {label:<52}{value:>9}  {limit:<9} {result}")
    context = []
    if pypet_ms is not None:
        context.append("vs pypet per run: " + ", ".join(
            f"batched {'workers=1' if k == 'w1_batched' else '2 workers'} "
            f"{pypet_ms / (v / size * 1e3):.0f}x" for k, v in batched.items()))
    if "d2_batched" in figures:
        ratio2 = figures["d2_batched"] / figures["floor_total"]
        context.append(f"batched 2 workers / floor {ratio2:.2f}x")
    if "d2_batched" in overhead:
        context.append(f"trivial overhead 2 workers {overhead['d2_batched']:.1f} us/run")
    if context:
        print(f"  context: {'; '.join(context)}")
    if not full:
        print(f"  (smoke test: the targets are set for {FULL['size']:,} LIF runs and "
              f"{FULL['trivial_runs']:,} trivial runs)")
    failed = any(result == "FAIL" for *_, result in checks)
    missing = any(result == "not measured" for *_, result in checks) and \
        pypet_source != "--no-pypet"
    return not full or not (failed or missing)


# ---------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000",
                        help="LIF grid sizes, multiples of 10 (default 1000,10000)")
    parser.add_argument("--trivial-runs", type=int, default=FULL["trivial_runs"])
    parser.add_argument("--repeat", type=int, default=3, help="timed tries (best is kept)")
    parser.add_argument("--no-pypet", dest="pypet", action="store_false",
                        help="skip pypet (its target is then 'not measured')")
    parser.add_argument("--pypet-json", metavar="FILE",
                        help="reuse pypet_lif.py's saved output instead of running it")
    parser.add_argument("--save-pypet", metavar="FILE",
                        help="save the JSON line of a pypet measurement made now")
    parser.add_argument("--pypet-runs", type=int, default=1000)
    parser.add_argument("--pypet-modes", default="serial,lock,queue")
    parser.add_argument("--no-dask", dest="dask", action="store_false",
                        help="skip the 2-worker figures")
    parser.add_argument("--dir", help="where to write the files (default: a temporary dir)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    args = parser.parse_args()
    args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if not args.sizes or any(s < len(TAU_REFS) or s % len(TAU_REFS) for s in args.sizes):
        parser.error("--sizes must be positive multiples of 10")

    workdir = args.dir or tempfile.mkdtemp(prefix="bench_lif_")
    os.makedirs(workdir, exist_ok=True)
    f: dict = {}
    start = time.perf_counter()
    try:
        with Timer() as timer:
            lif_model.simulate(0.0, 0.5, 12.0, 5.0, 0.1, 10)  # compile, or load numba's cache
        f["numba_first_s"] = timer.s
        floors(f, workdir, args)
        trivial_reference(f, args)
        measure(f, "w1", workdir, args)
        if args.dask:
            steady_dask(f, workdir, args)
        explorer_s = time.perf_counter() - start
        pypet_result, pypet_source = pypet(args)
        ok = report(f, args, pypet_result, pypet_source)
        print(f"\n  whole script {time.perf_counter() - start:.0f} s (explorer and floor "
              f"{explorer_s:.0f} s)")
    finally:
        clean_up(workdir, ("floor", "w1", "d2"), args.keep, bool(args.dir))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
