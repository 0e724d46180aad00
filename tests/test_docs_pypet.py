"""docs/pypet.md: its code runs, and the explorer names it gives for pypet's exist.

The page's ``python`` blocks run in order, in one namespace, in a fresh
directory (they write ``firing_rate.h5``, job files and merged files there). A
``text`` block right after a ``python`` block is what that block printed, and
is compared; a ``text`` block after that one which starts with
``<Category>Warning:`` shows the warnings the block gave (as
``Category: message``), and is compared too: a block whose page shows no
warning must give none. The ``explorer`` command of a ``console`` block runs at its place,
and what it prints is compared with the ``text`` block after it, if any. The
pypet code is fenced as ``text`` (pypet is not installed) and does not run.

The section "Importing pypet files" imports the pypet 0.7 tutorial file of
``shared/fixtures/pypet`` (see ``pypet_files.fixture_folder``), copied into the directory as
``pypet_tutorial.hdf5``; its blocks are left out, and the test checking them is
skipped with the reason, when the fixture or ``ex.import_pypet`` (or, for the
shell command, ``explorer import-pypet``) is missing.

A second test reads the tables of pypet names: every explorer spelling they
give (``traj.x``, ``env.x``, ``param.x``, ``ex.x``, the environment's keywords)
must exist.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import itertools
import pathlib
import re
import shlex
import shutil
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

import explorer as ex
from explorer.cli import cli
from explorer.runview import RunView
from pypet_files import fixture_folder

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "pypet.md"
FIXTURE = fixture_folder() / "pypet_tutorial.hdf5"
IMPORTING = "Importing pypet files"
WARNED = re.compile(r"^\w+Warning: ")


@dataclasses.dataclass
class Block:
    number: int
    language: str
    body: str
    section: str  # the ``## `` heading above it
    output: str | None = None  # the text block right after a python or console block
    warned: str | None = None  # a text block after that one showing the warnings it gave


def page_blocks() -> list[Block]:
    """The fenced blocks of the page, in order, with their section and output."""
    blocks: list[Block] = []
    section = ""
    for match in re.finditer(r"^## (?P<heading>[^\n]+)$|^```(?P<language>\w*)\n(?P<body>.*?)^```",
                             DOC.read_text(), flags=re.DOTALL | re.MULTILINE):
        if match["heading"] is not None:
            section = match["heading"].strip()
        else:
            blocks.append(Block(len(blocks), match["language"], match["body"], section))
    for block, following, then in itertools.zip_longest(blocks, blocks[1:], blocks[2:]):
        if block.language in ("python", "console") and following and following.language == "text":
            block.output = following.body
            if then and then.language == "text" and WARNED.match(then.body):
                block.warned = then.body
    return blocks


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def missing_for_import() -> str | None:
    """Why the import section cannot run here, or None."""
    if not FIXTURE.exists():
        return f"the pypet fixture {FIXTURE} is missing"
    if not hasattr(ex, "import_pypet"):
        return "ex.import_pypet does not exist yet (explorer/combine/pypet.py)"
    return None


def missing_command(name: str) -> str | None:
    return None if name in cli.commands else f"the command `explorer {name}` does not exist yet"


@dataclasses.dataclass
class PageRun:
    namespace: dict = dataclasses.field(repr=False)
    directory: pathlib.Path
    printed: dict[int, str]  # block number -> what it printed (python) or its stdout (console)
    warned: dict[int, list[str]]  # block number -> its warnings, "Category: message"
    skipped: dict[int, str]  # block number -> why it was left out


def run_console(block: Block) -> str:
    """Run the ``explorer`` command of a console block; its standard output."""
    args = shlex.split(block.body.strip().removeprefix("$ "))
    assert args[0] == "explorer", block.body
    result = CliRunner().invoke(cli, args[1:])
    assert result.exit_code == 0, (block.body, result.output, result.exception)
    return result.stdout


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> PageRun:
    """The page run top to bottom, once, in a fresh directory."""
    directory = tmp_path_factory.mktemp("pypet_page")
    if FIXTURE.exists():
        shutil.copy(FIXTURE, directory / "pypet_tutorial.hdf5")
    run = PageRun({"__name__": "__main__"}, directory, {}, {}, {})
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        for block in page_blocks():
            if block.language not in ("python", "console"):
                continue
            why = missing_for_import() if block.section == IMPORTING else None
            if block.language == "console" and why is None:
                why = missing_command(shlex.split(block.body.strip().removeprefix("$ "))[1])
            if why is not None:
                run.skipped[block.number] = why
                continue
            if block.language == "console":
                run.printed[block.number] = run_console(block)
                continue
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed), \
                    warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)  # the others stay errors
                exec(compile(block.body, f"{DOC}: block {block.number}", "exec"),  # noqa: S102
                     run.namespace)
            run.printed[block.number] = printed.getvalue()
            run.warned[block.number] = [f"{warning.category.__name__}: {warning.message}"
                                        for warning in caught]
    return run


def compare(page: PageRun, block: Block) -> int:
    """Compare what a block printed and warned with the page; 1 if the page shows an output."""
    if block.language == "python":
        shown = [] if block.warned is None else ["\n".join(lines(block.warned))]
        assert page.warned[block.number] == shown, f"block {block.number}: warnings"
    if block.output is None:
        return 0
    assert lines(page.printed[block.number]) == lines(block.output), f"block {block.number}"
    return 1


@pytest.mark.slow  # the page runs once, in 5 s
def test_every_block_outside_the_import_section_runs_and_prints_what_the_page_shows(page):
    blocks = page_blocks()
    assert {block.language for block in blocks} == {"python", "text", "console"}
    checked = 0
    for block in blocks:
        if block.section == IMPORTING or block.language not in ("python", "console"):
            continue
        assert block.number in page.printed, f"block {block.number} did not run"
        checked += compare(page, block)
    assert checked == 5
    # the files were written in the page's directory, none into the checkout
    for written in ("firing_rate.h5", "job1.h5", "all.h5", "all-cli.h5"):
        assert (page.directory / written).exists()
        assert not (DOC.parent / written).exists() and not (DOC.parent.parent / written).exists()


@pytest.mark.slow  # the page runs once, in 5 s
def test_the_port_and_the_merge_do_what_the_page_says(page):
    ns = page.namespace
    # the port: six runs, returned in run order, rates in Hz
    assert [idx for idx, _ in ns["results"]] == list(range(6))
    port = ex.load_trajectory(page.directory / "firing_rate.h5", "FiringRate")
    assert port["config.setup.seed"] == 42 and port["dpar.simulation.steps"] == 1000
    assert port.explored_parameters == ["parameters.neuron.tau_ref", "parameters.neuron.I"]
    assert port.res.neuron.V[:].shape == (6, 1000)
    assert ns["traj"].current_run is None  # the page restored the defaults
    # the merge: the first job's runs first, I = 0.2 once; sessions kept and one added
    merged = ex.load_trajectory(page.directory / "all.h5")
    assert len(merged) == ns["runs"] == 6
    sessions = merged.sessions()
    assert sessions.merged.iloc[-1] == ["job1.h5", "job2.h5"]
    assert bool(sessions.remove_duplicates.iloc[-1])
    job1 = ex.load_trajectory(page.directory / "job1.h5").to_frame()
    np.testing.assert_array_equal(merged.to_frame().nspikes.iloc[:4], job1.nspikes)
    # "Without it, every run is kept (here 8)"; the inputs are only read
    assert ex.merge(page.directory / "every.h5",
                    [page.directory / "job1.h5", page.directory / "job2.h5"]) == 8
    assert len(ex.load_trajectory(page.directory / "job1.h5")) == 4
    # the shell's merge wrote the same runs
    cli_frame = ex.load_trajectory(page.directory / "all-cli.h5").to_frame()
    assert cli_frame[["tau_ref", "I", "nspikes"]].equals(
        merged.to_frame()[["tau_ref", "I", "nspikes"]])


def section_blocks(page: PageRun, language: str) -> list[Block]:
    """The import section's blocks of one language; skips the test if one was left out."""
    blocks = [block for block in page_blocks()
              if block.section == IMPORTING and block.language == language]
    reasons = sorted({page.skipped[block.number] for block in blocks
                      if block.number in page.skipped})
    if reasons:
        pytest.skip("; ".join(reasons))
    return blocks


@pytest.mark.slow  # the page runs once, in 5 s
def test_the_import_section_runs_and_prints_what_the_page_shows(page):
    blocks = section_blocks(page, "python")
    assert sum(compare(page, block) for block in blocks) == len(blocks) == 3
    # what the page says was imported, and how
    traj = ex.load_trajectory(page.directory / "tutorial.h5", allow_pickle=True)
    assert traj.name == "FiringRate" and len(traj) == 45
    assert "link tauV_link" in traj.comment and "annotations" in traj.comment
    assert traj.res.runinfo.steps[:].tolist() == [5000] * 45
    assert type(traj.conn).__name__.startswith("csr")  # a SparseParameter
    assert isinstance(traj.get("neuron.weights").range[7], np.ndarray)  # an ArrayParameter
    frame = traj.to_frame()
    assert (frame.status == "completed").all() and frame.return_value.isna().all()
    assert traj.sessions().imported_from.iloc[-1]["format"] == "pypet"
    safe = ex.load_trajectory(page.directory / "tutorial-safe.h5")
    assert "parameters.misc.obj" in safe.comment and "allow_pickle=True" in safe.comment


@pytest.mark.slow  # the page runs once, in 5 s
def test_the_import_command_of_the_page_imports_the_file(page):
    (block,) = section_blocks(page, "console")
    compare(page, block)
    from_shell = ex.load_trajectory(page.directory / "tutorial-cli.h5", allow_pickle=True)
    assert len(from_shell) == 45 and from_shell.misc.obj == {"a": [1, 2, {"b": 3}]}


# ------------------------------------------------------------------ the tables of names
def explorer_column() -> list[tuple[str, str]]:
    """``(table heading, explorer cell)`` of every row of the tables of names."""
    text = DOC.read_text().split("## A pypet script, ported")[0]
    cells = []
    heading = ""
    for line in text.splitlines():
        if line.startswith("### "):
            heading = line[4:].strip()
        elif line.startswith("| ") and not line.startswith("|--"):
            columns = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
            if len(columns) == 2 and not columns[0].startswith("pypet"):
                cells.append((heading, columns[1]))
    return cells


def test_every_explorer_name_in_the_tables_exists():
    cells = explorer_column()
    assert len(cells) >= 50
    traj = ex.Trajectory("Names")
    param = traj.add_parameter("neuron.I", 0.0, comment="applied current")
    natural = {"par", "parameters", "res", "results", "dpar", "conf", "I"}
    environment = set(inspect.signature(ex.Environment).parameters)
    checked = 0
    for heading, cell in cells:
        code = " ".join(re.findall(r"`([^`]*)`", cell))
        for owner, name in re.findall(r"\b(traj|env|param|ex)\.(\w+)", code):
            if owner == "traj":
                assert (hasattr(ex.Trajectory, name) or hasattr(RunView, name) or name in natural
                        or name in ("idx", "name", "comment")), f"traj.{name} ({cell})"
            elif owner == "env":
                assert hasattr(ex.Environment, name), f"env.{name} ({cell})"
            elif owner == "param":
                assert hasattr(param, name), f"param.{name} ({cell})"
            elif name != "import_pypet" or missing_for_import() is None:
                assert hasattr(ex, name), f"ex.{name} ({cell})"
            checked += 1
        if heading == "The environment":
            for keyword in re.findall(r"\b(\w+)=", code):
                assert keyword in environment, f"Environment({keyword}=...) ({cell})"
                checked += 1
    assert checked >= 50
    assert "order" in inspect.signature(ex.cartesian_product).parameters
    assert {"remove_duplicates", "name"} <= set(inspect.signature(ex.merge).parameters)
    assert ex.OutputExistsError.__mro__[1] is ex.ExplorerError
    assert issubclass(ex.IncompatibleTrajectoriesError, ex.ExplorerError)
