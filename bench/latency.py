"""Latency predictor accuracy: host CPU (calibrated on <= 40 specs, tested on >= 30 held-out ones) and the VS680
(leave-one-out over the published rows), each beside the MACs-only and parameters-only fits from the same run.

    python -m bench.latency [--n-cal 40] [--n-test 30] [--input-size 180x320] [--work runs/bench-latency]
                            [--skip-cpu] [--skip-few-shot]

Then the few-shot table of three host boards (k = 5, 10, 20, 40 measurements, with and without another board's model
as the prior, MACs-only beside it) and the VS680 fitted from a host prior with the ceiling its published rows allow:
bench/latency_boards.py refitting the timings kept in bench/results/.

The calibration specs are chosen space-filling (``select_specs``), the held-out ones uniformly at random among the
space's other deployed graphs. Every model is exported to INT8 and timed with LiteRT on one CPU thread; exports and
timings are kept in ``--work``, so a second run re-uses them and only refits.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench._harness import ROOT
from nas.latency import (
    Accuracy,
    LiteRTCPUBoard,
    cross_validate,
    fit_model,
    load_latency_model,
    measure_specs,
    published_samples,
    select_specs,
)
from nas.space import load_space


def _row(label: str, acc: Accuracy) -> str:
    return (f"  {label:<44} {acc.mape * 100:6.1f}%  {acc.spearman:8.3f}  {acc.within_10 * 100:7.1f}%  "
            f"{acc.max_ape * 100:7.1f}%")


HEADER = f"  {'':<44} {'MAPE':>7}  {'Spearman':>8}  {'+-10%':>8}  {'max err':>8}"


def host_cpu(args) -> None:
    space = load_space("mai2022")
    cal = select_specs(space, args.n_cal, seed=0)
    rng = np.random.default_rng(1)
    keys = {s.hash for s in cal}
    from nas.latency import graph_key

    cal_graphs = {graph_key(s) for s in cal}
    rest = [s for s in space.deployed_variants() if graph_key(s) not in cal_graphs and s.hash not in keys]
    test = [rest[i] for i in rng.choice(len(rest), size=args.n_test, replace=False)]
    board = LiteRTCPUBoard(threads=1, warmup=3, runs=15)
    hw = args.input_size
    t0 = time.perf_counter()
    last = [0.0]

    def progress(ev):
        if time.perf_counter() - last[0] > 30 or ev.done == ev.total:
            last[0] = time.perf_counter()
            print(f"    {ev.phase} {ev.done}/{ev.total}  ({time.perf_counter() - t0:.0f} s)", flush=True)

    samples = measure_specs(cal + test, board, args.work, input_hw=hw, rounds=2, callback=progress)
    by_name = {s.name: s for s in samples}
    cal_s = [by_name[s.hash] for s in cal]
    test_s = [by_name[s.hash] for s in test]
    ms = np.array([s.ms for s in samples])
    print(f"\nHost CPU ({board.name}, LiteRT/XNNPACK), INT8 models at {hw[0]}x{hw[1]} input: "
          f"{len(cal_s)} calibration + {len(test_s)} held-out specs, {ms.min():.1f}..{ms.max():.1f} ms "
          f"(exports and timings kept in {args.work}; this run {time.perf_counter() - t0:.0f} s)")
    print(HEADER)
    results = {}
    for kind, label in (("ops", "per-op features (this predictor)"), ("macs", "MACs-only linear"),
                        ("params", "parameters-only linear")):
        model = fit_model(cal_s, kind=kind, board=board.name, input_hw=hw, alignment=None, baselines=False)
        pred = [model.predict_ops(s.ops).mean_ms for s in test_s]
        results[kind] = Accuracy.of([s.ms for s in test_s], pred, 0)
        print(_row(f"{label}, held-out", results[kind]))
        if kind == "ops":
            chosen = model.alignment
            covered = np.mean([abs(p - s.ms) <= 2 * model.predict_ops(s.ops).stddev_ms for p, s in zip(pred, test_s)])
    for kind, label in (("ops", "per-op features, 5-fold on cal"), ("macs", "MACs-only, 5-fold on cal")):
        print(_row(label, cross_validate(cal_s, kind=kind, alignment=None, folds=5)))
    print(f"  channel alignment chosen from the calibration set: {chosen}; held-out measurements within the "
          f"predicted +-2 sigma: {covered * 100:.0f}%")
    o, m = results["ops"], results["macs"]
    print(f"  ratios, held-out: MAPE per-op / MACs-only = {o.mape / m.mape:.3f}; "
          f"share within +-10% per-op / MACs-only = {o.within_10 / max(m.within_10, 1e-9):.2f}")


def vs680(args) -> None:
    samples = published_samples(args.published)
    print(f"\nVS680 NPU, published MAI 2022 runtimes (confidence high/medium): {len(samples)} rows, "
          f"leave-one-out")
    print(HEADER)
    for kind, label in (("ops", "per-op features (alignment 16)"), ("macs", "MACs-only linear"),
                        ("params", "parameters-only linear")):
        print(_row(label, cross_validate(samples, kind=kind, alignment=16)))
    drop = [s for s in samples if s.name != "vccip"]
    print(_row("per-op, without vccip (12 rows)", cross_validate(drop, kind="ops", alignment=16)))
    model = load_latency_model("vs680")
    specs = load_space("mai2022").deployed_variants()
    t = time.perf_counter()
    preds = [model.predict(s) for s in specs * 5]
    rate = len(preds) / (time.perf_counter() - t)
    outside = sum(not p.in_range for p in preds[:len(specs)])
    print(f"  speed: {rate:,.0f} predictions/s with per-op breakdown and uncertainty (goal >= 10,000), over the "
          f"space's {len(specs)} distinct graphs; {outside} of them lie outside the fitted range")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-cal", type=int, default=40)
    p.add_argument("--n-test", type=int, default=30)
    p.add_argument("--input-size", default="180x320")
    p.add_argument("--work", default=str(ROOT / "runs" / "bench-latency"))
    p.add_argument("--published", default=str(ROOT.parent / "shared" / "latency" / "vs680-published.yaml"))
    p.add_argument("--skip-cpu", action="store_true", help="no host CPU calibration (the VS680 and few-shot parts)")
    p.add_argument("--skip-few-shot", action="store_true", help="no few-shot table")
    args = p.parse_args()
    args.input_size = tuple(int(v) for v in args.input_size.split("x"))
    if not args.skip_cpu:
        host_cpu(args)
    vs680(args)
    if not args.skip_few_shot:
        # three boards of this machine, k = 5..40 with and without each other board's model as the prior, and the
        # VS680 from a host prior with the ceiling its rows allow: refitted from the timings kept in the repository
        # (bench/latency_boards.py times them again, 45 minutes)
        import latency_boards

        print("\nfew-shot calibration (python -m bench.latency_boards --phase fit):")
        latency_boards.main(["--phase", "fit", "--work", str(Path(args.work) / "boards"),
                             "--published", args.published])


if __name__ == "__main__":
    main()
