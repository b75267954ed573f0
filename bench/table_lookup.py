"""Is the benchmark table's lookup what keeps the default sampler from its goal? Two checks, side by side in one run.

    python -m bench.table_lookup [--table bench/tables/mai2022-300.csv] [--seeds 20] [--trials 64]

A study on the table (``bench/samplers.py``) answers a spec the table lacks with its nearest row's INT8 PSNR and the
spec's own latency. Only a few percent of trials land on a row, so a sampler learns a landscape of borrowed answers.

1. **Ceiling.** It prints the hypervolume of every completed row of the table (each at its own latency), and random
   search's median hypervolume after 8, 16, 32 and 64 trials as a share of it. When random's 64 trials already
   reach the whole table's front, no sampler can reach random's final value much sooner: the goal asks it to find
   the front itself.
2. **Exact answers.** It runs the product's samplers (``--samplers``, default random, TPE and the hardware-aware
   ``latency_gp``, each as the product makes it) in plain Optuna loops, in two modes:
   - ``nearest``: the trial keeps its own parameters and gets its nearest row's result, as in a table study;
   - ``snap``: the trial is replaced by its nearest row (its parameters and result), so every answer the sampler
     learns from is exact.
   For each: median hypervolume at 8, 16, 32 and 64 trials, the median best log2 score at 32 trials, and trials to
   reach random's median 64-trial hypervolume in the same mode (median over seeds, a seed that never reaches it
   counting as infinite).

This bench runs Optuna directly, not the product's driver (the driver cannot swap a trial's parameters); the
``nearest`` rows reproduce ``bench/samplers.py``'s sequential figures within their spread. No warm start, pruning or
constraints here.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

from nas.benchmark import BenchTable
from nas.evaluate import log2_score
from nas.latency import load_latency_model
from nas.search.pareto import hypervolume_history
from nas.search.samplers import optuna_distributions
from nas.space import load_space

REF = (27.0, 80.0)  # bench/samplers.py's reference point (same figures)
MODES = ("nearest", "snap")


def _sampler(name: str, seed: int, objective: str, table: BenchTable):
    """The product's sampler ``name`` for a study on ``table`` (its space and latency model)."""
    from nas.search import SearchConfig
    from nas.search.samplers import make_sampler

    return make_sampler(SearchConfig(sampler={"name": name}, seed=seed, objective=objective, space=table.meta["space"],
                                     latency={"model": table.meta["latency_model"],
                                              "k": table.meta.get("latency_k", 1.0)}))


def run(table: BenchTable, space, latency, k: float, sampler: str, mode: str, objective: str, seed: int,
        trials: int) -> list[tuple[float, float] | None]:
    """One study: each trial's (INT8 PSNR, pessimistic latency), or None for an infeasible row."""
    import optuna

    st = optuna.create_study(directions=["maximize", "minimize"] if objective == "pareto" else ["maximize"],
                             sampler=_sampler(sampler, seed, objective, table))
    points = []
    for _ in range(trials):
        trial = st.ask()
        spec = space.suggest(trial)
        row, dist = table.nearest(spec)
        if row.state != "complete":
            st.tell(trial, state=optuna.trial.TrialState.FAIL)
            points.append(None)
            continue
        point = (row.int8_psnr, latency.predict(row.spec if mode == "snap" else spec).pessimistic(k))
        values = list(point) if objective == "pareto" else [log2_score(*point)]
        if mode == "snap" and dist > 0:  # the sampler learns the row, not the spec it asked for
            st.tell(trial, state=optuna.trial.TrialState.FAIL)
            params = space.params_of(row.spec)
            dists = optuna_distributions(space.replay(params)[1])
            st.add_trial(optuna.trial.create_trial(params=params, distributions=dists, values=values))
        else:
            st.tell(trial, values)
        points.append(point)
    return points


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default="bench/tables/mai2022-300.csv")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=64)
    ap.add_argument("--objectives", default="pareto,score")
    ap.add_argument("--samplers", default="random,tpe,latency_gp", help="registered names (random is the target)")
    a = ap.parse_args()
    samplers = ["random", *(s for s in a.samplers.split(",") if s != "random")]
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    table = BenchTable.read_csv(a.table)
    space = load_space(table.meta["space"])
    latency = load_latency_model(table.meta["latency_model"])
    k = table.meta.get("latency_k", 1.0)
    done = [r for r in table.rows if r.state == "complete"]
    ceiling = hypervolume_history([(r.int8_psnr, latency.predict(r.spec).pessimistic(k)) for r in done], *REF)[-1]
    print(f"table {a.table}: {len(table)} specs; hypervolume of all {len(done)} completed rows {ceiling:.1f} "
          f"(reference {REF[0]} dB, {REF[1]} ms)")
    t0 = time.perf_counter()
    budgets = [b for b in (8, 16, 32, 64) if b <= a.trials]
    for objective in a.objectives.split(","):
        print(f"\nobjective {objective}, {a.seeds} seeds, {a.trials} trials: median hypervolume; trials to reach "
              f"random's median HV@{a.trials} in the same mode")
        for mode in MODES:
            pts = {s: [run(table, space, latency, k, s, mode, objective, seed, a.trials) for seed in range(a.seeds)]
                   for s in samplers}
            hv = {s: [hypervolume_history(p, *REF) for p in pts[s]] for s in samplers}
            target = statistics.median(h[-1] for h in hv["random"])
            for s in samplers:
                med = [statistics.median(h[b - 1] for h in hv[s]) for b in budgets]
                reach = [next((i + 1 for i, v in enumerate(h) if v >= target - 1e-9), math.inf) for h in hv[s]]
                m = statistics.median(reach)
                at = min(32, a.trials)
                best = statistics.median(max((log2_score(*q) for q in p[:at] if q is not None), default=math.nan)
                                         for p in pts[s])
                cells = "  ".join(f"HV@{b} {v:6.1f} ({v / ceiling:4.0%})" for b, v in zip(budgets, med))
                print(f"  {mode:<8} {s:<10} {cells}  to reach: {'never' if math.isinf(m) else f'{m:.0f}'} "
                      f"({sum(map(math.isfinite, reach))}/{a.seeds} reach; goal <= {0.4 * a.trials:.0f}); "
                      f"best log2@{at} {best:.3f}", flush=True)
    print(f"\n(percentages: of the hypervolume of all completed rows; {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # nothing is kept: every figure is printed as soon as it is made
        print("interrupted", file=sys.stderr)
        sys.exit(130)
