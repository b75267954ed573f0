"""Are the default sampler's settings the table's choice? TPE variants side by side on the committed benchmark table.

    python -m bench.tpe_settings [--table bench/tables/mai2022-300.csv] [--seeds 20] [--trials 64]
                                 [--objective pareto] [--workers 1] [--variants FILE.json] [--jobs 2]
                                 [--json FILE] [--print-only]

Each variant is the product's TPE (multivariate, constant liar, ``sampler.n_startup_trials``) with some of Optuna's
``TPESampler`` settings changed, run as real studies on the table exactly as ``bench/samplers.py`` runs them (the
product's driver, constraints, pessimistic latency, warm start, pruner; a spec the table lacks borrows its nearest
row's PSNR), ``--seeds`` seeds each, next to random search on the same seeds. ``gamma_frac: f`` stands for
``gamma = min(ceil(f * n), 25)`` (Optuna's multi-objective default is f = 0.10). Settings the product exposes in its
config (``n_startup_trials``, ``constant_liar``) are compared by ``bench/samplers.py``'s variants instead. Optuna 4.9
deprecates ``gamma``, ``consider_endpoints`` and ``prior_weight`` (to be removed in 6.0; the product's TPE uses none
of them) and calls ``group`` experimental; their warnings are silenced here.

For each variant, medians over seeds: trials to reach random's median 64-trial hypervolume (a seed that never does
counting as infinite; how many reach), trials to reach random's median best log2 score at 64 trials, hypervolume and
best log2 score at 32 trials, the same best log2 score counting each trial as the row that answered it, and the
ratio of trials-to-hypervolume to the default's. Nothing is cached: about 3 s per study, 5 min for the default list
on 2 cores. The default run writes ``bench/results/tpe-settings.json`` (``--workers 16``: ``tpe-settings-w16.json``;
``--json`` elsewhere); ``--print-only`` prints a committed result again.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing
import signal
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

from bench import samplers as bench
from bench._harness import RESULTS, ROOT, read_result, write_result
from nas.search.samplers import SAMPLERS, register_sampler

VARIANTS: dict[str, dict] = {
    "default": {},
    "univariate": {"multivariate": False},
    "group": {"group": True},
    "endpoints": {"consider_endpoints": True},
    "ei_candidates=64": {"n_ei_candidates": 64},
    "prior_weight=0.5": {"prior_weight": 0.5},
    "gamma=0.05n": {"gamma_frac": 0.05},
    "gamma=0.2n": {"gamma_frac": 0.2},
}
"""Name -> changed ``TPESampler`` settings (``{}``: the product's TPE as it is)."""
_PREFIX = "tpe-setting-"
# (Optuna 4.9 deprecates some of these settings, and calls ``group`` experimental: said once in the docstring, not
# once per study)
warnings.filterwarnings("ignore", message=".* has been deprecated in v4", category=FutureWarning)
warnings.filterwarnings("ignore", message=".* is an experimental feature")


def _tpe_kwargs(settings: dict) -> dict:
    """A variant's settings as ``TPESampler`` arguments (``gamma_frac`` as its ``gamma``)."""
    out = dict(settings)
    if "gamma_frac" in out:
        frac = out.pop("gamma_frac")
        out["gamma"] = lambda n: min(math.ceil(frac * n), 25)
    return out


def register_variants(variants: dict[str, dict]) -> None:
    """Register each variant as a sampler of this process (``tpe-setting-NAME``): the product's TPE factory with the
    variant's settings over its own."""
    tpe = SAMPLERS["tpe"].factory
    for name, settings in variants.items():
        if _PREFIX + name not in SAMPLERS:
            register_sampler(_PREFIX + name, f"TPE with {settings or 'the product settings'} (bench/tpe_settings.py)")(
                functools.partial(tpe, **_tpe_kwargs(settings)))


def _run(job: tuple) -> tuple[tuple, dict]:
    table, sampler, objective, workers, seed, trials, work = job
    return (sampler, seed), bench.run_one(table, sampler, objective, workers, seed, trials, work)


def _curves(res: dict) -> tuple[list[float], list[float], list[float]]:
    return (bench.hypervolume_history(res["points"], *bench.REF), bench._best_log2(res["points"]),
            bench._best_log2(res["measured"]))


def compare(table: str, variants: dict[str, dict], *, seeds: int, trials: int, objective: str, workers: int,
            jobs: int) -> dict:
    """Every variant and random search, ``seeds`` studies each: the figures printed, per variant."""
    register_variants(variants)
    names = [_PREFIX + v for v in variants] + ["random"]
    with tempfile.TemporaryDirectory(prefix="tpe-settings-") as work:
        todo = [(table, s, objective, workers, seed, trials, work) for s in names for seed in range(seeds)]
        pool = multiprocessing.get_context("fork").Pool(jobs, initializer=signal.signal,
                                                        initargs=(signal.SIGINT, signal.SIG_IGN))
        try:
            results = dict(pool.imap_unordered(_run, todo))
        finally:
            pool.terminate()
            pool.join()
    curves = {k: _curves(v) for k, v in results.items()}
    target_hv = statistics.median(curves[("random", s)][0][-1] for s in range(seeds))
    target_log2 = statistics.median(curves[("random", s)][1][-1] for s in range(seeds))
    at = min(32, trials) - 1
    out = {"target_hv": target_hv, "target_log2": target_log2, "variants": {}}
    for name in [*variants, "random"]:
        key = name if name == "random" else _PREFIX + name
        cs = [curves[(key, s)] for s in range(seeds)]
        reach = [bench._to_reach(c[0], target_hv) for c in cs]
        out["variants"][name] = {
            "settings": variants.get(name, {}), "reach_hv": reach, "reach_hv_median": statistics.median(reach),
            "reach_log2_median": statistics.median(bench._to_reach(c[1], target_log2) for c in cs),
            "hv@32": statistics.median(c[0][at] for c in cs), "log2@32": statistics.median(c[1][at] for c in cs),
            "measured_log2@32": statistics.median(c[2][at] for c in cs)}  # (@trials when fewer than 32)
    return out


def _fmt_median(value: float) -> str:
    return "never" if math.isinf(value) else f"{value:.1f}"


def report(out: dict, seeds: int, trials: int) -> None:
    at = min(32, trials)
    print(f"targets: random's median {trials}-trial hypervolume {out['target_hv']:.1f}, best log2 score "
          f"{out['target_log2']:.3f} ({seeds} seeds)")
    print(f"{'variant':<18} {'trials to HV':>19} {'ratio':>6} {'trials to log2':>15} {f'HV@{at}':>7} "
          f"{f'log2@{at}':>8} {'measured':>9}  settings")
    base = out["variants"]["default"]["reach_hv_median"] if "default" in out["variants"] else math.nan
    for name, v in out["variants"].items():
        r = v["reach_hv_median"]
        # (against a default that never reaches the target in the median seed, no ratio)
        ratio = "-" if not math.isfinite(base) else f"{r / base:.2f}" if math.isfinite(r) else "inf"
        print(f"{name:<18} {bench._fmt_reach(v['reach_hv']):>19} {ratio:>6} "
              f"{_fmt_median(v['reach_log2_median']):>15} "
              f"{v['hv@32']:>7.1f} {v['log2@32']:>8.3f} {v['measured_log2@32']:>9.3f}  "
              f"{json.dumps(v['settings']) if name != 'random' else ''}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default=str(ROOT / "bench" / "tables" / "mai2022-300.csv"))
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=64)
    ap.add_argument("--objective", default="pareto", choices=("pareto", "score"))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--variants", default="", help="a JSON file of {name: {TPESampler setting: value}} "
                                                   "(default: the list in this file)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", default="", help="write the result here (default: bench/results/tpe-settings.json, "
                                               "-w16.json with --workers 16, for the default variants and table)")
    ap.add_argument("--print-only", action="store_true", help="print the result kept in --json")
    a = ap.parse_args()
    default_run = not a.variants and Path(a.table) == ROOT / "bench" / "tables" / "mai2022-300.csv"
    json_path = a.json or (str(RESULTS / f"tpe-settings{'-w16' if a.workers == 16 else ''}.json")
                           if default_run and a.workers in (1, 16) and a.objective == "pareto" else "")
    if a.print_only:
        kept = read_result(json_path) if json_path else None
        if kept is None:
            raise SystemExit(f"no kept result{' at ' + json_path if json_path else ''}: run without --print-only")
        report(kept, kept["seeds"], kept["trials"])
        return 0
    variants = dict(VARIANTS)
    if a.variants:
        try:
            given = json.loads(Path(a.variants).read_text())
        except (OSError, ValueError) as e:
            raise SystemExit(f"--variants {a.variants}: {e}") from None
        if not isinstance(given, dict) or not all(isinstance(v, dict) for v in given.values()):
            raise SystemExit(f"--variants {a.variants}: expected a JSON object of {{name: {{setting: value}}}}")
        variants = {"default": {}, **given}
    import optuna

    for name, settings in variants.items():  # (a setting TPE does not take stops the run here, named)
        try:
            optuna.samplers.TPESampler(**_tpe_kwargs(settings))
        except (TypeError, ValueError) as e:
            raise SystemExit(f"--variants: variant '{name}' {settings}: {e}") from None
    try:
        out = compare(a.table, variants, seeds=a.seeds, trials=a.trials, objective=a.objective, workers=a.workers,
                      jobs=a.jobs)
    except KeyboardInterrupt:
        print("interrupted (nothing is cached: run it again)", file=sys.stderr)
        return 130
    out.update(seeds=a.seeds, trials=a.trials, workers=a.workers, objective=a.objective)
    if json_path:
        write_result(json_path, out)
    report(out, a.seeds, a.trials)
    return 0


if __name__ == "__main__":
    sys.exit(main())
