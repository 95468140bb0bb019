"""videotag as a user installs it: a wheel built from the sources, installed into a fresh
venv, run from a folder outside the checkout (the `videotag` command, `python -m
videotag`, and one epoch of the demo training, its demo data in the user cache).

The fresh venv gets videotag from the wheel alone. Its dependencies (TensorFlow and
the rest) are not downloaded again: by default the venv sees this environment's
installed packages through a `.pth` file naming a folder of links to them, videotag's
own files left out, and pip installs the wheel with `--no-index`, so the wheel's
declared dependencies must be satisfied by what is installed and nothing comes from
the network. VIDEOTAG_TEST_FULL_INSTALL=1 installs the wheel with its dependencies
from the package index (or pip's cache) instead: a real install, a few minutes longer.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO
from videotag.cli.main import COMMANDS

FULL_INSTALL = os.environ.get("VIDEOTAG_TEST_FULL_INSTALL") == "1"
TINY = ["model.cluster_size=8", "model.groups=4", "model.hidden_size=32",
        "eval.batch_size=500"]


def _run(args, cwd, env=None, timeout=900):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args[:3]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc


def _base_packages(folder: Path) -> Path:
    """A folder of links to this environment's installed packages, videotag's own
    files (its editable install, its metadata) left out."""
    folder.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if "videotag" in entry.name.lower() or entry.suffix == ".pth":
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv folder, run environment, a working folder outside the checkout, tmp root)."""
    root = tmp_path_factory.mktemp("install")
    # the sources a release is built from: nothing generated (no demo data, no venv)
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "videotag", src / "videotag",
                    ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", root / "dist", src], cwd=root)
    (wheel,) = (root / "dist").glob("videotag-*.whl")

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", *([] if FULL_INSTALL else ["--without-pip"]), venv],
         cwd=root)
    python = venv / "bin" / "python"
    if FULL_INSTALL:
        _run([python, "-m", "pip", "install", "-q", wheel], cwd=root, timeout=1800)
    else:
        site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                          "['purelib'])"], cwd=root).stdout.strip())
        base = _base_packages(root / "base")
        (site / "base_packages.pth").write_text(f"{base}\n")
        _run([*pip, "--python", python, "install", "--no-index", "-q", wheel], cwd=root)

    outside = root / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIDEOTAG_DEMO_DIR", "VIRTUAL_ENV")}
    env.update(XDG_CACHE_HOME=str(root / "cache"), TF_CPP_MIN_LOG_LEVEL="3",
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return venv, env, outside, root, wheel


def test_the_wheel_holds_the_package_data_and_the_console_script(installed):
    venv, env, outside, _, wheel = installed
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = zf.read(entry_points).decode()
    assert {"videotag/configs/nextvlad_demo.yaml", "videotag/configs/nextvlad.yaml",
            "videotag/data/demo_vocabulary.csv", "videotag/cli/main.py",
            "videotag/__main__.py"} <= names
    assert not any(n.startswith(("tests/", "tools/", "benchmarks/")) for n in names)
    assert re.search(r"^videotag = videotag\.cli\.main:main$", scripts, re.MULTILINE)
    # videotag is imported from the wheel's files in the venv, not from the checkout
    origin = _run([venv / "bin" / "python", "-c", "import importlib.util; "
                   "print(importlib.util.find_spec('videotag').origin)"], outside, env)
    assert Path(origin.stdout.strip()).is_relative_to(venv)


def test_the_videotag_command_and_python_m_videotag_list_the_commands(installed):
    venv, env, outside, _, _ = installed
    for args, prog in (([venv / "bin" / "videotag", "--help"], "videotag"),
                       ([venv / "bin" / "python", "-m", "videotag", "--help"],
                        "python -m videotag")):
        out = _run(args, outside, env).stdout
        assert out.startswith(f"usage: {prog} <command> [flags]")
        listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
        assert listed == list(COMMANDS)


def test_demo_training_from_outside_the_checkout_puts_the_demo_data_in_the_cache(installed):
    venv, env, outside, root, _ = installed
    proc = _run([venv / "bin" / "videotag", "train", "--model_name=NEXTVLAD",
                 "--config=nextvlad_demo", "--override", "train.epochs=1",
                 "--model_dir=runs/demo", *[f"--override={o}" for o in TINY]], outside, env)
    cache = root / "cache" / "videotag" / "demo"
    assert (f"using the demo data: 4000 training and 1000 validation videos, 40 classes "
            f"({cache})") in proc.stderr
    summary = re.search(r"^trained NEXTVLAD: 1 epochs, \d+ steps, [\d.]+ s; validation "
                        r"GAP@20 (0\.\d{4}) \(untrained (0\.\d{4})\); model in runs/demo$",
                        proc.stderr, re.MULTILINE)
    assert summary, proc.stderr[-2000:]
    assert float(summary.group(1)) > float(summary.group(2))  # one epoch learns something
    assert sorted(p.name for p in cache.iterdir()) == [
        "demo.json", "segment_label_ids.csv", *[f"train{i:04d}.tfrecord" for i in range(4)],
        "validate0000.tfrecord",
        "validate0001.tfrecord", "validate0002.tfrecord", "validate0003.tfrecord",
        "vocabulary.csv"]
    assert (outside / "runs" / "demo" / "model.keras").is_file()
    assert sorted(p.name for p in outside.iterdir()) == ["runs"]  # no data/ beside the run
