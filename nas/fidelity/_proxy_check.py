"""Proxy fidelity: does a study's short proxy rank networks the way a longer training ranks them?

:func:`proxy_check` trains ``n`` specs of the study's space, spread over its predicted latency range, with each
candidate proxy length and with one long schedule, as trials of the study's own kind (same data, export, INT8
evaluation; on the study's executor, so on Ray when the config says so). It reports Kendall's tau between each
candidate's INT8 PSNR (or log2 score, for the ``score`` objective) and the long training's, with a p-value and a
bootstrap confidence interval; the same for parameter count and MACs as baselines; optionally the seed-to-seed
repeatability of the proxy; and recommends the cheapest candidate whose tau reaches a target.

Every finished training is written to ``<study folder>/proxy-check/results/`` as it comes, keyed by spec, steps,
seed and the config fields that decide the result: an interrupted check started again trains only what is missing,
and a changed config never reuses results that no longer apply; a training that failed for a reason that is not the
spec's (a crash, a lost worker) is trained again, an infeasible one is not. The long trainings also write
checkpoints there (``<key>.train/``, removed when the training finishes): one interrupted mid-way goes on from its
last checkpoint (on a machine that sees the folder: this one, or the node of a cluster that ran it). The report
(JSON, CSV, PNG) is written beside them and logged to the study's MLflow experiment as a run of kind ``proxy-check``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from nas._files import atomic_write, write_json
from nas._logging import get_logger
from nas.errors import SearchError
from nas.evaluate import log2_score
from nas.latency import load_latency_model
from nas.search import Cause, SearchConfig, Tracker, TrialJob, identity_view, load_study_images
from nas.search.executors import TrainingExecutors, run_jobs
from nas.model import result_forms
from nas.train import FLOAT_WEIGHTS
from nas.space import deploy_ops, load_space

__all__ = ["TauEstimate", "FidelityRow", "ProxyCheckReport", "proxy_check", "spread_specs", "kendall"]

log = get_logger("search")

FOLDER = "proxy-check"


@dataclasses.dataclass(frozen=True)
class TauEstimate:
    """Kendall's tau-b of two rankings of the same specs, with its p-value (no association) and a bootstrap 95%
    interval over the specs."""

    tau: float
    p_value: float
    low: float
    high: float
    n: int

    ALPHA: ClassVar[float] = 0.05
    """A proxy is recommended only if its tau is significant at this level: four specs ranked alike by two lengths
    (tau 1.0) happen by chance one time in twelve (p 0.083), and such a check once recommended a proxy of half the
    length. Six specs are the fewest for which a tau of 0.8 or more can be significant."""

    def __post_init__(self) -> None:
        if self.n < 0 or not (self.low <= self.high or math.isnan(self.low)):
            raise ValueError(f"inconsistent tau estimate {self}")

    def significant(self) -> bool:
        """Whether the association is significant at :attr:`ALPHA` (two-sided)."""
        return self.p_value <= self.ALPHA

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return f"{self.tau:.3f} [{self.low:.2f}, {self.high:.2f}] p={self.p_value:.2g} (n={self.n})"


def recommend(tau: dict[int, TauEstimate], target: float) -> int | None:
    """The cheapest proxy length whose tau reaches ``target`` and is significant (:meth:`TauEstimate.significant`);
    None if none."""
    meeting = [st for st, e in tau.items() if e.tau >= target and e.significant()]
    return min(meeting) if meeting else None


def kendall(a, b, seed: int = 0, resamples: int = 2000) -> TauEstimate:
    """Kendall's tau-b of ``a`` against ``b`` with scipy's p-value and a seeded bootstrap percentile interval."""
    from scipy.stats import kendalltau

    a, b = np.asarray(a, float), np.asarray(b, float)
    n = len(a)
    if n < 3:
        return TauEstimate(float("nan"), float("nan"), float("nan"), float("nan"), n)
    res = kendalltau(a, b)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        if np.ptp(a[idx]) == 0 or np.ptp(b[idx]) == 0:
            continue
        boot.append(kendalltau(a[idx], b[idx]).statistic)
    low, high = (np.percentile(boot, [2.5, 97.5]) if boot else (float("nan"), float("nan")))
    return TauEstimate(float(res.statistic), float(res.pvalue), float(low), float(high), n)


@dataclasses.dataclass(frozen=True)
class FidelityRow:
    """One spec: its cost figures and, per training length (steps), its INT8/FP32 PSNR and training seconds."""

    spec: Any  # nas.space.ArchSpec
    latency_ms: float  # pessimistic (mean + k sigma), as the search minimises it
    params: int
    macs: int
    int8: dict[int, float]
    fp32: dict[int, float]
    train_s: dict[int, float]
    failed: dict[int, str]

    def log2_score(self, steps: int) -> float | None:
        psnr = self.int8.get(steps)
        return None if psnr is None else log2_score(psnr, self.latency_ms)


@dataclasses.dataclass(frozen=True)
class ProxyCheckReport:
    """What :func:`proxy_check` measured; ``tau[steps]`` ranks by the study's objective (INT8 PSNR for ``pareto``,
    log2 score for ``score``) against the long training's."""

    study: str
    objective: str
    candidates: tuple[int, ...]
    long_steps: int
    reference: str  # the long training's schedule: "full" (the product's, QAT included) or "proxy" (the proxy's)
    target: float
    rows: tuple[FidelityRow, ...]
    tau: dict[int, TauEstimate]
    tau_psnr: dict[int, TauEstimate]
    tau_score: dict[int, TauEstimate]
    baselines: dict[str, TauEstimate]
    cost_s: dict[int, float]  # training seconds per spec (steps x the long runs' mean seconds per step)
    recommended: int | None
    repeatability: tuple[dict, ...]
    folder: Path

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study, "objective": self.objective, "candidates": list(self.candidates),
            "long_steps": self.long_steps, "reference": self.reference, "target": self.target, "recommended": self.recommended,
            "tau": {str(k): v.to_dict() for k, v in self.tau.items()},
            "tau_psnr": {str(k): v.to_dict() for k, v in self.tau_psnr.items()},
            "tau_score": {str(k): v.to_dict() for k, v in self.tau_score.items()},
            "baselines": {k: v.to_dict() for k, v in self.baselines.items()},
            "cost_s": {str(k): v for k, v in self.cost_s.items()},
            "repeatability": list(self.repeatability),
            "specs": [{"spec": r.spec.describe(), "hash": r.spec.hash, "latency_ms": r.latency_ms,
                       "params": r.params, "macs": r.macs, "int8": {str(k): v for k, v in r.int8.items()},
                       "fp32": {str(k): v for k, v in r.fp32.items()},
                       "train_s": {str(k): v for k, v in r.train_s.items()},
                       "failed": {str(k): v for k, v in r.failed.items()}} for r in self.rows],
            "folder": str(self.folder),
        }


def spread_specs(space, latency, n: int, seed: int = 0, k: float = 1.0, draws: int = 4000) -> list:
    """``n`` distinct specs of ``space`` spread evenly over its (log) pessimistic latency range: ``draws`` seeded
    random specs, sorted by predicted latency, and the one nearest each of ``n`` evenly spaced quantiles."""
    rng = np.random.default_rng(seed)
    seen, pool = set(), []
    for _ in range(draws):
        spec = space.sample(rng)
        if spec.hash not in seen:
            seen.add(spec.hash)
            pool.append((float(np.log(latency.predict(spec).pessimistic(k))), spec.hash, spec))
    if len(pool) < n:
        raise SearchError(f"space '{space.name}' has only {len(pool)} distinct specs; ask for at most that many")
    pool.sort(key=lambda t: (t[0], t[1]))
    lat = np.array([p[0] for p in pool])
    chosen: list = []
    taken: set[int] = set()
    for q in np.linspace(lat[0], lat[-1], n):
        order = np.argsort(np.abs(lat - q), kind="stable")
        i = next(int(j) for j in order if int(j) not in taken)
        taken.add(i)
        chosen.append(pool[i][2])
    return chosen


def _config_digest(config: SearchConfig) -> str:
    """The fields that decide a training's result, less the proxy length (which each result names itself)."""
    view = identity_view(config.model_dump(mode="json"))
    view["proxy"] = {k: v for k, v in view["proxy"].items() if k not in ("steps", "eval_every")}
    view.pop("seed", None)
    view.pop("objective", None)
    return hashlib.sha256(json.dumps(view, sort_keys=True).encode()).hexdigest()[:10]


@dataclasses.dataclass(frozen=True)
class _Job:
    spec: Any
    steps: int
    seed: int
    schedule: str = "proxy"  # (TrialJob.schedule)

    def key(self, digest: str) -> str:
        """The result's name: spec, length, schedule, seed, what the spec's figures depend on besides the config
        (its training form and INT8 preparation, :func:`nas.model.result_forms`) and the config's digest."""
        full = "-full" if self.schedule == "full" else ""
        forms = result_forms(self.spec, qat=self.schedule == "full")
        return f"{self.spec.hash}-{self.steps}{full}-s{self.seed}-{forms}-{digest}"


Progress = Callable[[int, int, str], None]


def proxy_check(
    config: SearchConfig,
    *,
    n: int = 8,
    candidates: tuple[int, ...] | None = None,
    long_steps: int | None = None,
    factor: int = 10,
    reference: str = "full",
    target: float = 0.8,
    repeats: int = 0,
    seeds: int = 3,
    progress: Progress | None = None,
    log_to_mlflow: bool = True,
) -> ProxyCheckReport:
    """Train ``n`` specs with each proxy length in ``candidates`` (default: the study's proxy, half and a quarter
    of it) and with ``long_steps`` (default ``factor`` times the study's proxy) of the ``reference`` schedule:
    ``full``, the product's own (:meth:`nas.train.TrainConfig.full`: Charbonnier, L2, QAT; what ``nas retrain`` runs
    and users ship), or ``proxy``, the proxy's own made longer; rank; recommend.

    ``repeats`` specs (spread over the latency range) are also trained with the study's proxy under ``seeds``
    seeds in all, for the proxy's seed-to-seed noise. ``progress(done, total, message)`` is called as trainings
    finish.
    """
    if n < 3:
        raise SearchError(f"n = {n}: a rank correlation needs at least 3 specs")
    base = config.proxy.steps
    cands = tuple(sorted(set(candidates or (max(1, base // 4), max(1, base // 2), base))))
    if min(cands) < 1:
        raise SearchError(f"proxy lengths must be positive, got {list(cands)}")
    long_steps = int(long_steps or factor * base)
    if long_steps <= max(cands):
        raise SearchError(f"the long training ({long_steps} steps) must be longer than every candidate proxy "
                          f"({max(cands)} steps)")
    if reference not in ("full", "proxy"):
        raise SearchError(f"reference schedule {reference!r}: choose full or proxy")
    if reference == "full" and long_steps < 10:
        raise SearchError(f"the full schedule's three stages need at least 10 steps, not {long_steps}")
    if not 0.0 < target <= 1.0:
        raise SearchError(f"target tau {target} must be in (0, 1]")
    latency = load_latency_model(config.latency.model)
    space = load_space(config.space)
    specs = spread_specs(space, latency, n, seed=config.seed, k=config.latency.k)
    input_hw = tuple(config.export.input_size or latency.input_hw)
    digest = _config_digest(config)
    folder = config.study_dir / FOLDER
    results_dir = folder / "results"
    results_dir.mkdir(parents=True, exist_ok=True)

    # cheapest first: every proxy, then the repeats, then the long trainings (most of the time)
    jobs = [_Job(s, st, config.seed) for st in cands for s in specs]
    rep_specs = [specs[int(i)] for i in np.linspace(0, n - 1, repeats).round()] if repeats else []
    jobs += [_Job(s, base, config.seed + j) for j in range(1, seeds) for s in rep_specs]
    jobs += [_Job(s, long_steps, config.seed, reference) for s in specs]
    jobs = list(dict.fromkeys(jobs))
    results: dict[_Job, dict] = {}
    for job in jobs:
        path = results_dir / f"{job.key(digest)}.json"
        if path.exists():
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                log.warning("%s is unreadable: training it again", path)
                continue
            if rec["state"] == "failed" and rec.get("cause") not in (None, Cause.INFEASIBLE.value):
                log.info("%s failed for a reason that is not the spec's (%s): training it again", path,
                         rec["reason"])
                continue
            results[job] = rec
    todo = [j for j in jobs if j not in results]
    total = len(jobs)
    if progress:
        progress(len(results), total, f"{len(results)} of {total} trainings already done" if results else "start")
    if todo:
        images = load_study_images(config)
        executor, threads = TrainingExecutors().make(config, None, images)
        by_number = dict(enumerate(todo))

        def trial_job(number: int, job: _Job) -> TrialJob:
            cfg = config.model_copy(update={
                "seed": job.seed, "proxy": config.proxy.model_copy(update={"steps": job.steps, "eval_every": None})})
            ckpt = results_dir / f"{job.key(digest)}.train" if job.steps == long_steps else None
            return TrialJob(number, job.spec, cfg, input_hw, threads, str(ckpt) if ckpt else None, job.schedule)

        def finished(out) -> None:
            job = by_number[out.number]
            rec = {"spec": job.spec.to_dict(), "steps": job.steps, "schedule": job.schedule,
                   "forms": result_forms(job.spec, qat=job.schedule == "full"), "seed": job.seed, "state": out.state,
                   "reason": out.reason, "cause": out.cause.value if out.cause else None,
                   "int8_psnr": out.metrics.get("int8_psnr"), "fp32_psnr": out.metrics.get("fp32_psnr"),
                   "train_s": out.seconds.get("train"), "worker": out.worker,
                   **({"int8_qat_shipped": out.metrics["int8_qat_shipped"]} if "int8_qat_shipped" in out.metrics
                      else {})}
            if "weights.npz" in out.files:  # kept beside the result: the trained net can be evaluated again
                with atomic_write(results_dir / f"{job.key(digest)}.npz") as fh:  # on other images
                    fh.write(out.files["weights.npz"])
            if FLOAT_WEIGHTS in out.files:  # a QAT schedule's float model, beside its INT8-trained weights
                with atomic_write(results_dir / f"{job.key(digest)}.float.npz") as fh:
                    fh.write(out.files[FLOAT_WEIGHTS])
            write_json(results_dir / f"{job.key(digest)}.json", rec)
            shutil.rmtree(results_dir / f"{job.key(digest)}.train", ignore_errors=True)  # its checkpoints
            results[job] = rec
            if progress:
                what = (f"{job.spec.describe()} {job.steps} steps: INT8 {rec['int8_psnr']:.2f} dB"
                        if out.state == "complete" else f"{job.spec.describe()} {job.steps} steps: "
                                                        f"{out.state} ({out.reason})")
                progress(len(results), total, what)

        try:
            run_jobs(executor, (trial_job(n, j) for n, j in by_number.items()), finished)
        finally:
            executor.close()

    rows = []
    for spec in specs:
        ops = deploy_ops(spec, *input_hw)
        int8, fp32, secs, failed = {}, {}, {}, {}
        for st in (*cands, long_steps):
            r = results[_Job(spec, st, config.seed, reference if st == long_steps else "proxy")]
            if r["state"] == "complete":
                int8[st], fp32[st], secs[st] = r["int8_psnr"], r["fp32_psnr"], r["train_s"]
            else:
                failed[st] = r["reason"]
        rows.append(FidelityRow(spec, latency.predict(spec).pessimistic(config.latency.k),
                                sum(o.params for o in ops), sum(o.macs for o in ops), int8, fp32, secs, failed))

    def both(st: int, get) -> tuple[list, list]:
        ok = [r for r in rows if st in r.int8 and long_steps in r.int8]
        return [get(r, st) for r in ok], [get(r, long_steps) for r in ok]

    tau_psnr = {st: kendall(*both(st, lambda r, s: r.int8[s]), seed=config.seed) for st in cands}
    tau_score = {st: kendall(*both(st, lambda r, s: r.log2_score(s)), seed=config.seed) for st in cands}
    tau = tau_score if config.objective == "score" else tau_psnr
    ok_long = [r for r in rows if long_steps in r.int8]
    goal = [r.log2_score(long_steps) if config.objective == "score" else r.int8[long_steps] for r in ok_long]
    baselines = {
        "params": kendall([r.params for r in ok_long], goal, seed=config.seed),
        "macs": kendall([r.macs for r in ok_long], goal, seed=config.seed),
        "-latency": kendall([-r.latency_ms for r in ok_long], goal, seed=config.seed),
    }
    # cost: steps x each spec's seconds per step in its long run (the steadiest measure: a short run's own time
    # is dominated by one-off start-up such as tracing the training step)
    per_step = [r.train_s[long_steps] / long_steps for r in rows if long_steps in r.train_s]
    cost = {st: float(st * np.mean(per_step)) if per_step else float("nan") for st in (*cands, long_steps)}
    recommended = recommend(tau, target)
    repeat_rows = []
    spread = float(np.std([r.int8[base] for r in rows if base in r.int8])) if base in cands else float("nan")
    for spec in rep_specs:
        vals = [results[_Job(spec, base, config.seed + j)].get("int8_psnr") for j in range(seeds)]
        vals = [v for v in vals if v is not None]
        if len(vals) >= 2:
            sd = float(np.std(vals, ddof=1))
            repeat_rows.append({"spec": spec.describe(), "hash": spec.hash, "int8": vals, "std_db": sd,
                                "cv_percent": 100.0 * sd / float(np.mean(vals)),
                                "std_over_spec_spread": sd / spread if spread > 0 else float("nan")})
    report = ProxyCheckReport(config.name, config.objective, cands, long_steps, reference, target, tuple(rows), tau, tau_psnr,
                              tau_score, baselines, cost, recommended, tuple(repeat_rows), folder)
    files = _write_report(report)
    if log_to_mlflow:
        _log_to_mlflow(config, report, files)
    return report


def _write_report(rep: ProxyCheckReport) -> list[Path]:
    folder = rep.folder
    write_json(folder / "report.json", rep.to_dict())
    with open(folder / "specs.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        steps = (*rep.candidates, rep.long_steps)
        w.writerow(["hash", "spec", "latency_ms", "params", "macs"] + [f"int8_psnr_{s}" for s in steps]
                   + [f"train_s_{s}" for s in steps])
        for r in rep.rows:
            w.writerow([r.spec.hash, r.spec.describe(), f"{r.latency_ms:.3f}", r.params, r.macs]
                       + [("" if s not in r.int8 else f"{r.int8[s]:.4f}") for s in steps]
                       + [("" if s not in r.train_s else f"{r.train_s[s]:.1f}") for s in steps])
    files = [folder / "report.json", folder / "specs.csv"]
    try:
        files.append(_plot(rep, folder / "proxy_check.png"))
    except Exception as exc:  # a plot must never lose the measurements
        log.warning("could not draw the proxy-check plot: %s", exc)
    return files


def _plot(rep: ProxyCheckReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = max(rep.candidates)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5))
    ok = [r for r in rep.rows if base in r.int8 and rep.long_steps in r.int8]
    xs, ys = [r.int8[base] for r in ok], [r.int8[rep.long_steps] for r in ok]
    ax1.scatter(xs, ys, c=[np.log(r.latency_ms) for r in ok], cmap="viridis")
    for r, x, y in zip(ok, xs, ys):
        ax1.annotate(r.spec.describe(), (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax1.set_xlabel(f"INT8 PSNR after the {base}-step proxy (dB)")
    ax1.set_ylabel(f"INT8 PSNR after {rep.long_steps} steps, {rep.reference} schedule (dB)")
    t = rep.tau_psnr[base]
    ax1.set_title(f"proxy vs long training: Kendall tau {t.tau:.2f} [{t.low:.2f}, {t.high:.2f}]")
    ax1.grid(alpha=0.3)
    cost = [rep.cost_s[s] for s in rep.candidates]
    taus = [rep.tau[s].tau for s in rep.candidates]
    err = [[rep.tau[s].tau - rep.tau[s].low for s in rep.candidates],
           [rep.tau[s].high - rep.tau[s].tau for s in rep.candidates]]
    ax2.errorbar(cost, taus, yerr=np.nan_to_num(err), fmt="o-", capsize=4)
    for s, c, v in zip(rep.candidates, cost, taus):
        ax2.annotate(f"{s} steps", (c, v), xytext=(4, -12), textcoords="offset points", fontsize=8)
    ax2.axhline(rep.target, color="red", ls="--", label=f"target {rep.target}")
    lines: dict[float, list[str]] = {}
    for name, b in rep.baselines.items():
        if math.isfinite(b.tau):
            lines.setdefault(round(b.tau, 3), []).append(name)
    for value, names in lines.items():
        ax2.axhline(value, color="grey", ls=":", lw=1)
        ax2.annotate(" = ".join(names) + " alone", (min(cost), value), fontsize=7, color="grey",
                     xytext=(0, 3), textcoords="offset points")
    ax2.set_xlabel("training seconds per spec (steps x seconds per step)")
    measure = "log2 score" if rep.objective == "score" else "INT8 PSNR"
    ax2.set_ylabel(f"Kendall tau vs {rep.long_steps} steps {rep.reference} ({measure})")
    ax2.set_title("fidelity against proxy cost")
    ax2.set_ylim(-1.05, 1.05)
    ax2.legend(loc="lower right")
    ax2.grid(alpha=0.3)
    fig.suptitle(f"proxy check of study '{rep.study}': {len(rep.rows)} specs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _log_to_mlflow(config: SearchConfig, rep: ProxyCheckReport, files: list[Path]) -> None:
    tracker = Tracker(config.tracking_uri, f"nas-{config.name}", Path(config.out) / "mlartifacts")
    run_id = tracker.create_run(f"proxy-check-{time.strftime('%Y%m%d-%H%M%S')}",
                                {"nas.study": config.name, "nas.kind": "proxy-check"},
                                {"n_specs": len(rep.rows), "candidates": ",".join(map(str, rep.candidates)),
                                 "long_steps": rep.long_steps, "target": rep.target, "objective": rep.objective,
                                 "recommended": rep.recommended, "space": config.space,
                                 "latency_model": config.latency.model})
    metrics: dict[str, float] = {}
    for s in rep.candidates:
        for name, est in (("tau", rep.tau[s]), ("tau_psnr", rep.tau_psnr[s]), ("tau_score", rep.tau_score[s])):
            metrics.update({f"{name}_{s}": est.tau, f"{name}_{s}_low": est.low, f"{name}_{s}_high": est.high,
                            f"{name}_{s}_p": est.p_value})
        metrics[f"train_s_{s}"] = rep.cost_s[s]
    for name, est in rep.baselines.items():
        metrics[f"tau_baseline_{name.lstrip('-')}"] = est.tau
    tracker.log_metrics(run_id, {k: v for k, v in metrics.items() if v is not None and math.isfinite(v)})
    tracker.log_files(run_id, [f for f in files if f.exists()])
    tracker.end(run_id, "complete")
