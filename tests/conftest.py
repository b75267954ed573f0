"""Shared fixtures: paths to ../shared (tests skip with a reason where it is absent)."""

from __future__ import annotations

import os
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
