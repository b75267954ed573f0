"""The search at equal budget and a trial's cost, in one run.

    python -m bench.search [--trials 12] [--steps 300] [--work runs/bench-search] [--part all|quality|cost]

* quality: the TPE search (the product's default sampler, median pruning, objective = log2 challenge score on the
  pessimistic VS680 latency) against random search with the same trial budget and proxy, and against the reference
  zoo's networks trained with the same proxy and scored with the same latency model;
* cost: the wall time of a trial by phase (data, training, INT8 export at 360x640, evaluation, the driver's
  Optuna/MLflow work); goal: everything but training under 15%.

Studies resume and finished results are cached in ``--work``: a second run only prints. (The proxy's fidelity, once
a part of this bench, is ``python -m bench.fidelity``'s: the product's own proxy check.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bench._harness import write_result
from nas.evaluate import log2_score
from nas.latency import load_latency_model
from nas.search import SearchConfig, TrialJob, run_search, run_trial
from nas.search import TrialRecord
from nas.space import zoo_entries


def _config(name: str, work: Path, trials: int, steps: int, sampler: str) -> SearchConfig:
    return SearchConfig(name=name, out=str(work), objective="score", n_trials=trials, warm_start=(),
                        proxy={"steps": steps}, sampler={"name": sampler, "n_startup_trials": 4})


def _cached(path: Path, key: str, make):
    data = json.loads(path.read_text()) if path.exists() else {}
    if key not in data:
        data[key] = make()
        write_result(path, data)
    return data[key]


def _trial_result(spec, cfg: SearchConfig, number: int) -> dict:
    out = run_trial(TrialJob(number, spec, cfg, (360, 640), None))
    return {"state": out.state, "reason": out.reason, "psnr": out.metrics.get("int8_psnr"), "seconds": out.seconds}


def quality(work: Path, trials: int, steps: int) -> list:
    lat = load_latency_model("vs680")
    rows = []
    studies = []
    for label, sampler in (("TPE search", "tpe"), ("random search", "random")):
        summary = run_search(_config(f"bench-{sampler}", work, trials, steps, sampler))
        import optuna

        st = optuna.load_study(study_name=f"bench-{sampler}", storage=summary.study.storage)
        rec = {t.number: TrialRecord.from_attrs(t.user_attrs) for t in st.trials}
        done = [t for t in st.trials if t.state.name == "COMPLETE" and rec[t.number].duplicate_of is None]
        best = rec[max(done, key=lambda t: rec[t.number].metrics["log2_score_objective"]).number]
        curve, top = [], -np.inf
        for t in st.trials:
            if t.state.name == "COMPLETE":
                top = max(top, rec[t.number].metrics["log2_score_objective"])
            curve.append(top)
        rows.append((label, best.metrics["log2_score_objective"], best.metrics["int8_psnr"],
                     best.latency_ms, best.describe,
                     f"{len(done)} complete, {sum(t.state.name == 'PRUNED' for t in st.trials)} pruned"))
        studies.append((label, st, curve))
    cfg = _config("bench-zoo", work, 1, steps, "random")
    seen, zoo = set(), []
    for i, e in enumerate(zoo_entries()):
        if e.spec.hash in seen:
            continue
        seen.add(e.spec.hash)
        r = _cached(work / "zoo.json", f"{e.name}-{steps}", lambda: _trial_result(e.spec, cfg, i))
        if r["state"] != "complete":
            continue
        pred = lat.predict(e.spec)
        zoo.append((log2_score(r["psnr"], pred.pessimistic(1.0)), r["psnr"], pred.mean_ms, e.name))
    zb = max(zoo)
    rows.append((f"best of {len(zoo)} zoo networks", zb[0], zb[1], zb[2], zb[3], "same proxy"))
    print(f"\nSearch quality at equal budget: {trials} trials of a {steps}-step proxy each, embedded photographs, "
          "objective = log2 score on the pessimistic VS680 latency (mean + 1 sigma)")
    print(f"  {'':<28} {'log2 score':>10} {'INT8 PSNR':>10} {'latency':>9}  spec")
    for label, score, psnr, ms, spec, note in rows:
        print(f"  {label:<28} {score:10.3f} {psnr:10.3f} {ms:8.2f}ms  {spec}  ({note})")
    tpe, rnd, zb_score = rows[0][1], rows[1][1], rows[2][1]
    print(f"  challenge-score ratio TPE/random {2 ** (tpe - rnd):.2f}x, TPE/best zoo {2 ** (tpe - zb_score):.2f}x, "
          f"random/best zoo {2 ** (rnd - zb_score):.2f}x")
    for label, _, curve in studies:
        print(f"  best-so-far {label:<14} " + " ".join(f"{v:6.2f}" if np.isfinite(v) else "     -" for v in curve))
    print("  zoo (log2 score, PSNR, ms): " + "; ".join(f"{n} {s:.2f} {p:.2f} {m:.1f}" for s, p, m, n in sorted(zoo)[::-1]))
    return [st for _, st, _ in studies]


def _cost_table(label: str, seconds: list[dict], driver: list[float]) -> None:
    keys = ("data", "train", "export", "evaluate")
    tot = {k: sum(s.get(k, 0.0) for s in seconds) for k in keys}
    tot["driver (Optuna, MLflow, files)"] = sum(driver)
    total = sum(tot.values())
    print(f"\nTrial cost, {label}: {len(seconds)} trials, {total:.0f} s")
    for k, v in tot.items():
        print(f"  {k:<32} {v:8.1f} s {100 * v / total:6.1f}%")
    print(f"  everything but training: {100 * (total - tot['train']) / total:.1f}% (goal < 15%)")


def cost(work: Path, studies) -> None:
    secs, driver = [], []
    for st in studies:
        summary = work / st.study_name / "summary.json"  # (the driver's own seconds of the last run's trials)
        own = json.loads(summary.read_text()).get("driver_seconds", {}) if summary.exists() else {}
        for t in st.trials:
            outcome = work / st.study_name / "trials" / f"{t.number:04d}" / "outcome.json"
            if (t.state.name == "COMPLETE" and outcome.exists()
                    and TrialRecord.from_attrs(t.user_attrs).duplicate_of is None):
                s = json.loads(outcome.read_text())["seconds"]
                secs.append(s)
                driver.append(own.get(str(t.number), 0.0))
    _cost_table("the search's trials (proxy)", secs, driver)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--work", default="runs/bench-search")
    ap.add_argument("--part", choices=("all", "quality", "cost"), default="all")
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    studies = []
    if a.part in ("all", "quality", "cost"):
        studies = quality(work, a.trials, a.steps)
    if a.part in ("all", "cost"):
        cost(work, studies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
