"""Latency on several real boards of one machine, and few-shot calibration of each from the others.

    python -m bench.latency_boards [--n-cal 60] [--n-test 30] [--input-size 180x320] [--rounds 3] [--runs 10]
                                   [--boards litert-cpu-1t,litert-cpu-2t,litert-builtin-1t] [--ks 5,10,20,40]
                                   [--work runs/bench-latency-boards] [--phase all|export|time|fit]

Boards: LiteRT with XNNPACK at 1 and at 2 threads, and LiteRT's built-in kernels without XNNPACK at 1 thread
(distinct cost structures, each a real :class:`~nas.latency.LiteRTCPUBoard`).

Specs: the calibration set is ``select_specs`` (space-filling over the deployed graphs, ``--n-cal``); the held-out
set is drawn independently and uniformly over the space's choices (``space.sample``), keeping deployed graphs
that are not in the calibration set (``--n-test``): another design than the calibration's, never used for fitting.
The k specs of a few-shot fit are the first k of the same space-filling sequence (so they are measured already).

Timing: every model on every board in ``--rounds`` rounds; within a round the (model, board) pairs are shuffled,
so slow drift of the machine hits every board and spec alike. A model's time on a board is the median over rounds
of each round's median of ``--runs`` runs. Repeatability (the machine's noise floor, printed beside every accuracy
figure): the median and the 90th percentile over models of the relative spread (max - min) / median of a model's
per-round medians. Timings are appended to ``--work``/timings.csv as they come (resumable).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bench._harness import ROOT
from nas.latency import (
    Accuracy,
    LiteRTCPUBoard,
    ResidualGP,
    Sample,
    cross_validate,
    fit_model,
    measure_specs,
    published_samples,
    select_specs,
)
from nas.latency import graph_key
from nas.latency import REFIT_NOISE as LOOP_NOISE  # (the closed loop's residual noise)
from nas.space import ArchSpec, deploy_ops, load_space

BOARDS = {"litert-cpu-1t": dict(threads=1), "litert-cpu-2t": dict(threads=2),
          "litert-builtin-1t": dict(threads=1, xnnpack=False)}


def design(n_cal: int, n_test: int, seed: int = 0) -> tuple[list[ArchSpec], list[ArchSpec]]:
    space = load_space("mai2022")
    cal = select_specs(space, n_cal, seed=seed)
    graphs = {graph_key(s) for s in cal}
    rng = np.random.default_rng(1000 + seed)
    test: list[ArchSpec] = []
    while len(test) < n_test:
        s = space.sample(rng)
        g = graph_key(s)
        if g in graphs:
            continue
        graphs.add(g)
        test.append(s)
    return cal, test


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def time_all(specs: list[ArchSpec], boards: list[str], work: Path, rounds: int, runs: int) -> None:
    path = work / "timings.csv"
    done = {(r["board"], r["hash"], int(r["round"])) for r in _read(path)}
    made = {name: LiteRTCPUBoard(warmup=2, runs=runs, **BOARDS[name]) for name in boards}
    new = not path.exists()
    t0 = time.perf_counter()
    with open(path, "a", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(("board", "hash", "round", "median_ms", "q1_ms", "q3_ms", "time"))
        for r in range(rounds):
            pairs = [(b, s) for b in boards for s in specs if (b, s.hash, r) not in done]
            random.Random(r).shuffle(pairs)
            for i, (b, s) in enumerate(pairs):
                m = made[b].measure(work / "models" / f"{s.hash}.tflite")
                w.writerow((b, s.hash, r, f"{m.median_ms:.6g}", f"{m.q1_ms:.6g}", f"{m.q3_ms:.6g}",
                            f"{time.time():.0f}"))
                fh.flush()
                if (i + 1) % 50 == 0 or i + 1 == len(pairs):
                    print(f"  round {r + 1}/{rounds}: {i + 1}/{len(pairs)} timings ({time.perf_counter() - t0:.0f} s)",
                          flush=True)


def truth(work: Path, boards: list[str]) -> tuple[dict, dict]:
    """(board -> hash -> ms) and (board -> repeatability figures)."""
    per: dict = {}
    for r in _read(work / "timings.csv"):
        per.setdefault(r["board"], {}).setdefault(r["hash"], []).append(float(r["median_ms"]))
    ms, rep = {}, {}
    for b in boards:
        ms[b] = {h: statistics.median(v) for h, v in per.get(b, {}).items()}
        spreads = [(max(v) - min(v)) / statistics.median(v) for v in per.get(b, {}).values() if len(v) > 1]
        rep[b] = {"median_spread": statistics.median(spreads) if spreads else None,
                  "p90_spread": float(np.percentile(spreads, 90)) if spreads else None, "models": len(spreads),
                  "rounds": per.get(b, {})}
    return ms, rep


def noise_ceiling(rounds: dict, ns=(1, 3, 5, 9), draws: int = 100_000, seed: int = 0) -> dict[int, float]:
    """The held-out ``+-10%`` figure a perfect predictor would get against truths measured as the median of ``n``
    rounds, per ``n``. A round's noise is drawn from the board's own round-to-round differences (every pair of
    rounds of a model: log ratio / sqrt 2, both signs), independently per round: an estimate, since rounds taken
    close together also drift together."""
    noise = []
    for v in rounds.values():
        lv = np.log(np.asarray(v, float))
        for i in range(len(lv)):
            for j in range(i + 1, len(lv)):
                d = (lv[i] - lv[j]) / np.sqrt(2)
                noise += [d, -d]
    if not noise:
        return {}
    rng = np.random.default_rng(seed)
    return {n: float(np.mean(np.abs(np.expm1(np.median(rng.choice(noise, size=(draws, n)), axis=1))) <= 0.10))
            for n in ns}


def _acc(measured, predicted) -> Accuracy:
    return Accuracy.of(measured, predicted, 1)


def _cells(acc: Accuracy) -> str:
    return (f"{acc.within_10 * 100:6.1f}% {acc.spearman:7.3f} {acc.mape * 100:6.1f}% {acc.max_ape * 100:6.1f}%")


HEAD = f"{'+-10%':>7} {'Spearman':>7} {'MAPE':>7} {'max':>7}"


def report(cal, test, ms, rep, boards, ks, hw) -> dict:
    """Held-out accuracy on every board: full calibration, k-shot without and with each other board's full model
    as the prior, MACs-only and parameters-only fits; the machine's repeatability beside it."""
    ops = {s.hash: deploy_ops(s, *hw) for s in cal + test}
    full: dict[str, object] = {}
    out: dict = {"boards": {}}
    for b in boards:
        have = [s for s in cal if s.hash in ms[b]]
        full[b] = fit_model([Sample(s.hash, ops[s.hash], ms[b][s.hash]) for s in have], board=b, input_hw=hw,
                            alignment=None, baselines=False, folds=5)
    for b in boards:
        held = [s for s in test if s.hash in ms[b]]
        y = [ms[b][s.hash] for s in held]
        r = rep[b]
        print(f"\n{b}: {len(held)} held-out specs; repeatability (spread of a model's per-round medians): median "
              f"{r['median_spread'] * 100:.1f}%, 90th percentile {r['p90_spread'] * 100:.1f}% ({r['models']} models)")
        ceiling = noise_ceiling(r["rounds"])
        print("  noise ceiling: a perfect predictor (the true latency) lies within +-10% of a model's median of n "
              "rounds for " + ", ".join(f"{v * 100:.1f}% (n={n})" for n, v in ceiling.items())
              + " (rounds' noise resampled from this board's own round-to-round differences)")
        print(f"  {'fit':<44} {HEAD}")
        rows = {}

        def line(label: str, model) -> None:
            acc = _acc(y, [model.predict_ops(ops[s.hash]).mean_ms for s in held])
            rows[label] = acc.to_dict()
            print(f"  {label:<44} {_cells(acc)}")

        line(f"full: {len(full[b].meta['samples'])} specs, per-op features", full[b])
        have = [s for s in cal if s.hash in ms[b]]
        line("  + residual correction (the closed loop's)", full[b].with_residuals(
            [Sample(s.hash, ops[s.hash], ms[b][s.hash]) for s in have], noise=LOOP_NOISE))
        errs = [(full[b].predict_ops(ops[s.hash]).mean_ms / ms[b][s.hash] - 1.0, s) for s in held]
        by = {}
        for e, s in errs:
            by.setdefault(f"skip {s.skip.value}", []).append(e)
            by.setdefault(f"w{s.width}", []).append(e)
        print("    full fit's signed error on the held-out specs by group (mean): " + ", ".join(
            f"{g} {statistics.mean(v) * 100:+.1f}% (n={len(v)})" for g, v in sorted(by.items())))
        inside = sum(min(r["rounds"][s.hash]) * 0.999 <= (1 + e) * ms[b][s.hash] <= max(r["rounds"][s.hash]) * 1.001
                     for e, s in errs)
        print(f"    the full fit's prediction lies inside the spread of the model's own per-round medians for {inside} "
              f"of {len(errs)} held-out specs (a prediction cannot be told from the truth more finely than that)")
        print("    largest: " + "; ".join(f"{s.describe()} {e * 100:+.1f}%" for e, s in
                                          sorted(errs, key=lambda p: -abs(p[0]))[:4]))
        for kind in ("macs", "params"):
            line(f"full: {len(have)} specs, {kind}-only", fit_model(
                [Sample(s.hash, ops[s.hash], ms[b][s.hash]) for s in have], kind=kind, board=b, input_hw=hw,
                baselines=False, folds=5))
        for k in ks:
            few = [Sample(s.hash, ops[s.hash], ms[b][s.hash]) for s in have[:k]]
            plain = fit_model(few, board=b, input_hw=hw, alignment=None, baselines=False)
            line(f"k={k}: no prior (alignment chosen)", plain)
            line(f"k={k}:   + residual correction", plain.with_residuals(few, noise=LOOP_NOISE))
            line(f"k={k}: macs-only", fit_model(few, kind="macs", board=b, input_hw=hw, baselines=False))
            for p in boards:
                if p != b:
                    line(f"k={k}: prior {p}", fit_model(few, board=b, input_hw=hw, alignment=None, baselines=False,
                                                         prior=full[p]))
        out["boards"][b] = {"repeatability": {k: v for k, v in r.items() if k != "rounds"}, "fits": rows,
                            "inside_round_spread": inside, "noise_ceiling": {str(n): v for n, v in ceiling.items()}}
    out["full_models"] = full
    return out


def vs680(prior_models: dict, published: Path) -> dict:
    """The VS680 from its published rows: leave-one-out without and with each host board's model as the prior, and
    the ceiling the rows allow (a perfect graph-to-latency map predicts the mean of the rows of the same graph)."""
    from scipy.stats import spearmanr

    samples = published_samples(published)
    y = np.array([s.ms for s in samples])
    graphs: dict = {}
    for s in samples:
        graphs.setdefault(tuple(s.ops), []).append(s.ms)
    perfect = np.array([statistics.mean(graphs[tuple(s.ops)]) for s in samples])
    ceiling = float(spearmanr(y, perfect).statistic)
    shared = sum(len(v) for v in graphs.values() if len(v) > 1)
    print(f"\nVS680 NPU, {len(samples)} published rows (confidence high/medium), leave-one-out; {len(graphs)} distinct "
          f"graphs, {shared} rows share a graph with another row")
    print(f"  ceiling: a perfect graph-to-latency map (each row predicted by the mean of its graph's rows) reaches "
          f"Spearman {ceiling:.3f}, MAPE {float(np.mean(np.abs(perfect - y) / y)) * 100:.1f}%")
    print(f"  {'fit':<44} {HEAD}")
    out = {"ceiling_spearman": ceiling, "fits": {}}
    for label, kw in [("no prior (per-op, alignment 16)", {})] + [(f"prior {b}", {"prior": m})
                                                                    for b, m in prior_models.items()]:
        acc = cross_validate(samples, alignment=16, **kw)
        out["fits"][label] = acc.to_dict()
        print(f"  {label:<44} {_cells(acc)}")
    for kind in ("macs", "params"):
        acc = cross_validate(samples, kind=kind)
        out["fits"][f"{kind}-only"] = acc.to_dict()
        print(f"  {kind + '-only':<44} {_cells(acc)}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-cal", type=int, default=60)
    ap.add_argument("--n-test", type=int, default=30)
    ap.add_argument("--input-size", default="180x320")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--boards", default=",".join(BOARDS))
    ap.add_argument("--ks", default="5,10,20,40")
    ap.add_argument("--work", default="runs/bench-latency-boards")
    ap.add_argument("--phase", choices=("all", "export", "time", "fit"), default="all")
    ap.add_argument("--published", default=str(ROOT.parent / "shared" / "latency" / "vs680-published.yaml"))
    ap.add_argument("--residual-lengths", default=None,
                    help="length scales the residual correction may choose from (default: ResidualGP.LENGTHS, "
                         "0.1,0.2,0.5; 0.1,0.2,0.5,1,2,5 shows why longer ones are left out)")
    a = ap.parse_args(argv)
    if a.residual_lengths:  # (this script's own process: the class default is what the product uses)
        ResidualGP.LENGTHS = tuple(float(v) for v in a.residual_lengths.split(","))
    hw = tuple(int(v) for v in a.input_size.lower().split("x"))
    work = Path(a.work)
    boards = a.boards.split(",")
    cal, test = design(a.n_cal, a.n_test)
    specs = cal + test
    if a.phase in ("all", "export"):
        t0 = time.perf_counter()
        measure_specs(specs, None, work, input_hw=hw)
        print(f"exported {len(specs)} models at {hw[0]}x{hw[1]} ({time.perf_counter() - t0:.0f} s)")
    kept = ROOT / "bench" / "results" / "latency-boards-timings.csv"  # this machine's timings, kept in the repository
    if a.phase == "fit" and not (work / "timings.csv").exists() and kept.exists():
        work.mkdir(parents=True, exist_ok=True)
        (work / "timings.csv").write_text(kept.read_text())
        print(f"fitting the kept timings of {kept}")
    if a.phase in ("all", "time"):
        time_all(specs, boards, work, a.rounds, a.runs)
    if a.phase in ("all", "fit"):
        ms, rep = truth(work, boards)
        result = report(cal, test, ms, rep, boards, [int(k) for k in a.ks.split(",")], hw)
        if Path(a.published).exists():
            result["vs680"] = vs680(result.pop("full_models"), Path(a.published))
        else:
            result.pop("full_models")
        (work / "report.json").write_text(json.dumps(result, indent=1))
        print(f"\nreport: {work / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
