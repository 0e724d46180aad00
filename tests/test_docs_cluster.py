"""docs/cluster.md: its code runs, and its batch-system settings make the job scripts it shows.

The page's ``python`` blocks run in order, in one namespace whose ``__name__`` is
``"__main__"`` (so the scripts' guards are true), in a fresh directory, on real
dask clusters. A ``text`` block right after a block is what that block printed,
and is compared. Blocks marked ``<!-- not run: ... -->`` cannot run as they
stand: the one that needs a scheduler runs at its place against the scheduler
of the page's own ``LocalCluster``; the SLURM and PBS blocks are checked by
building their dask-jobqueue cluster objects with the blocks' own arguments
(read from the blocks, so the page cannot drift from what is tested) without
submitting any job, and comparing the job script with the one the page shows.
The block that prints ``env.dashboard_link`` runs with a standard error that
passes for a terminal, so that its progress bar shows, headed by the dashboard's
address as the page says.
"""
from __future__ import annotations

import ast
import contextlib
import dataclasses
import io
import itertools
import logging
import pathlib
import re

import pytest

import explorer as ex

distributed = pytest.importorskip("distributed")
dask_jobqueue = pytest.importorskip("dask_jobqueue")
dask_utils = pytest.importorskip("dask.utils")

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "cluster.md"
SCHEDULER = "needs a scheduler at tcp://host:8786"
NOT_RUN = {SCHEDULER, "needs SLURM", "needs PBS"}
#: Minutes a worker's --lifetime (plus its stagger) must end before the walltime.
MARGIN_MINUTES = 5

# the page's LocalCluster keeps dask's default dashboard port, which another
# cluster on this machine may hold: dask then warns and takes another port
pytestmark = pytest.mark.filterwarnings("ignore:Port 8787 is already in use:UserWarning")


@dataclasses.dataclass
class Block:
    number: int
    language: str
    body: str
    not_run: str | None  # why, from the marker on the line before the fence
    output: str | None = None  # the text block right after it


def page_blocks() -> list[Block]:
    """The fenced blocks of the page, in order, each python block with its output."""
    found = re.finditer(r"(?:^<!-- not run: (?P<why>[^\n]*?) -->\n)?"
                        r"^```(?P<language>\w*)\n(?P<body>.*?)^```", DOC.read_text(),
                        flags=re.S | re.M)
    blocks = [Block(number, match["language"], match["body"], match["why"])
              for number, match in enumerate(found)]
    for block, following in itertools.pairwise(blocks):
        if block.language == "python" and following.language == "text":
            block.output = following.body
    return blocks


def python_block(why: str) -> Block:
    (block,) = [block for block in page_blocks() if block.not_run == why]
    assert block.language == "python"
    compile(block.body, f"{DOC}: block {block.number}", "exec")  # at least valid Python
    return block


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


class Terminal(io.StringIO):
    """A stream that passes for a terminal: tqdm then shows its bar."""

    def isatty(self) -> bool:
        return True


@pytest.mark.slow
def test_the_page_runs_top_to_bottom(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.INFO, logger="explorer")
    explorer_log = logging.getLogger("explorer")
    handlers = list(explorer_log.handlers)
    blocks = page_blocks()
    assert {block.language for block in blocks} == {"python", "text", "bash"}
    assert {block.not_run for block in blocks} - {None} == NOT_RUN
    namespace: dict = {"__name__": "__main__"}
    printed_by: dict[int, str] = {}
    try:
        for block in blocks:
            if block.language != "python" or block.not_run in NOT_RUN - {SCHEDULER}:
                continue
            source = block.body
            if block.not_run == SCHEDULER:  # the address of the page's own cluster
                assert "tcp://host:8786" in source
                source = source.replace("tcp://host:8786",
                                        namespace["cluster"].scheduler_address)
            printed = io.StringIO()
            terminal = Terminal() if "print(env.dashboard_link)" in source else io.StringIO()
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(terminal):
                exec(compile(source, f"{DOC}: block {block.number}", "exec"), namespace)
            printed_by[block.number] = printed.getvalue()
            if "executor.close()" in source:  # its cluster is stopped, as the page says
                assert namespace["executor"].client.status == "closed"
            if block.output is not None:
                assert lines(printed.getvalue()) == lines(block.output), f"block {block.number}"
    finally:
        for name in ("client", "cluster"):
            if name in namespace:
                namespace[name].close()
        for handler in set(explorer_log.handlers) - set(handlers):  # the page's, for its reader
            explorer_log.removeHandler(handler)
    assert len(printed_by) == 10
    # the dashboard's address was logged on the explorer logger, at INFO, by every kind
    # of cluster the page ran on: its own (workers=N), a client, a scheduler and an
    # executor given
    logged = [record.getMessage() for record in caplog.records
              if record.name == "explorer" and record.levelno == logging.INFO]
    links = [message for message in logged if re.fullmatch(r"dask dashboard: http://\S+", message)]
    assert len(links) >= 7  # resume ran nothing; workers=1 and "auto" here no cluster
    check_stated_facts(namespace, printed_by)


def check_stated_facts(ns: dict, printed_by: dict[int, str]) -> None:
    """What the page says about the runs, on the files and namespace its blocks left."""
    # every exploration stored its 20 runs, completed; both storage modes the same items
    for filename, name in (("lif.h5", "LIF"), ("timing.h5", "Timing"), ("lif-lock.h5", "LIF"),
                           ("auto.h5", "Auto"), ("lif-executor.h5", "LIF"),
                           ("watched.h5", "LIF")):
        frame = ex.load_trajectory(filename, name).to_frame()
        assert len(frame) == 20 and (frame.status == "completed").all(), filename
        assert frame.columns.tolist()[:3] == ["tau", "I", "rate"]
    # the timing loop ran both ways, and one process was the quicker for 20 short runs
    (timings,) = [text for text in printed_by.values() if "workers=1:" in text]
    seconds = dict(re.findall(r"workers=(\d+): ([\d.]+) s", timings))
    assert set(seconds) == {"1", "4"} and float(seconds["1"]) < float(seconds["4"])
    # the resumed exploration ran nothing and returned every run; the client was
    # left open by every environment, and the page closed it at the end
    assert [idx for idx, _ in ns["results"]] == list(range(20))
    assert ns["client"].status == "closed"
    # the dashboard block: its bar headed by the address, which env.dashboard_link gives
    (watched,) = [text for text in printed_by.values() if "dask dashboard at" in text]
    headline, link = lines(watched)
    assert re.fullmatch(r"http://[\w.\[\]:-]+:\d+/status", link)
    assert headline == f"LIF: dask dashboard at {link}"


# ------------------------------------------------------------------ batch systems
def call_options(source: str, callee: str) -> dict:
    """The keyword arguments of the one call of ``callee`` in ``source``, as values."""
    calls = [node for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
             and node.func.id == callee]
    assert len(calls) == 1, f"{callee} is called {len(calls)} times"
    assert not calls[0].args, f"{callee} takes keyword arguments on the page"
    return {keyword.arg: ast.literal_eval(keyword.value) for keyword in calls[0].keywords}


def method_calls(source: str, method: str) -> list[dict]:
    """The keyword arguments of each call of ``<something>.method(...)`` in ``source``."""
    return [{keyword.arg: ast.literal_eval(keyword.value) for keyword in node.keywords}
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == method]


def check_recommended_settings(options: dict) -> None:
    """One thread per worker process, and workers that leave before the walltime."""
    assert options["cores"] == options["processes"] > 1
    extra = options["worker_extra_args"]
    lifetime = dask_utils.parse_timedelta(extra[extra.index("--lifetime") + 1])
    stagger = dask_utils.parse_timedelta(extra[extra.index("--lifetime-stagger") + 1])
    hours, minutes, seconds = map(int, options["walltime"].split(":"))
    walltime = 3600 * hours + 60 * minutes + seconds
    assert 0 < stagger and lifetime + stagger <= walltime - 60 * MARGIN_MINUTES


def normalised(script: str) -> list[str]:
    """A job script's lines, with the Python path and the scheduler's address left out."""
    return [re.sub(r"^\S+ -m distributed\.cli\.dask_worker tcp://\S+",
                   "PYTHON -m distributed.cli.dask_worker ADDRESS", line)
            for line in lines(script)]


def test_the_slurm_block_makes_the_job_script_the_page_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the cluster makes its log directory here
    block = python_block("needs SLURM")
    options = call_options(block.body, "SLURMCluster")
    check_recommended_settings(options)
    assert method_calls(block.body, "scale") == [{"jobs": 4}]
    (environment,) = [node for node in ast.walk(ast.parse(block.body))
                      if isinstance(node, ast.Call) and ast.unparse(node.func) ==
                      "ex.Environment"]
    assert ast.unparse(next(keyword.value for keyword in environment.keywords
                            if keyword.arg == "client")) == "client"
    # built as on the page, with its scheduler here; no job is submitted
    with dask_jobqueue.SLURMCluster(**options) as cluster:
        script = cluster.job_script()
    header = [line for line in lines(script) if line.startswith("#SBATCH")]
    assert f"#SBATCH -t {options['walltime']}" in header
    assert f"#SBATCH --cpus-per-task={options['cores']}" in header
    assert f"#SBATCH -A {options['account']}" in header
    assert f"#SBATCH -p {options['queue']}" in header
    memory = dask_utils.parse_bytes(options["memory"])  # in GiB, rounded up: 16GB is 15G
    assert f"#SBATCH --mem={dask_jobqueue.slurm.slurm_format_bytes_ceil(memory)}" in header
    share = memory / options["processes"] / 1e9  # each worker's, as the page says
    assert f"(here {share:g} GB)" in " ".join(DOC.read_text().split())
    assert all(f"#SBATCH {directive}" in header for directive in options["job_extra_directives"])
    worker = lines(script)[-1]
    assert "--nthreads 1 " in worker and f"--nworkers {options['processes']} " in worker
    assert " ".join(options["worker_extra_args"]) in worker
    assert options["job_script_prologue"][0] in lines(script)
    # the page shows this very script
    shown = page_blocks()[block.number + 1]
    assert shown.language == "text"
    assert normalised(script) == normalised(shown.body)


def test_the_pbs_block_asks_for_the_same_resources(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = call_options(python_block("needs PBS").body, "PBSCluster")
    check_recommended_settings(options)
    slurm = call_options(python_block("needs SLURM").body, "SLURMCluster")
    shared = ("cores", "processes", "memory", "walltime", "worker_extra_args",
              "job_script_prologue", "account", "queue")
    assert {key: options[key] for key in shared} == {key: slurm[key] for key in shared}
    assert "resource_spec" not in options
    with dask_jobqueue.PBSCluster(**options) as cluster:
        script = cluster.job_script()
    header = [line for line in lines(script) if line.startswith("#PBS")]
    assert f"#PBS -l walltime={options['walltime']}" in header
    # what the page says PBSCluster asks for, from cores and memory
    requested = f"select=1:ncpus={options['cores']}:mem="
    assert requested in DOC.read_text()
    assert any(line.startswith(f"#PBS -l {requested}") for line in header)
    worker = lines(script)[-1]
    assert "--nthreads 1 " in worker and f"--nworkers {options['processes']} " in worker
    assert " ".join(options["worker_extra_args"]) in worker
