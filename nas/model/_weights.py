"""Weights by layer name, stored as ``.npz`` (numpy only: no TensorFlow, no pickling)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from nas._files import atomic_write

from nas.errors import NasError

__all__ = ["Weights", "save_weights", "load_weights"]

Weights = dict[str, list[np.ndarray]]


def save_weights(weights: Mapping[str, list[np.ndarray]], path: str | Path) -> Path:
    """Write weights as an ``.npz`` of ``"<layer>/<index>"`` arrays (no pickling)."""
    path = Path(path)
    flat = {f"{name}/{i}": np.asarray(a) for name, arrays in weights.items() for i, a in enumerate(arrays)}
    with atomic_write(path) as fh:
        np.savez(fh, **flat)
    return path


def load_weights(path: str | Path) -> Weights:
    """Read weights written by :func:`save_weights`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            flat = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise NasError(f"weights file not found: {path}") from None
    except (ValueError, OSError) as exc:
        raise NasError(f"{path}: not a weights file written by nas ({exc})") from None
    out: Weights = {}
    for key in sorted(flat, key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1]) if "/" in k else 0)):
        if "/" not in key:
            raise NasError(f"{path}: unexpected entry '{key}' (not '<layer>/<index>')")
        name, _ = key.rsplit("/", 1)
        out.setdefault(name, []).append(flat[key])
    return out
