"""Small real studies: 20-step proxies, INT8 models at 48x64, one validation photograph."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

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
