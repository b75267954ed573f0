"""``nas doctor``: is this environment ready for a search? Each check says what it found and, when it is not
fine, what to do."""

from __future__ import annotations

import dataclasses
import importlib
import os
from importlib import metadata
from pathlib import Path
from typing import Callable, Literal

from nas._builtin import builtin_dir
from nas.data import describe_source, embedded_images, list_images
from nas.data import div2k_dirs
from nas.latency import load_latency_model
from nas.space import DEFAULT_INPUT_HW

__all__ = ["Check", "run_checks"]

Status = Literal["ok", "warn", "fail"]

#: the versions this release is tested with: (package, import name, lowest, below)
VERSIONS = (
    ("tensorflow", "tensorflow", "2.18", "2.22"),
    ("tf-keras", "tf_keras", "2.18", "2.22"),
    ("ai-edge-litert", "ai_edge_litert", "1.2", "3"),
    ("optuna", "optuna", "4.2", "6"),
    ("ray", "ray", "2.40", "3"),
    ("mlflow", "mlflow", "2.20", "4"),
    ("numpy", "numpy", "1.26", "3"),
    ("pandas", "pandas", "2.2", "4"),
)


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    status: Status
    found: str
    fix: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _v(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _packages() -> list[Check]:
    out = []
    for dist, module, low, high in VERSIONS:
        have = _version(dist)
        if have is None:
            out.append(Check(dist, "fail", "not installed", f'pip install -e . (needs {dist}>={low},<{high})'))
            continue
        if not (_v(low) <= _v(have) < _v(high)):
            out.append(Check(dist, "warn", have, f"tested with {low} <= {dist} < {high}"))
            continue
        out.append(Check(dist, "ok", have))
    return out


def _litert() -> Check:
    try:
        importlib.import_module("ai_edge_litert.interpreter")
    except Exception as exc:  # an import that fails for any reason is the finding
        return Check("LiteRT interpreter", "fail", f"cannot import ({exc})", "pip install ai-edge-litert")
    return Check("LiteRT interpreter", "ok", "ai_edge_litert.interpreter imports")


def _threads() -> Check:
    cores = os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS")
    if omp == "1" and cores > 1:
        return Check("threads", "warn", f"{cores} cores, OMP_NUM_THREADS=1",
                     "unset OMP_NUM_THREADS outside Ray (trials set TensorFlow's threads themselves)")
    return Check("threads", "ok", f"{cores} cores" + (f", OMP_NUM_THREADS={omp}" if omp else ""))


def _embedded() -> Check:
    try:
        names = [n for n, _ in embedded_images()]
    except Exception as exc:
        return Check("embedded photographs", "fail", str(exc).splitlines()[0],
                     "pip install scikit-image (its photographs are the default data)")
    return Check("embedded photographs", "ok", f"{len(names)} scikit-image photographs")


def _data(path: str | None) -> Check | None:
    if path is None:
        return None

    p = Path(path)
    try:
        dirs = div2k_dirs(p, "train", 3) if p.is_dir() else None
        n = len(list_images(dirs[0] if dirs else p))
        src = describe_source(p)
    except Exception as exc:
        return Check(f"data {path}", "fail", str(exc).splitlines()[0], "give a DIV2K root or a folder of images")
    return Check(f"data {path}", "ok", f"{src} ({n} images)")


def _latency_models() -> list[Check]:
    root = builtin_dir("latency_models")
    files = sorted(root.glob("*.json")) + sorted((Path.cwd() / "latency_models").glob("*.json"))
    seen, out = set(), []
    for f in files:
        if f.resolve() in seen:
            continue
        seen.add(f.resolve())
        try:
            m = load_latency_model(f)
        except Exception as exc:
            out.append(Check(f"latency model {f.name}", "fail", str(exc).splitlines()[0],
                             "refit it (nas latency calibrate / fit-published) or remove it"))
            continue
        size = f"{m.input_hw[0]}x{m.input_hw[1]}"
        if tuple(m.input_hw) != tuple(DEFAULT_INPUT_HW):
            out.append(Check(f"latency model {f.name}", "warn", f"{m.board} at {size}",
                             f"searches exporting at {DEFAULT_INPUT_HW[0]}x{DEFAULT_INPUT_HW[1]} need a model "
                             "calibrated at that size"))
        else:
            out.append(Check(f"latency model {f.name}", "ok", f"{m.board} at {size}, {m.meta.get('n', '?')} "
                                                                 "measurements"))
    if not out:
        out.append(Check("latency models", "fail", f"none in {root}", "reinstall npu-nas (vs680.json ships with it)"))
    return out


def _writable(out: str) -> Check:
    p = Path(out)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / ".nas-doctor"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Check(f"study folder {out}", "fail", str(exc), "run from a folder you can write, or pass --out")
    return Check(f"study folder {out}", "ok", f"writable ({p.resolve()})")


def _ray_auth() -> Check:
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode == "disabled":
        return Check("Ray authentication", "warn", "RAY_AUTH_MODE=disabled",
                     "unset it: without a token anyone who reaches the cluster's ports can run code on it")
    token = Path.home() / ".ray" / "auth_token"
    return Check("Ray authentication", "ok", f"RAY_AUTH_MODE={mode or 'default'}"
                 + (", token in ~/.ray/auth_token" if token.exists() else ""))


def run_checks(data: str | None = None, out: str = "runs") -> list[Check]:
    """Every check, in order (none of them trains or downloads anything)."""
    checks: list[Check] = []
    steps: list[Callable[[], object]] = [
        _packages, _litert, _threads, _embedded, lambda: _data(data), _latency_models, lambda: _writable(out),
        _ray_auth]
    for step in steps:
        got = step()
        if got is None:
            continue
        checks.extend(got if isinstance(got, list) else [got])
    return checks

