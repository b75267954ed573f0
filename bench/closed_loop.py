"""The closed latency loop on this machine's CPU: a real study measures its front while it runs; then how good the
refitted model is, on the front (what the loop promises) and on the trials it never measured (what it does not).

    python -m bench.closed_loop [--n 12] [--steps 60] [--input-size 90x160] [--board litert-cpu] \
        [--uncertain 0] [--space-specs 20] [--work runs/bench-closed-loop]

The study starts from the VS680 model (another board, another input size: the loop's prior) and measures on
``--board``. After it ends, every completed trial's INT8 model is timed again on the same board, in two shuffled
rounds, together with ``--space-specs`` specs drawn uniformly from the space that the study never tried (exported at
the study's input size): the trials the loop never measured and those specs are the two held-out sets; the trials it
measured give the machine's repeatability (a measurement after the study against the loop's). Printed: the front's
members measured vs predicted; held-out accuracy of the final model, of the same model without its residual
correction, and of the prior scaled to the measurements. The study is resumable (``--work`` keeps it); a second run
only re-times.
"""

from __future__ import annotations

import argparse
import os
import random
import textwrap
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench._harness import ROOT
from nas.latency import (
    Accuracy,
    Sample,
    load_latency_model,
    make_board,
    measure_specs,
    scale_model,
)
from nas.search import load_search_config, run_search
from nas.search import measured_times
from nas.search import TrialRecord
from nas.search import load_optuna_study
from nas.space import ArchSpec, deploy_ops, load_space


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=12, help="trials of the study")
    ap.add_argument("--steps", type=int, default=60, help="proxy steps per trial")
    ap.add_argument("--input-size", default="90x160")
    ap.add_argument("--board", default="litert-cpu")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per measurement")
    ap.add_argument("--uncertain", type=int, default=0, help="latency.measure.uncertain (the product's default, 1, "
                    "measures nearly every trial of a short study and leaves no held-out set)")
    ap.add_argument("--space-specs", type=int, default=20, help="specs drawn from the space, never tried by the "
                    "study, exported and timed as a second held-out set")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench-closed-loop"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "study.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        name: loop
        n_trials: {args.n}
        warm_start: [abpn]
        proxy: {{steps: {args.steps}}}
        export: {{input_size: {args.input_size}}}
        latency: {{model: vs680, board: {args.board}, measure: {{runs: {args.runs}, uncertain: {args.uncertain}}}}}
        out: {work}
        """))
    summary = run_search(load_search_config(cfg))
    folder = summary.study.folder
    model = load_latency_model(folder / "latency" / "current.json")
    times = measured_times(folder)
    hw = model.input_hw
    print(f"study {folder}: {summary.complete} complete, {len(times)} measured on {model.board} at {hw[0]}x{hw[1]}")

    print("\nthe front, measured by the loop vs the final model's prediction:")
    errs = []
    for p in summary.front:
        t = times.get(p.hash)
        e = None if t is None else p.latency_ms / t.median_ms - 1
        errs.append(e)
        print(f"  #{p.number:<3d} {p.spec:<55} predicted {p.latency_ms:8.2f} ms  measured "
              + ("    (not measured)" if t is None else f"{t.median_ms:8.2f} ms  {100 * e:+6.1f}%"))
    measured_front = [e for e in errs if e is not None]
    print(f"  front members measured: {len(measured_front)} of {len(errs)}; largest error "
          f"{100 * max(map(abs, measured_front), default=float('nan')):.1f}% (goal: all measured, within 5%)")

    # every completed trial's model timed again, interleaved: held-out accuracy and repeatability
    st = load_optuna_study(summary.study)
    seen, trials = set(), []
    for t in st.get_trials(deepcopy=False):
        rec = TrialRecord.from_attrs(t.user_attrs)
        path = summary.study.trial_dir(t.number) / "model_int8.tflite"
        if rec.spec and rec.hash not in seen and path.exists():
            seen.add(rec.hash)
            trials.append((ArchSpec.from_dict(rec.spec), path))
    # and specs of the space the study never tried (drawn uniformly over its choices): the space, not the study
    space = load_space(summary.study.config.space)
    rng = np.random.default_rng(args.seed)
    tried = {s.hash for s, _ in trials}
    fresh: dict[str, ArchSpec] = {}
    while len(fresh) < args.space_specs:
        s = space.sample(rng)
        if s.hash not in tried:
            fresh.setdefault(s.hash, s)
    work_space = work / "space-specs"
    measure_specs(list(fresh.values()), None, work_space, input_hw=hw)  # export only (kept for a second run)
    items = trials + [(s, work_space / "models" / f"{s.hash}.tflite") for s in fresh.values()]
    board = make_board(args.board, runs=args.runs)
    again: dict[str, float] = {}
    for rnd in range(2):  # everything timed again in two shuffled rounds; each keeps its fastest
        order = list(items)
        random.Random(rnd).shuffle(order)
        for spec, path in order:
            ms = board.measure(path).median_ms
            again[spec.hash] = min(ms, again.get(spec.hash, ms))
    rep = [abs(again[h] / t.median_ms - 1) for h, t in times.items() if h in again]
    held = [(s, again[s.hash]) for s, _ in trials if s.hash not in times]
    unseen = [(s, again[s.hash]) for s in fresh.values()]
    print(f"\nrepeatability: {len(rep)} measured models timed again: median |change| {100 * np.median(rep):.1f}%, "
          f"max {100 * max(rep):.1f}%" if rep else "\nrepeatability: nothing measured")
    samples = [Sample(t.hash, deploy_ops(ArchSpec.from_json(t.spec), *hw), t.median_ms) for t in times.values()]
    prior = load_latency_model("vs680")
    variants = {
        "final model (fit + residual correction)": model,
        "same fit, no residual correction": model.without_residuals(),
        "prior (vs680) scaled to the measurements": scale_model(prior, samples, board=model.board, input_hw=hw),
    }
    for what, pairs in ((f"{len(held)} completed trials the loop never measured", held),
                        (f"{len(unseen)} specs of the space the study never tried", unseen)):
        if len(pairs) < 3:
            print(f"\nheld-out: {what}: too few to report")
            continue
        print(f"\nheld-out: {what}")
        print(f"  {'model':<44} {'MAPE':>7} {'Spearman':>9} {'within10':>9} {'max':>7}")
        y = [ms for _, ms in pairs]
        for name, m in variants.items():
            acc = Accuracy.of(y, [m.predict(s).mean_ms for s, _ in pairs], 1)
            print(f"  {name:<44} {100 * acc.mape:6.1f}%  {acc.spearman:8.3f}  {100 * acc.within_10:7.1f}%  "
                  f"{100 * acc.max_ape:6.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
