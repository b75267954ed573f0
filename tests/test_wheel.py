"""The package as a user installs it: a wheel built from this tree, installed into an empty folder, run from another
directory. The built-in search space and latency model must come with it (they were read from the source tree's
top-level folders, which a wheel does not contain: "space file not found: mai2022")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".venv", ".git", "runs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    pytest.importorskip("setuptools", reason="building the wheel needs setuptools (the test extra installs it)")
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=SKIP)  # build outside the working tree
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                            str(work / "dist"), str(src)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (work / "dist").glob("npu_nas-*.whl")
    target = work / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr[-3000:]
    return target


@pytest.mark.parametrize("args, expect", [
    (("space", "show", "mai2022"), "search space 'mai2022'"),
    (("latency", "predict", "vs680", "zoo:abpn"), "on vs680"),
    (("search", "--show-config"), "space: mai2022"),
    (("samplers",), "balanced   space-filling"),
], ids=["space", "latency", "show-config", "samplers"])
def test_the_installed_wheel_finds_its_built_in_files_from_any_directory(installed, tmp_path, args, expect):
    # the wheel's package first on the path: the source tree (an editable install's) is not what runs
    code = ("import sys, nas; assert nas.__file__.startswith(sys.argv[1]), nas.__file__; "
            "from nas.cli import main; sys.argv = ['nas'] + sys.argv[2:]; sys.exit(main())")
    env = {**os.environ, "PYTHONPATH": str(installed)}
    proc = subprocess.run([sys.executable, "-c", code, str(installed), *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert expect in proc.stdout, proc.stdout[-2000:]
