"""Training configuration: one validated object drives the search's short proxy and the full training.

A training is a sequence of stages sharing the step budget (report section 4: L1, then L2 fine-tuning, then
quantization-aware training). Each stage has its own loss, Adam learning rate with cosine decay (optionally after a
linear warm-up) and restarts the optimizer. Stages up to the first QAT stage train the training form (multi-branch
blocks); QAT stages train the fused deploy form with fake quantization.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nas.errors import TrainError

__all__ = ["Stage", "TrainConfig", "load_train_config", "DEFAULT_PROXY_STEPS", "CHARBONNIER_EPS"]

DEFAULT_PROXY_STEPS = 1000


Loss = Literal["charbonnier", "l1", "l2"]

CHARBONNIER_EPS = 1.0
"""Charbonnier's epsilon in pixels: the loss is sqrt(d^2 + eps^2) - eps, L1 for errors of several pixels and
quadratic below one. Exact L1's gradient is a full +-1 however small the error; where the target residual is
exactly 0 (28% of the embedded photographs' pixels) it keeps pulling a young residual back to zero."""


class Stage(BaseModel):
    """One training stage: ``share`` of the steps, ``loss`` (charbonnier, l1 or l2), Adam from ``lr`` to
    ``lr_end`` (cosine)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    loss: Loss = "l1"
    share: float = Field(1.0, gt=0.0, le=1.0)
    lr: float = Field(1e-3, gt=0.0, le=1.0)
    lr_end: float | None = Field(None, ge=0.0)
    warmup: float = Field(0.0, ge=0.0, lt=1.0, description="share of the stage's steps spent warming up linearly")
    qat: bool = False

    @model_validator(mode="after")
    def _check(self) -> "Stage":
        if self.lr_end is not None and self.lr_end > self.lr:
            raise ValueError(f"lr_end {self.lr_end:g} is above lr {self.lr:g}")
        return self

    @property
    def label(self) -> str:
        return self.name or ("qat" if self.qat else self.loss)

    @property
    def final_lr(self) -> float:
        return self.lr * 0.01 if self.lr_end is None else self.lr_end


class TrainConfig(BaseModel):
    """Everything that decides a training run. Two runs with equal configs (and spec and data) are identical."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: int = Field(DEFAULT_PROXY_STEPS, ge=1, description="total optimizer steps over all stages")
    batch_size: int = Field(16, ge=1)
    patch_size: int = Field(48, ge=4, description="LR patch side in pixels (the HR patch is scale times larger)")
    stages: tuple[Stage, ...] = (Stage(),)
    ema: float | None = Field(None, gt=0.0, lt=1.0, description="decay of an exponential moving average of weights")
    augment: bool = True
    seed: int = Field(0, ge=0)
    checkpoint_every: int = Field(0, ge=0, description="steps between checkpoints (0: only at stage ends)")
    eval_every: int = Field(0, ge=0, description="steps between validation PSNR reports (0: never)")
    threads: int | None = Field(None, ge=1, description="TensorFlow intra-op threads (None: TensorFlow's default)")

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        if not self.stages:
            raise ValueError("at least one stage is needed")
        total = sum(s.share for s in self.stages)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"stage shares add up to {total:g}, not 1")
        seen_qat = False
        for s in self.stages:
            if seen_qat and not s.qat:
                raise ValueError("a float stage cannot follow a QAT stage (QAT trains the fused, quantized form)")
            seen_qat = seen_qat or s.qat
        steps = self.stage_steps()
        if min(steps) < 1:
            raise ValueError(f"{self.steps} steps are too few for {len(self.stages)} stages ({steps})")
        return self

    def stage_steps(self) -> list[int]:
        """Steps of each stage (rounded; the last stage takes the remainder)."""
        out = [int(round(self.steps * s.share)) for s in self.stages[:-1]]
        return out + [self.steps - sum(out)]

    @property
    def has_qat(self) -> bool:
        return any(s.qat for s in self.stages)

    @property
    def hash(self) -> str:
        """Stable digest of everything that changes the trained weights (not checkpoint or report cadence)."""
        keep = self.model_dump(mode="json", exclude={"checkpoint_every", "eval_every", "threads"})
        keep["train_form"] = 3  # (the spec's own version, nas.model.train_form, is checked beside it)
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def proxy(cls, steps: int = DEFAULT_PROXY_STEPS, **kw) -> "TrainConfig":
        """The search's short proxy: one Charbonnier stage, Adam 1e-3 with cosine decay after a short warm-up."""
        return cls(steps=steps, stages=(Stage(name="charbonnier", loss="charbonnier", lr=1e-3, lr_end=1e-5,
                                              warmup=0.02),), **kw)

    @classmethod
    def full(cls, steps: int = 20000, **kw) -> "TrainConfig":
        """The full schedule: Charbonnier (smooth L1, 80%), L2 fine-tuning (10%), QAT on the fused form (10%),
        EMA of weights."""
        kw.setdefault("ema", 0.999)
        kw.setdefault("checkpoint_every", 500)
        return cls(steps=steps, stages=(
            Stage(name="charbonnier", loss="charbonnier", share=0.8, lr=1e-3, lr_end=1e-5, warmup=0.01),
            Stage(name="l2", loss="l2", share=0.1, lr=1e-4, lr_end=1e-6),
            Stage(name="qat", loss="l1", share=0.1, lr=2e-5, lr_end=1e-7, qat=True),
        ), **kw)


def _one_line(exc: ValidationError, where: str) -> str:
    errs = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "config"
        errs.append(f"{loc}: {e['msg']}" + (f" (got {e['input']!r})" if "input" in e and not isinstance(e["input"], dict) else ""))
    return f"{where}: " + "; ".join(errs)


def load_train_config(path: str | Path | None = None, **overrides) -> TrainConfig:
    """A config from a YAML/JSON file (``preset: proxy|full`` plus fields) with ``overrides`` applied on top."""
    data: dict = {}
    where = "training config"
    if path is not None:
        where = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise TrainError(f"training config not found: {path}") from None
        except yaml.YAMLError as exc:
            raise TrainError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise TrainError(f"{path}: expected a mapping of fields, got {type(data).__name__}")
    data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    preset = data.pop("preset", "proxy")
    if preset not in ("proxy", "full"):
        raise TrainError(f"{where}: preset must be 'proxy' or 'full', got {preset!r}")
    try:
        base = (TrainConfig.proxy() if preset == "proxy" else TrainConfig.full()).model_dump()
        return TrainConfig.model_validate({**base, **data})
    except ValidationError as exc:
        raise TrainError(_one_line(exc, where)) from None
