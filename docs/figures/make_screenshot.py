"""Make ``docs/figures/trajectory_html.png``: the notebook view of the tutorial's trajectory.

Runs the firing-rate tutorial (``examples/firing_rate.py``) in a temporary
directory, with the three runs of I = 1 made to fail so the run counts show a failure,
writes ``explorer.display.trajectory_html`` of the reloaded trajectory to an HTML
page and photographs it with headless Chromium (Debian package ``chromium``).
Not run by the tests or CI: ``python docs/figures/make_screenshot.py``.
"""
from __future__ import annotations

import importlib.util
import pathlib
import shutil
import subprocess
import sys
import tempfile

import explorer as ex
from explorer.display import trajectory_html

HERE = pathlib.Path(__file__).resolve().parent
EXAMPLE = HERE.parent.parent / "examples" / "firing_rate.py"
PNG = HERE / "trajectory_html.png"
PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>explorer trajectory</title></head>
<body style="margin: 16px; background: white">{body}</body></html>
"""


def load_example():
    """The tutorial's module, imported from its file."""
    spec = importlib.util.spec_from_file_location("firing_rate", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(filename: str) -> ex.Trajectory:
    """Run the tutorial into ``filename`` (the strongest currents fail) and reload it."""
    tutorial = load_example()

    def run(traj):
        if traj.I > 0.975:  # the three runs with I = 1
            raise RuntimeError("diverged (made up, to show a failed run)")
        return tutorial.run_neuron(traj)

    with ex.Environment(trajectory=tutorial.TRAJECTORY, filename=filename, progress=False,
                        comment="Firing rate of a leaky integrate-and-fire neuron for "
                                "several input currents and refractory periods") as env:
        traj = env.trajectory
        tutorial.add_parameters(traj)
        traj.add_config("plot.trace_ms", 100.0, comment="how much of a trace to plot")
        traj.add_derived_parameter("simulation.steps", 10000, comment="duration / dt")
        tutorial.add_exploration(traj)
        env.add_postprocessing(tutorial.neuron_postproc)
        try:
            env.run(run)
        except ex.RunsFailedError as error:  # so postprocessing is left to us
            print(f"as intended: {str(error)[:60]}...")
            frame = traj.to_frame()
            done = frame[frame.status == "completed"]
            tutorial.neuron_postproc(traj, list(zip(done.index, done.return_value)))
    return ex.load_trajectory(filename)


def main() -> None:
    browser = shutil.which("chromium")
    if browser is None:
        sys.exit("chromium is not installed: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as tmp:
        traj = build(str(pathlib.Path(tmp) / "FiringRate.h5"))
        page = pathlib.Path(tmp) / "trajectory.html"
        page.write_text(PAGE.format(body=trajectory_html(traj)), encoding="utf-8")
        traj.close()
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", f"--screenshot={PNG}", "--window-size=1000,800",
                        page.as_uri()], check=True, capture_output=True)
    print(f"wrote {PNG} ({PNG.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
