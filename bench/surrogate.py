"""The surrogate benchmark: how well a regression fitted to a benchmark table ranks specs it was not fitted on.

    python -m bench.surrogate [--table bench/tables/mai2022-300.csv] [--heldout CSV] [--kinds forest,boosting,gp,
                              ensemble] [--folds 5] [--out NAME.json]

Every kind of :mod:`nas.benchmark`'s surrogate is scored by ``--folds``-fold cross-validation over the table's
completed rows and, with ``--heldout`` (a table of specs kept out of every fit, made on the same space), on those:
Kendall tau overall and within the top quartile of the true INT8 PSNR (where a search lives), and the mean absolute
error. The issue's goal for the per-layer space's surrogate: held-out tau >= 0.8 overall and >= 0.6 in the top
quartile. The result goes to ``bench/results/surrogate-<space>.json`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench._harness import RESULTS, ROOT, goal_line, write_result
from nas.benchmark import SURROGATE_KINDS, BenchTable, cross_validate, held_out
from nas.space import load_space


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default=str(ROOT / "bench" / "tables" / "mai2022-300.csv"))
    ap.add_argument("--heldout", default=None, help="a table of specs kept out of every fit (same space)")
    ap.add_argument("--kinds", default=",".join(SURROGATE_KINDS))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    table = BenchTable.read_csv(a.table)
    space = load_space(table.meta["space"])
    test = BenchTable.read_csv(a.heldout) if a.heldout else None
    done = sum(r.state == "complete" for r in table.rows)
    print(f"surrogates of INT8 PSNR on space '{space.name}': {a.table} ({done} completed rows)"
          + (f", held out: {a.heldout}" if test else ""))
    print(f"  {'kind':<10} {'cv tau':>7} {'cv top-q tau':>13} {'cv MAE dB':>10}"
          + (f" {'held-out tau':>13} {'top-q tau':>10} {'MAE dB':>7}" if test else "") + "   seconds")
    rows = {}
    for kind in a.kinds.split(","):
        t0 = time.perf_counter()
        cv = cross_validate(table.rows, space, kind, folds=a.folds, seed=a.seed)
        ho = held_out(table.rows, test.rows, space, kind, seed=a.seed) if test else None
        secs = time.perf_counter() - t0
        rows[kind] = {"cv": cv.to_dict(), "heldout": ho.to_dict() if ho else None, "seconds": secs}
        line = f"  {kind:<10} {cv.kendall_tau:7.3f} {cv.top_quartile_kendall_tau:13.3f} {cv.mae_db:10.3f}"
        if ho:
            line += f" {ho.kendall_tau:13.3f} {ho.top_quartile_kendall_tau:10.3f} {ho.mae_db:7.3f}"
        print(line + f"   {secs:7.1f}", flush=True)
    pick = max(rows, key=lambda k: (rows[k]["heldout"] or rows[k]["cv"])["top_quartile_kendall_tau"])
    best = rows[pick]["heldout"]
    def where(path):
        path = Path(path).resolve()
        return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)

    result = {"space": space.name, "table": where(a.table), "heldout_table": where(a.heldout) if a.heldout else None, "folds": a.folds,
              "kinds": rows, "chosen": pick,
              "heldout_n": best["n"] if best else None,
              "heldout_kendall_tau": best["kendall_tau"] if best else None,
              "top_quartile_kendall_tau": best["top_quartile_kendall_tau"] if best else None,
              "heldout_mae_db": best["mae_db"] if best else None,
              "top_quartile_noise_ceiling_tau": None}  # (needs top-quartile specs trained under 3 seeds)
    out = write_result(RESULTS / (a.out or f"surrogate-{space.name}.json"), result)
    print(f"chosen by top-quartile tau: {pick}; written to {out.relative_to(ROOT)}")
    print(goal_line(None if best is None else best["kendall_tau"] >= 0.8, "held-out Kendall tau >= 0.8"))
    print(goal_line(None if best is None else best["top_quartile_kendall_tau"] >= 0.6,
                    "held-out top-quartile Kendall tau >= 0.6"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
