"""Shared fixtures: paths to ../shared (tests skip with a reason where it is absent); small real studies
(20-step proxies, INT8 models at 48x64, one validation photograph)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # test process only: quiet TensorFlow's C++ logging

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (tests that need ../shared skip on machines without it)")
    return path


@pytest.fixture(scope="session")
def published_rows() -> list[dict]:
    import yaml

    data = yaml.safe_load(shared_path("latency", "vs680-published.yaml").read_text())
    return data["entries"]


def retraining_at(folder: Path, steps: int, at_step: int, timeout_s: float = 300.0):
    """``nas retrain FOLDER --trial 0 --steps STEPS --json`` started, returned (process, command) once its checkpoint
    progress says it has reached ``at_step`` (a test then kills it, or fills its disk)."""
    import json
    import subprocess
    import sys
    import time

    progress = folder / f"retrain-0000-{steps}steps" / "checkpoints" / "progress.json"
    cmd = [sys.executable, "-m", "nas", "retrain", str(folder), "--trial", "0", "--steps", str(steps), "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout_s
    while not progress.exists() or json.loads(progress.read_text())["step"] < at_step:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    return proc, cmd


SMALL = """\
name: {name}
n_trials: {n}
workers: {workers}
warm_start: [abpn]
sampler: {{name: random}}
proxy: {{steps: 20, eval_every: 10, batch_size: 4, patch_size: 24}}
export: {{input_size: 48x64}}
data: {{limit: 3, valid_limit: 1, cache: {cache}}}
out: {out}
"""


@pytest.fixture(scope="session")
def image_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("images")


@pytest.fixture
def small_config(tmp_path, image_cache):
    def make(name: str = "s", n: int = 3, workers: int = 1, extra: str = "") -> Path:
        f = tmp_path / f"{name}.yaml"
        f.write_text(SMALL.format(name=name, n=n, workers=workers, cache=image_cache, out=tmp_path / "runs")
                     + textwrap.dedent(extra))
        return f

    return make


@pytest.fixture(scope="session")
def study(tmp_path_factory, image_cache):
    """One finished 3-trial study (config file, summary, events) shared by the search tests: each trial trains,
    converts and evaluates for real (trained once per test session). Tests may add trials to it, never remove any."""
    from nas.search import load_search_config, run_search

    tmp = tmp_path_factory.mktemp("study")
    f = tmp / "s.yaml"
    f.write_text(SMALL.format(name="s", n=3, workers=1, cache=image_cache, out=tmp / "runs"))
    events = []
    summary = run_search(load_search_config(f), callback=events.append)
    return f, summary, events


def tflite_kernels(path) -> dict:
    """The int8 kernels of an INT8 TFLite model by conv name (TFLite's O x H x W x I layout)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    return {d["name"].split("/")[-2]: it.get_tensor(d["index"]) for d in it.get_tensor_details()
            if d["dtype"] == np.int8 and len(d["shape"]) == 4 and d["shape"][0] != 1}
