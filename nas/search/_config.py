"""The search configuration: one validated object that says what a study searches, how and where it writes.

A config is a YAML file (``nas search CONFIG.yaml``) or the built-in default (``nas search`` alone, see
:func:`default_search_config`): every field has a sensible default, unknown fields are refused, and each problem is
reported as one :class:`~nas.errors.SearchError` line naming the file, the field and the value.

Addresses (Optuna storage URL, MLflow tracking URI, Ray address) live here and are passed explicitly to the
libraries that use them; nothing is set process-wide.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from nas._validation import Strict, describe_errors
from nas._yaml import read_yaml_mapping
from nas.errors import SearchError

__all__ = [
    "SearchConfig",
    "DataConfig",
    "ProxyConfig",
    "ExportConfig",
    "LatencyConfig",
    "MeasureConfig",
    "SamplerConfig",
    "PrunerConfig",
    "ResourcesConfig",
    "load_search_config",
    "default_search_config",
]

DB_FILE = "optuna.db"
"""A study's default Optuna storage, in its folder."""
TRACKING_FILE = "mlflow.db"
"""The default MLflow store, beside the studies' folders."""


class DataConfig(Strict):
    """Training and validation images: ``embedded`` (scikit-image's photographs), a DIV2K root or any folder."""

    train: str = "embedded"
    valid: str | None = Field(None, description="default: DIV2K's valid split, or the held-out embedded photographs")
    limit: int | None = Field(None, ge=1, description="use the first N training images")
    valid_limit: int | None = Field(None, ge=1, description="use the first N validation images")
    cache: str | None = Field(None, description="folder for decoded images shared by the trials")


class ProxyConfig(Strict):
    """The short proxy training of every trial (one stage of a smooth L1 loss, Adam with cosine decay)."""

    steps: int = Field(300, ge=1)
    loss: Literal["charbonnier", "l1", "l2"] = Field(
        "charbonnier", description="charbonnier: L1 with a quadratic centre of 1 pixel (what lets every net learn)")
    batch_size: int = Field(16, ge=1)
    patch_size: int = Field(48, ge=8)
    lr: float = Field(1e-3, gt=0.0, le=1.0)
    eval_every: int | None = Field(None, ge=1, description="steps between intermediate validation PSNR reports "
                                                           "(default: a quarter of the steps)")

    @property
    def report_every(self) -> int:
        return self.eval_every or max(1, self.steps // 4)


class ExportConfig(Strict):
    """The INT8 model every trial exports: its fixed input size and the NPU profile it is checked against."""

    input_size: tuple[int, int] | None = Field(None, description="default: the latency model's input size")
    target: str = Field("vs680", description="NPU profile: a packaged name or a profile file")
    timeout_s: float = Field(900.0, gt=0.0, description="a conversion that takes longer fails its trial")

    @field_validator("input_size", mode="before")
    @classmethod
    def _hw(cls, v):
        if isinstance(v, str):
            m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", v)
            if not m:
                raise ValueError(f"'{v}' is not HEIGHTxWIDTH (e.g. 360x640)")
            return int(m.group(1)), int(m.group(2))
        return v

    @field_validator("input_size")
    @classmethod
    def _positive(cls, v):
        if v is not None and (v[0] < 8 or v[1] < 8):
            raise ValueError(f"input size {v[0]}x{v[1]} is smaller than 8x8")
        return v


class MeasureConfig(Strict):
    """The closed loop's measurements (``latency.board`` set): how each INT8 model is timed and how many are."""

    threads: int = Field(1, ge=1, description="threads the board runs a model on")
    runs: int = Field(20, ge=1, description="timed runs per model (their median is the measurement)")
    warmup: int = Field(3, ge=0)
    every: int = Field(1, ge=1, description="completed trials between two measuring rounds (the study's end "
                                            "always has one)")
    uncertain: int = Field(1, ge=0, description="per round, also measure this many of the trials the model is "
                                                "least sure of (extrapolated, or farthest from what was measured)")
    serial: str | None = Field(None, description="adb board: the device's serial (default: the only one attached)")
    delegate: str = Field("nnapi", description="adb board: the delegate benchmark_model uses")
    resource: str | None = Field(None, description="a Ray resource that only the node holding the board has (e.g. "
                                 "board:pixel7): models are measured there, one at a time. Needs Ray (workers > 1 "
                                 "or ray_address); a local Ray started for the study gets one unit of it")


_LOOP_BOARDS = ("litert-cpu", "litert-builtin", "adb")


class LatencyConfig(Strict):
    """How a trial's latency is predicted and how the search treats the model's uncertainty.

    The objective uses the pessimistic latency ``mean + k * stddev`` (the stddev grows for specs outside the range
    the model was fitted on, so the search cannot profit from the model's blind spots); every such trial is
    flagged (``outside_range``). ``outside_range: constrain`` also makes it infeasible for the sampler.
    ``budget_ms`` is a constraint on the pessimistic latency.
    """

    model: str = "vs680"
    k: float = Field(1.0, ge=0.0, le=10.0)
    budget_ms: float | None = Field(None, gt=0.0)
    outside_range: Literal["flag", "constrain"] = "flag"
    board: str | None = Field(None, description="closed loop: a board to measure on while the study runs (" +
                              ", ".join(_LOOP_BOARDS) + "); the front and the least certain trials are measured, "
                              "the model is refitted (``model`` as its prior) and every trial is re-scored")
    measure: MeasureConfig = MeasureConfig()

    @field_validator("board")
    @classmethod
    def _board(cls, v: str | None) -> str | None:
        if v is not None and v not in _LOOP_BOARDS:
            hint = (" (a measurements file holds models timed before; it cannot time the study's new ones)"
                    if Path(v).suffix.lower() in (".csv", ".yaml", ".yml") else "")
            raise ValueError(f"'{v}' is not a board the closed loop can measure on ({', '.join(_LOOP_BOARDS)})"
                             + hint)
        return v


class SamplerConfig(Strict):
    """Which registered sampler proposes specs (``nas samplers`` lists them; see :mod:`nas.search.samplers`)."""

    name: str = "tpe"
    n_startup_trials: int = Field(4, ge=0, description="trials (warm start included) before TPE or the GP models "
                                                       "the results")
    population_size: int = Field(16, ge=2, description="NSGA-II's and evolution's population")
    constant_liar: bool = Field(True, description="TPE: count running trials as bad ones, so that parallel workers "
                                                  "are not sent to the same place")

    @field_validator("name")
    @classmethod
    def _registered(cls, v: str) -> str:
        from nas.search.samplers import SAMPLERS  # (the registry imports no Optuna)

        if v not in SAMPLERS:
            raise ValueError(f"'{v}' is not a registered sampler ({', '.join(sorted(SAMPLERS))})")
        return v


class PrunerConfig(Strict):
    """Stop hopeless trials early, on their intermediate log2 score.

    ``median``: a trial whose intermediate value is below the median of earlier trials at the same step stops
    (for the scalar objective Optuna's :class:`~optuna.pruners.MedianPruner`; for the Pareto objective the median of
    the earlier trials that are predicted at most as slow, so a slow trial is stopped only when faster ones
    already did better).
    """

    name: Literal["median", "none"] = "median"
    n_startup_trials: int = Field(4, ge=0)
    n_warmup_steps: int = Field(0, ge=0)


class ResourcesConfig(Strict):
    """What one trial gets: Ray resources and TensorFlow threads (Ray sets ``OMP_NUM_THREADS=1`` in workers)."""

    cpus: float = Field(1.0, gt=0.0)
    gpus: float = Field(0.0, ge=0.0)
    threads: int | None = Field(None, ge=1, description="TensorFlow intra-op threads (default: the trial's cpus on "
                                                        "Ray, every core for a trial run in the driver's process)")

    @property
    def tf_threads(self) -> int:
        return self.threads or max(1, int(self.cpus))


class SearchConfig(Strict):
    """Everything a study needs; see the field descriptions and ``search_spaces/`` / ``latency_models/``."""

    name: str = Field("default", description="the study's name: its folder is <out>/<name>")
    space: str = "mai2022"
    objective: Literal["pareto", "score"] = Field(
        "pareto", description="pareto: INT8 PSNR up and latency down; score: the log2 challenge score up")
    n_trials: int = Field(10, ge=1, description="finished trials the study should hold")
    workers: int = Field(1, ge=1, description="trials in parallel (1: in this process unless ray_address is set)")
    seed: int = Field(0, ge=0)
    warm_start: tuple[str, ...] = Field(("abpn",), description="zoo networks (projected into the space) tried first")
    data: DataConfig = DataConfig()
    proxy: ProxyConfig = ProxyConfig()
    export: ExportConfig = ExportConfig()
    latency: LatencyConfig = LatencyConfig()
    sampler: SamplerConfig = SamplerConfig()
    pruner: PrunerConfig = PrunerConfig()
    resources: ResourcesConfig = ResourcesConfig()
    out: str = Field("runs", description="folder of the study folders")
    storage: str | None = Field(None, description="Optuna storage URL (default: sqlite:///<out>/<name>/optuna.db)")
    tracking: str | None = Field(None, description="MLflow tracking URI (default: sqlite:///<out>/mlflow.db)")
    ray_address: str | None = Field(None, description="a running Ray cluster (e.g. 127.0.0.1:6379); default: a "
                                                      "local Ray started for the study when workers > 1")
    table: str | None = Field(None, description="a benchmark table (CSV from nas table make): trials look their "
                              "results up in it instead of training; workers are then simulated (see nas.search."
                              "TableExecutor)")
    trial_retries: int = Field(1, ge=0, description="times Ray runs a task again when its worker process dies, and "
                               "times the driver runs a trial again as a new trial after a crash or a lost worker "
                               "(an infeasible or pruned trial never)")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", v):
            raise ValueError(f"'{v}' must be letters, digits, '_', '-' or '.' (and start with a letter or digit)")
        return v

    @field_validator("storage")
    @classmethod
    def _storage(cls, v: str | None) -> str | None:
        if v is not None and "://" not in v:
            raise ValueError(f"'{v}' is not a storage URL (e.g. sqlite:///runs/x/optuna.db, "
                             "journal:///runs/x/optuna.log, postgresql://user@host/db)")
        return v

    @field_validator("warm_start", mode="before")
    @classmethod
    def _warm(cls, v):
        return () if v is None else v

    @model_validator(mode="after")
    def _consistent(self) -> "SearchConfig":
        res = self.latency.measure.resource
        if res is not None and self.latency.board is not None and self.workers == 1 and not self.ray_address:
            raise ValueError(f"latency.measure.resource {res}: measuring on a Ray node needs Ray (workers > 1 or "
                             "ray_address); without it the board is measured from this process (leave resource out)")
        if self.latency.board is not None and self.table is not None:
            raise ValueError(f"latency.board {self.latency.board}: a table study (table: {self.table}) has no INT8 "
                             "models to measure")
        if self.proxy.eval_every is not None and self.proxy.eval_every > self.proxy.steps:
            raise ValueError(f"proxy.eval_every {self.proxy.eval_every} is more than proxy.steps {self.proxy.steps}")
        return self

    # ----------------------------------------------------------------------------------------------- derived
    @property
    def study_dir(self) -> Path:
        return Path(self.out) / self.name

    @property
    def storage_url(self) -> str:
        return self.addresses(self.study_dir)[0]

    @property
    def tracking_uri(self) -> str:
        return self.addresses(self.study_dir)[1]

    def addresses(self, folder: str | Path) -> tuple[str, str]:
        """The Optuna storage and MLflow store of this study when its folder is ``folder``: the config's own, or
        the defaults found from the folder (``<folder>/optuna.db``, ``<folder>/../mlflow.db``), so a moved or
        copied study keeps working on its own."""
        folder = Path(folder)
        return (self.storage or f"sqlite:///{(folder / DB_FILE).as_posix()}",
                self.tracking or f"sqlite:///{(folder.parent / TRACKING_FILE).as_posix()}")

    @property
    def identity_hash(self) -> str:
        """Digest of the fields a resumed study must keep (what the trials' values depend on)."""
        keep = identity_view(self.model_dump(mode="json"))
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:12]

    def with_overrides(self, **changes) -> "SearchConfig":
        """A copy with top-level fields replaced (``None`` values ignored), validated again."""
        data = self.model_dump()
        data.update({k: v for k, v in changes.items() if v is not None})
        return _validate(data, "search config")


#: the top-level fields a resumed study must keep (minus the keys :func:`identity_view` drops)
IDENTITY_FIELDS = ("space", "objective", "data", "proxy", "export", "latency", "seed")


def identity_view(dump: dict) -> dict:
    """The part of a config dump (``model_dump(mode="json")``) that decides the trials' values: the identity
    fields without the image cache folder and the conversion timeout."""
    keep = {k: dump.get(k) for k in IDENTITY_FIELDS}
    keep["data"] = {k: v for k, v in (keep["data"] or {}).items() if k != "cache"}
    keep["export"] = {k: v for k, v in (keep["export"] or {}).items() if k != "timeout_s"}
    lat = dict(keep.get("latency") or {})
    lat.pop("measure", None)  # how often and how many: a resumed closed loop may measure more or less (its board
    # and threads are checked against the measurements it holds)
    if lat.get("board") is None:  # no closed loop: the identity of studies made before it is kept
        lat.pop("board", None)
    keep["latency"] = lat
    if dump.get("table") is not None:  # (absent otherwise: the identity of studies made before tables is kept)
        keep["table"] = dump["table"]
    return keep


def _validate(data: dict, where: str) -> SearchConfig:
    try:
        return SearchConfig.model_validate(data)
    except ValidationError as exc:
        raise SearchError(describe_errors(exc, where)) from None


def default_search_config() -> SearchConfig:
    """The built-in study (:class:`SearchConfig`'s defaults): a 300-step proxy on the embedded photographs, VS680
    latency, Pareto objective, one worker."""
    return SearchConfig()


def load_search_config(path: str | Path | None = None, **overrides) -> SearchConfig:
    """A config from a YAML file (or the default) with top-level ``overrides`` (``None`` ignored) on top."""
    data: dict = {}
    where = "search config"
    if path is not None:
        p = Path(path)
        where = str(p)
        if not p.exists():
            raise SearchError(f"search config not found: {p}")
        data = read_yaml_mapping(p, "search config", SearchError, empty_ok=True)
    data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    return _validate(data, where)
