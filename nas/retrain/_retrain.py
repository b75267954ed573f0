"""After the search: train a chosen trial's spec through the full schedule (L1, L2, QAT), export, check, evaluate,
log it as an MLflow run linked to its trial and register the INT8 model in the MLflow model registry.

The training runs in ``<study>/retrain-NNNN-<steps>steps/`` with checkpoints: an interrupted retraining started again
resumes from its last checkpoint, and a retraining of the same trial for another number of steps (a short first
look, then the full schedule) gets its own folder instead of replacing a finished model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from optuna.trial import TrialState

from nas._logging import get_logger
from nas.errors import SearchError, faults_named
from nas.evaluate import challenge_score, log2_score
from nas.latency import load_latency_model
from nas.search import (Tracker, TrialRecord, load_optuna_study, load_study_images, open_study, spec_params,
                        trial_points)
from nas.search.pareto import best_point
from nas.space import ArchSpec
from nas.train import FLOAT_WEIGHTS, TrainConfig, train_and_export

__all__ = ["RetrainResult", "retrain"]

log = get_logger("retrain")


@dataclasses.dataclass(frozen=True)
class RetrainResult:
    study: str
    trial: int
    spec: ArchSpec
    out_dir: Path
    report: dict  # nas.train.JobReport.to_dict()
    latency_ms: float
    latency_sigma_ms: float
    score: float | None
    log2_score: float | None
    run_id: str
    model_name: str
    model_version: str

    def to_dict(self) -> dict:
        return {"study": self.study, "trial": self.trial, "spec": self.spec.to_dict(), "hash": self.spec.hash,
                "out_dir": str(self.out_dir), "latency_ms": self.latency_ms, "latency_sigma_ms": self.latency_sigma_ms,
                "score": self.score, "log2_score": self.log2_score, "run_id": self.run_id,
                "model_name": self.model_name, "model_version": self.model_version,
                "int8": self.report.get("int8"), "fp32": self.report.get("fp32"),
                "bicubic": self.report.get("bicubic"), "check_passed": self.report.get("check_passed"),
                "tflite": self.report.get("tflite")}


def _choose(info, study, trial: int | None, best: bool) -> int:
    if (trial is None) == (not best):
        raise SearchError("choose one trial: --trial N or --best")
    if best:
        chosen = best_point(trial_points(study, info.folder))
        if chosen is None:
            raise SearchError(f"study '{info.name}' has no completed feasible trial yet")
        return chosen.number
    numbers = {t.number: t for t in study.get_trials(deepcopy=False)}
    if trial not in numbers:
        raise SearchError(f"study '{info.name}' has no trial {trial} (trials 0..{max(numbers, default=-1)})")
    if numbers[trial].state != TrialState.COMPLETE:
        raise SearchError(f"trial {trial} of study '{info.name}' did not complete "
                          f"({numbers[trial].state.name.lower()}): choose a completed one")
    return trial


def retrain(study: str | Path, *, trial: int | None = None, best: bool = False, steps: int = 20000,
            out: str | Path = "runs", callback: Callable | None = None,
            phase: Callable[[str], None] | None = None) -> RetrainResult:
    """Retrain trial ``trial`` (or the best trial) of ``study`` with :meth:`TrainConfig.full` for ``steps``."""
    info = open_study(study, out)
    st = load_optuna_study(info)
    number = _choose(info, st, trial, best)
    spec_file = info.trial_dir(number) / "spec.json"
    if not spec_file.exists():
        raise SearchError(f"{spec_file} is missing: the study folder is incomplete")
    spec = ArchSpec.from_json(spec_file.read_text(encoding="utf-8"))
    c = info.config
    latency = load_latency_model(c.latency.model)
    input_hw = tuple(c.export.input_size or latency.input_hw)
    tcfg = TrainConfig.full(steps=steps, seed=c.seed, threads=c.resources.threads,
                            checkpoint_every=min(500, max(1, steps // 10)))
    images, valid = load_study_images(c)
    out_dir = info.folder / f"retrain-{number:04d}-{steps}steps"
    tracker = Tracker(info.tracking, info.experiment)
    log.info("retraining trial %d (%s) for %d steps in %s", number, spec.describe(), steps, out_dir)
    with faults_named(f"the retraining folder {out_dir}"):  # (a full disk: one line; the same command resumes)
        job = train_and_export(spec, images, valid, tcfg, out_dir, input_hw=input_hw, target=c.export.target,
                               callback=callback, phase=phase)
    report = job.to_dict()
    pred = latency.predict(spec)
    int8 = report["int8"]["psnr_rgb"] if report.get("int8") else None
    score = challenge_score(int8, pred.mean_ms) if int8 is not None else None
    l2 = log2_score(int8, pred.mean_ms) if int8 is not None else None
    trial_run = TrialRecord.from_attrs(st.trials[number].user_attrs).mlflow_run_id
    run = tracker.client.create_run(tracker.experiment_id, run_name=f"retrain-trial-{number:04d}", tags={
        "nas.study": info.name, "nas.kind": "retrain", "nas.trial": str(number), "nas.retrain_of": trial_run,
        "nas.spec_hash": spec.hash,
        "mlflow.note.content": f"Full retraining (L1, L2, QAT; {steps} steps) of trial {number} "
                               f"(MLflow run {trial_run}) of study {info.name}: {spec.describe()}"})
    rid = run.info.run_id

    tracker.log_params(rid, {**spec_params(spec), "steps": steps, "schedule": "full (l1, l2, qat)",
                             "ema": tcfg.ema, "config_hash": tcfg.hash,
                             **({"int8_form": report["int8_form"]} if "int8_form" in report else {})})
    metrics = {"latency_ms": pred.mean_ms, "latency_sigma_ms": pred.stddev_ms, "score": score, "log2_score": l2,
               "train_seconds": job.seconds.get("train"), "export_seconds": job.seconds.get("export"),
               "evaluate_seconds": job.seconds.get("evaluate")}
    for form, psnr in (report.get("int8_selection_psnr") or {}).items():  # (QAT's weights vs the float model's PTQ)
        metrics[f"int8_select_psnr_{form}"] = psnr
    for form in ("fp32", "int8", "bicubic"):
        ev = report.get(form) or {}
        for key in ("psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y"):
            if ev.get(key) is not None:
                metrics[f"{form}_{key}"] = ev[key]
    tracker.log_metrics(rid, metrics)
    files = [out_dir / n for n in ("model_int8.tflite", "spec.json", "weights.npz", FLOAT_WEIGHTS, "report.json")
             if (out_dir / n).exists()]
    tracker.log_files(rid, files, "model")
    tracker.set_tags(rid, {"nas.check_passed": str(job.check_passed).lower()})
    tracker.end(rid, "complete")
    if trial_run:
        tracker.set_tags(trial_run, {"nas.retrained_run": rid})
    name = f"nas-{info.name}"
    version = _register(tracker, name, rid, spec, number, info.name)
    return RetrainResult(info.name, number, spec, out_dir, report, pred.mean_ms, pred.stddev_ms, score, l2, rid,
                         name, version)


def _register(tracker, name: str, run_id: str, spec: ArchSpec, trial: int, study: str) -> str:
    """Register the run's ``model/`` artifacts as a new version of the registered model ``name``."""
    client = tracker.client
    try:
        if client.get_registered_model(name) is None:
            raise LookupError(name)
    except Exception:
        client.create_registered_model(name, description=f"INT8 x{spec.scale} SR models found by npu-nas study "
                                                          f"'{study}' (full-integer TFLite, uint8 pixels in/out)")
    source = f"{tracker.artifact_uri(run_id)}/model"
    mv = client.create_model_version(name, source=source, run_id=run_id, tags={
        "nas.trial": str(trial), "nas.spec_hash": spec.hash, "format": "tflite-int8"},
        description=spec.describe())
    return str(mv.version)
