"""Search quality the way NAS papers measure it: every sampler run many times on the committed benchmark table.

    python -m bench.samplers [--table bench/tables/mai2022-300.csv] [--seeds 20] [--trials 64] [--workers 1,4,16]
                             [--samplers tpe,latency_gp,gp,nsga2,evolution,random] [--objectives pareto,score]
                             [--jobs 2] [--ref 27,80 | --ref bicubic,40]
                             [--true-table bench/tables/mai2022-3000.csv] [--json FILE]
                             [--work runs/bench-samplers] [--png bench/figures/samplers.png] [--budget-ms MS]

Each run is a real study (the product's driver, Optuna storage, constraints, pessimistic latency, warm start,
pruner) whose trials look their results up in the table (``table:`` in the config; a spec the table lacks gets its
nearest row), on ``--workers`` simulated workers that finish in the order of the table's training seconds. For each
sampler, objective and worker count, over ``--seeds`` seeds:

* hypervolume of the front (INT8 PSNR vs the pessimistic VS680 latency, reference point REF below) and best log2
  score after 8, 16, 32 and 64 trials: median and interquartile range;
* how many of the first 32 trials gave no point (infeasible, pruned or failed), median over seeds;
* trials each sampler needs to reach random search's median 64-trial hypervolume (median over every seed, a run that
  never reaches it counting as infinite);
* with 4 and 16 workers: the sample efficiency kept (sequential trials-to-target / parallel trials-to-target);
* the best zoo network of the table (same proxy, same latency model) against the default search at 32 trials;
* the goals of issue 15, each marked met or not;
* with ``--true-table`` (a table of some of the same specs trained 10x longer): how the proxy's ranking of those specs
  agrees with the longer training's, and what trusting the proxy costs.

``--budget-ms`` gives every study a latency budget (a constraint on the pessimistic latency, as in a user's config):
a trial over it gives no point, and the table's front and zoo networks are taken within it.
``--samplers`` takes registered names or variants with settings (``tpe:n_startup_trials=10:constant_liar=false``).
Runs are cached in ``--work`` (a second run only prints). ``gp`` needs PyTorch; without it, it is skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import multiprocessing
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path

from bench._harness import goal_line
from nas.benchmark import BenchTable, TableExecutors
from nas.evaluate import log2_score
from nas.latency import load_latency_model
from nas.search import SearchConfig, run_search
from nas.search import TrialRecord
from nas.search import load_optuna_study, open_study
from nas.search import NullTrialLog
from nas.search.pareto import hypervolume_history
from nas.space import load_space, zoo_entries

REF = (27.0, 80.0)
"""The hypervolume's fixed reference point: (INT8 PSNR dB, pessimistic VS680 latency ms). Fixed here, not taken
from the runs, so that figures of different runs and tables compare."""
BUDGETS = (8, 16, 32, 64)
DEFAULT = "tpe"


def run_one(table_path: str, sampler: str, objective: str, workers: int, seed: int, trials: int, work: str,
            budget_ms: float | None = None) -> dict:
    """One study on the table; the finished trials in the order they finished: their points, the points of the rows
    that answered them, and their (spec hash, trial it duplicates)."""
    table = BenchTable.read_csv(table_path)
    name = f"{sampler.replace(':', '_').replace('=', '-')}-{objective}-w{workers}-s{seed}{_budget_tag(budget_ms)}"
    folder = Path(work) / "studies"
    cfg = SearchConfig.model_validate({
        "name": name, "out": str(folder), "n_trials": trials, "workers": workers, "seed": seed, "table": table_path,
        "objective": objective, "sampler": sampler_config(sampler), "storage": f"journal:///{folder}/{name}.log",
        "export": {"input_size": table.meta.get("input_size")}, "latency": {"budget_ms": budget_ms}})
    # a study an interrupted run left behind would be resumed (another trajectory): every run starts afresh
    shutil.rmtree(cfg.study_dir, ignore_errors=True)
    Path(f"{folder}/{name}.log").unlink(missing_ok=True)
    order: list[int] = []
    executors = TableExecutors(table)
    made = executors.made
    t0 = time.perf_counter()
    run_search(cfg, callback=lambda ev: order.append(ev.number) if ev.kind == "finish" and ev.number is not None
               else None, executors=executors, trial_log=NullTrialLog(), plots=False)
    wall = time.perf_counter() - t0
    st = load_optuna_study(open_study(cfg.study_dir))
    by = {t.number: t for t in st.get_trials(deepcopy=False)}
    latency = _pessimistic(table)
    points, measured, specs = [], [], []
    for n in order:
        t = by[n]
        rec = TrialRecord.from_attrs(t.user_attrs)
        specs.append((rec.hash, rec.duplicate_of))
        ok = t.state.name == "COMPLETE" and rec.feasible
        points.append((rec.metrics["int8_psnr"], rec.latency_objective_ms) if ok else None)
        # the same trial counted as the row that answered it (its PSNR at its own latency: a pair that was measured)
        row = made[0].answered[n if rec.duplicate_of is None else rec.duplicate_of] if ok else None
        measured.append((row.int8_psnr, latency(row.spec)) if ok else None)
    shutil.rmtree(cfg.study_dir, ignore_errors=True)
    Path(f"{folder}/{name}.log").unlink(missing_ok=True)
    return {"points": points, "measured": measured, "specs": specs, "sim_s": made[0].clock, "lookups": made[0].lookups,
            "wall_s": wall}


def _run_task(job: tuple) -> tuple[tuple, dict]:
    """One study of the pool: (its key, its result)."""
    table, sampler, objective, workers, seed, trials, work, budget_ms = job
    return (sampler, objective, workers, seed), run_one(table, sampler, objective, workers, seed, trials, work,
                                                        budget_ms)


def sampler_config(variant: str) -> dict:
    """``tpe`` or a variant with settings: ``tpe:n_startup_trials=10:constant_liar=false`` (values as JSON)."""
    name, *opts = variant.split(":")
    return {"name": name, **{k: json.loads(v) for k, v in (o.split("=", 1) for o in opts)}}


def _budget_tag(budget_ms: float | None) -> str:
    return "" if budget_ms is None else f"-b{budget_ms:g}"


def _key(sampler, objective, workers, seed, trials, digest, budget_ms=None) -> str:
    return f"{sampler}-{objective}-w{workers}-s{seed}-n{trials}{_budget_tag(budget_ms)}-{digest}"


def _median_iqr(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return statistics.median(values), q[0], q[2]


def _to_reach(hv: list[float], target: float) -> float:
    """Trials until ``hv`` reaches ``target``; infinity for a run that never does (so that a median over seeds counts
    the runs that fail instead of leaving them out)."""
    return next((i + 1 for i, v in enumerate(hv) if v >= target - 1e-9), math.inf)


def _fmt_reach(values: list[float]) -> str:
    med = statistics.median(values)
    got = sum(math.isfinite(v) for v in values)
    return f"{'never' if math.isinf(med) else f'{med:.0f}'} ({got}/{len(values)} reach)"


def _best_log2(points) -> list[float]:
    out, best = [], float("-inf")
    for p in points:
        if p is not None:
            best = max(best, log2_score(*p))
        out.append(best)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default="bench/tables/mai2022-300.csv")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=64)
    ap.add_argument("--workers", default="1,4,16")
    ap.add_argument("--samplers", default="tpe,latency_gp,gp,nsga2,evolution,random",
                    help="registered names, or variants with settings: tpe:n_startup_trials=10:constant_liar=false")
    ap.add_argument("--objectives", default="pareto,score")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--work", default="runs/bench-samplers")
    ap.add_argument("--png", default=None, help="the curves ('' for none; default bench/figures/samplers.png, none "
                                                "with --budget-ms)")
    ap.add_argument("--budget-ms", type=float, default=None, help="a latency budget for every study (ms)")
    ap.add_argument("--ref", default=f"{REF[0]:g},{REF[1]:g}",
                    help="the hypervolume's reference point, PSNR dB,latency ms ('bicubic,40': the table's bicubic "
                         "PSNR and real time, 25 FPS at Full HD on the VS680); the cached runs are only re-summed")
    ap.add_argument("--json", default="", help="also write the figures here")
    ap.add_argument("--true-table", default="bench/tables/mai2022-3000.csv",
                    help="a table of some of the same specs trained longer (skipped when the file is not there)")
    a = ap.parse_args()
    if a.png is None:
        a.png = "" if a.budget_ms is not None else "bench/figures/samplers.png"
    if a.budget_ms is not None and a.budget_ms <= 0:
        ap.error(f"--budget-ms must be positive, not {a.budget_ms:g}")
    table = BenchTable.read_csv(a.table)
    ref = _ref_point(a.ref, table)
    samplers = [s for s in a.samplers.split(",") if not s.startswith("gp") or importlib.util.find_spec("torch")]
    if len(samplers) < len(a.samplers.split(",")):
        print("gp: skipped (PyTorch is not installed: pip install 'npu-nas[gp]')")
    workers = sorted({1, *(int(w) for w in a.workers.split(","))})  # sequential runs are the baseline
    objectives = a.objectives.split(",")
    work = Path(a.work)
    cache_dir = work / "results"
    cache_dir.mkdir(parents=True, exist_ok=True)
    runs = [(s, o, w, seed) for o in objectives for s in samplers for w in workers for seed in range(a.seeds)]
    results: dict[tuple, dict] = {}
    todo = []
    for r in runs:
        f = cache_dir / f"{_key(*r, a.trials, table.digest, a.budget_ms)}.json"
        cached = json.loads(f.read_text()) if f.exists() else {}
        if "measured" in cached:  # (a study cached before the measured points were kept is run again)
            results[r] = cached
        else:
            todo.append(r)
    print(f"table {a.table}: {len(table)} specs ({table.meta.get('study')}, proxy {table.meta['proxy']['steps']} "
          f"steps); {len(runs)} studies of {a.trials} trials, {len(todo)} to run")
    t0 = time.perf_counter()
    # the workers ignore Ctrl-C; this process stops them and keeps every study already finished
    pool = multiprocessing.get_context("fork").Pool(a.jobs, initializer=signal.signal,
                                                    initargs=(signal.SIGINT, signal.SIG_IGN))
    try:
        jobs = [(a.table, *r, a.trials, str(work), a.budget_ms) for r in todo]
        for i, (r, res) in enumerate(pool.imap_unordered(_run_task, jobs), 1):
            results[r] = res
            f = cache_dir / f"{_key(*r, a.trials, table.digest, a.budget_ms)}.json"
            f.with_suffix(".tmp").write_text(json.dumps(res))
            f.with_suffix(".tmp").replace(f)
            if i % 20 == 0 or i == len(todo):
                print(f"  {i}/{len(todo)} studies ({time.perf_counter() - t0:.0f} s)", flush=True)
    except KeyboardInterrupt:
        done = sum(1 for r in todo if r in results)
        print(f"interrupted: {done} of {len(todo)} studies finished and kept in {cache_dir}; the same command "
              "goes on from them", file=sys.stderr)
        return 130
    finally:  # (every task has finished, or the run stops: a worker's error is raised, not hidden by the join)
        pool.terminate()
        pool.join()
    hv = {r: hypervolume_history(v["points"], *ref) for r, v in results.items()}
    lg = {r: _best_log2(v["points"]) for r, v in results.items()}
    lgm = {r: _best_log2(v["measured"]) for r, v in results.items()}
    summary = summarise(table, results, hv, lg, samplers, objectives, workers, a.seeds, a.trials, lgm, a.budget_ms,
                        ref)
    if a.true_table and Path(a.true_table).exists():
        summary["true"] = true_ranking(table, BenchTable.read_csv(a.true_table))
    report(summary)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(_strict(summary), indent=1, allow_nan=False))
    if a.png:
        _plot(hv, lg, samplers, objectives, workers, a.seeds, a.trials, Path(a.png), summary)
    return 0


def _strict(value):
    """``value`` with each infinite or NaN float as None (``--json`` is strict JSON: a run that never reaches the
    target is null there)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def _pessimistic(table: BenchTable):
    """spec -> its pessimistic latency (ms) under the table's latency model and k."""
    lat = load_latency_model(table.meta["latency_model"])
    k = table.meta.get("latency_k", 1.0)
    return lambda spec: lat.predict(spec).pessimistic(k)


def _row_points(table: BenchTable, budget_ms: float | None = None) -> list[tuple[float, float]]:
    """(INT8 PSNR, pessimistic latency) of every completed row of the table (within the budget)."""
    latency = _pessimistic(table)
    pts = [(r.int8_psnr, latency(r.spec)) for r in table.rows if r.state == "complete"]
    return [p for p in pts if budget_ms is None or p[1] <= budget_ms]


def _ref_point(text: str, table: BenchTable) -> tuple[float, float]:
    """``--ref``: "PSNR,ms", where the PSNR may be ``bicubic`` (the table's bicubic x3 on its validation images)."""
    psnr, ms = (v.strip() for v in text.split(","))
    if psnr == "bicubic":
        psnr = (table.meta.get("references") or {}).get("bicubic x3")
        if psnr is None:
            raise SystemExit(f"--ref bicubic: the table has no bicubic reference ({sorted(table.meta)})")
    return float(psnr), float(ms)


def _front_hv(table: BenchTable, budget_ms: float | None = None, ref: tuple[float, float] = REF) -> float:
    """The hypervolume of every completed row of the table, each at its own pessimistic latency: about the most a
    study on the table can reach (a spec the table lacks borrows its nearest row's PSNR, so a little more)."""
    return hypervolume_history(_row_points(table, budget_ms), *ref)[-1]


def _best_row(table: BenchTable, budget_ms: float | None = None) -> float:
    """The best log2 score of a completed row of the table (at its own pessimistic latency)."""
    return max((log2_score(*p) for p in _row_points(table, budget_ms)), default=float("-inf"))


def _zoo_best(table: BenchTable, budget_ms: float | None = None) -> tuple[float, str]:
    space = load_space(table.meta["space"])
    latency = _pessimistic(table)
    best = (float("-inf"), "")
    for e in zoo_entries():
        row = table.get(space.project(e.spec))
        if row is not None and row.state == "complete" and (budget_ms is None or latency(row.spec) <= budget_ms):
            best = max(best, (log2_score(row.int8_psnr, latency(row.spec)), e.name))
    return best


def true_ranking(table: BenchTable, true: BenchTable) -> dict:
    """The table against a table of the same specs trained longer (``--true-table``: the ranking the search is
    ultimately judged by): Kendall tau of INT8 PSNR and of the log2 score over the specs both hold, and what trusting
    the proxy costs: the longer training's log2 score (and rank) of the proxy's best spec against the best there is,
    and how many of the log2 score's top 5 the two rankings share."""
    from scipy.stats import kendalltau

    if true.meta.get("space_digest") != table.meta.get("space_digest"):
        raise SystemExit(f"--true-table is of another space ({true.meta.get('space')}) than the table")
    latency = _pessimistic(table)
    pairs = [(r, true.get(r.spec)) for r in table.rows if r.state == "complete"]
    pairs = [(a, b) for a, b in pairs if b is not None and b.state == "complete"]
    if len(pairs) < 3:
        raise SystemExit(f"--true-table shares {len(pairs)} completed specs with the table; 3 are needed")

    def score(r):
        return log2_score(r.int8_psnr, latency(r.spec))

    proxy_scores, true_scores = [score(a) for a, _ in pairs], [score(b) for _, b in pairs]
    by_proxy = sorted(range(len(pairs)), key=lambda i: -proxy_scores[i])  # (stable: the first of equals leads)
    by_true = sorted(range(len(pairs)), key=lambda i: -true_scores[i])
    proxy_best, true_best = pairs[by_proxy[0]], pairs[by_true[0]]
    k = min(5, len(pairs))
    return {"specs": len(pairs), "steps": true.meta["proxy"]["steps"], "top_k": k,
            "top_k_shared": len(set(by_true[:k]) & set(by_proxy[:k])),
            "proxy_best_true_rank": by_true.index(by_proxy[0]) + 1,
            "tau_psnr": float(kendalltau([a.int8_psnr for a, _ in pairs], [b.int8_psnr for _, b in pairs]).statistic),
            "tau_log2": float(kendalltau(proxy_scores, true_scores).statistic),
            "proxy_best": proxy_best[0].spec.describe(), "proxy_best_true_log2": true_scores[by_proxy[0]],
            "true_best": true_best[1].spec.describe(), "true_best_log2": true_scores[by_true[0]]}


def summarise(table, results, hv, lg, samplers, objectives, workers, seeds, trials, lgm, budget_ms=None,
              ref: tuple[float, float] = REF) -> dict:
    """The figures of the comparison (what is printed, and written to ``--json``); ``hv`` and ``lg``: each run's
    hypervolume and best log2 score after each trial; ``lgm``: its best log2 score counting each trial as the row
    that answered it (``measured``); ``budget_ms``: the studies' latency budget (the table's rows within it)."""
    budgets = [b for b in BUDGETS if b <= trials]
    exact = sum(v["lookups"]["exact"] for v in results.values())
    total = sum(sum(v["lookups"].values()) for v in results.values())
    zoo_log2, zoo_name = _zoo_best(table, budget_ms)
    fid = table.leave_one_out()
    out = {"table": {"specs": len(table), "digest": table.digest, "proxy_steps": table.meta["proxy"]["steps"],
                     "exact_share": exact / max(total, 1), "loo_mae_db": fid.mae_db, "loo_tau": fid.tau,
                     "loo_mean_only_mae_db": fid.mean_only_mae_db, "loo_describe": fid.describe(),
                     "front_hv": _front_hv(table, budget_ms, ref)}, "budget_ms": budget_ms,
           "ref": list(ref), "seeds": seeds, "trials": trials, "budgets": budgets, "workers": workers, "default": DEFAULT,
           "zoo": {"name": zoo_name, "log2": zoo_log2}, "table_best_log2": _best_row(table, budget_ms),
           "objectives": {}}
    for o in objectives:
        have_random = "random" in samplers
        target = statistics.median(hv[("random", o, 1, s)][trials - 1] for s in range(seeds)) if have_random else None
        target_log2 = (statistics.median(lg[("random", o, 1, s)][trials - 1] for s in range(seeds)) if have_random
                       else None)
        rows = {}
        for smp in samplers:
            row = {"wall_s": statistics.median(results[(smp, o, 1, seed)]["wall_s"] for seed in range(seeds))}
            at = min(32, trials)  # trials that gave no point (infeasible, pruned or failed) among the first ``at``
            row[f"no_point@{at}"] = statistics.median(sum(p is None for p in results[(smp, o, 1, seed)]["points"][:at])
                                                      for seed in range(seeds))
            for b in budgets:
                row[f"hv@{b}"] = _median_iqr([hv[(smp, o, 1, seed)][b - 1] for seed in range(seeds)])
                row[f"log2@{b}"] = _median_iqr([lg[(smp, o, 1, seed)][b - 1] for seed in range(seeds)])
                row[f"measured_log2@{b}"] = _median_iqr([lgm[(smp, o, 1, seed)][b - 1] for seed in range(seeds)])
            if target is not None:
                for w in workers:
                    reach = [_to_reach(hv[(smp, o, w, seed)], target) for seed in range(seeds)]
                    row[f"reach_w{w}"] = reach
                    row[f"reach_w{w}_median"] = statistics.median(reach)
                    reach = [_to_reach(lg[(smp, o, w, seed)], target_log2) for seed in range(seeds)]
                    row[f"reach_log2_w{w}"] = reach
                    row[f"reach_log2_w{w}_median"] = statistics.median(reach)
            seq = [statistics.median(hv[(smp, o, 1, seed)][i] for seed in range(seeds)) for i in range(trials)]
            for w in workers[1:]:
                # what the parallel study's trials are worth: the sequential trials whose median hypervolume reaches
                # the parallel study's median at the full budget, per parallel trial (defined where trials-to-reach
                # is not: a sampler that never reaches random's value in the median seed)
                par = statistics.median(hv[(smp, o, w, seed)][trials - 1] for seed in range(seeds))
                row[f"worth_w{w}"] = _to_reach(seq, par) / trials
            rows[smp] = row
        out["objectives"][o] = {"target_hv": target, "target_log2": target_log2, "samplers": rows}
    return out


def _parallel_lines(rows: dict, key: str, workers: list[int], trials: int) -> None:
    """One line per sampler: trials to reach (``key``: reach, reach_log2) with each worker count, the efficiency kept
    against 1 worker, and what the parallel trials are worth sequentially (hypervolume only)."""
    for smp, row in rows.items():
        base = row[f"{key}_w1_median"]
        cells = []
        for w in workers:
            med = row[f"{key}_w{w}_median"]
            eff = f" ({base / med:.0%})" if w != 1 and math.isfinite(med) and math.isfinite(base) else ""
            worth = row.get(f"worth_w{w}") if key == "reach" else None
            worth = ("" if worth is None else f", {trials} trials worth "
                     f"{'more than 100%' if math.isinf(worth) else f'{worth:.0%}'} as many sequential")
            cells.append(f"{w:>2} workers {_fmt_reach(row[f'{key}_w{w}'])}{eff}{worth}")
        print(f"  {smp:<10} " + "; ".join(cells))


def _cell(m: tuple[float, float, float], fmt: str = "6.1f") -> str:
    return f"{m[0]:{fmt}} [{m[1]:{fmt}},{m[2]:{fmt}}]"


def report(summary: dict) -> dict[str, bool]:
    """Print the summary; return the goals and whether each is met."""
    t, seeds, trials, budgets = summary["table"], summary["seeds"], summary["trials"], summary["budgets"]
    workers, default = summary["workers"], summary["default"]
    ref = summary["ref"]
    print(f"hypervolume reference point: INT8 PSNR {ref[0]} dB, pessimistic latency {ref[1]} ms")
    if summary.get("budget_ms") is not None:
        print(f"latency budget {summary['budget_ms']:g} ms (pessimistic): a trial over it gives no point; "
              "the table's rows and zoo networks within it")
    print(f"{t['exact_share']:.0%} of the trials' specs were in the table; {t['loo_describe']}")
    goals: dict[str, bool] = {}
    zoo = summary["zoo"]
    for o, res in summary["objectives"].items():
        rows, target = res["samplers"], res["target_hv"]
        print(f"\nobjective {o}, sequential (1 worker), {seeds} seeds: median [interquartile range]")
        head = "  ".join(f"{'HV@' + str(b):<19}" for b in budgets)
        at = min(32, trials)
        print(f"  {'sampler':<10} {head}  {'to random HV@' + str(trials):>18}  {'best log2@' + str(at):>22}  "
              f"{'measured rows':>22}  {'to random log2@' + str(trials):>20}  {'no point@' + str(at):>11}  s/study")
        for smp, row in rows.items():
            cells = "  ".join(_cell(row[f"hv@{b}"]) for b in budgets)
            need = _fmt_reach(row["reach_w1"]) if target is not None else "-"
            need_log2 = _fmt_reach(row["reach_log2_w1"]) if target is not None else "-"
            print(f"  {smp:<10} {cells}  {need:>18}  {_cell(row[f'log2@{at}'], '6.3f'):>22}  "
                  f"{_cell(row[f'measured_log2@{at}'], '6.3f'):>22}  {need_log2:>20}  "
                  f"{row.get(f'no_point@{at}', math.nan):>11.1f}  {row['wall_s']:7.1f}")
        if target is None:
            continue
        print(f"  random's median {trials}-trial hypervolume: {target:.1f} ({target / t['front_hv']:.0%} of the "
              f"hypervolume of all the table's completed rows, {t['front_hv']:.1f}); its median best log2 score: "
              f"{res['target_log2']:.3f}")
        if len(workers) > 1:
            print(f"  with parallel workers (finishing in the order of the table's training seconds): trials to reach "
                  f"random's sequential HV@{trials}, median over seeds; in brackets the sample efficiency kept against "
                  f"1 worker (its trials-to-reach / these)")
            _parallel_lines(rows, "reach", workers, trials)
            print(f"  the same by the best log2 score: trials to reach random's sequential median best log2@{trials}")
            _parallel_lines(rows, "reach_log2", workers, trials)
        if default not in rows:
            continue
        d = rows[default]
        need = d["reach_w1_median"]
        goals[f"{o}: {default} reaches random's HV@{trials} within 40% of its trials (<= {0.4 * trials:.1f}); "
              f"median {need:.0f}"] = need <= 0.4 * trials
        need = d["reach_log2_w1_median"]  # (the same goal by the score, what the score objective optimises)
        goals[f"{o}: {default} reaches random's best log2@{trials} within 40% of its trials (<= {0.4 * trials:.1f}); "
              f"median {need:.0f}"] = need <= 0.4 * trials
        if 16 in workers:
            base, par = d["reach_w1_median"], d["reach_w16_median"]
            if math.isinf(base):  # no sequential trials-to-reach to compare with: not a goal met
                what, eff = "undefined: 1 worker never reaches random's HV in the median seed", 0.0
            else:
                eff = base / par if math.isfinite(par) else 0.0
                what = f"{eff:.0%}"
            worth = "more than 100%" if math.isinf(d["worth_w16"]) else f"{d['worth_w16']:.0%}"
            goals[f"{o}: {default} with 16 workers keeps >= 80% of its sequential sample efficiency (trials to "
                  f"reach); {what}; {trials} parallel trials worth {worth} as many sequential"] = eff >= 0.8
        if trials >= 32 and not zoo["name"]:
            print("  no zoo network of the table is within the latency budget: no comparison with the zoo")
        elif trials >= 32:
            m = d["log2@32"][0]
            mm = d["measured_log2@32"][0]
            print(f"  best zoo network in the table: {zoo['name']} log2 score {zoo['log2']:.3f}; default ({default}) "
                  f"at 32 trials, median seed: {m:.3f} ({m - zoo['log2']:+.3f})")
            print(f"  counting each trial as the row that answered it (a measured PSNR at its own latency; a spec the "
                  f"table lacks borrows its nearest row's PSNR at its own, often lower, latency): {mm:.3f} "
                  f"({mm - zoo['log2']:+.3f}); the table's best row: {summary['table_best_log2']:.3f} "
                  f"({summary['table_best_log2'] - zoo['log2']:+.3f})")
            goals[f"{o}: {default}'s best log2 score at 32 trials >= the best zoo network's + 0.25; "
                  f"{m - zoo['log2']:+.3f} (measured rows only: {mm - zoo['log2']:+.3f})"] = m - zoo["log2"] >= 0.25
    if "true" in summary:
        tr = summary["true"]
        print(f"\nagainst the same {tr['specs']} specs trained {tr['steps']} steps: Kendall tau INT8 PSNR "
              f"{tr['tau_psnr']:.2f}, log2 score {tr['tau_log2']:.2f}; the proxy's best ({tr['proxy_best']}) scores "
              f"{tr['proxy_best_true_log2']:.3f} there (rank {tr['proxy_best_true_rank']} of {tr['specs']}), the best "
              f"({tr['true_best']}) {tr['true_best_log2']:.3f}; the two rankings share {tr['top_k_shared']} of their "
              f"top {tr['top_k']}")
    if goals:
        print("\ngoals:")
        for g, ok in goals.items():
            print(goal_line(ok, g))
    return goals


def _plot(hv, lg, samplers, objectives, workers, seeds, trials, png: Path, summary: dict) -> None:
    """One row per objective: hypervolume and best log2 score against trials (sequential, every sampler), and the
    default sampler's hypervolume with each worker count; median and interquartile range over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cols = 3 if len(workers) > 1 and DEFAULT in samplers else 2
    fig, axes = plt.subplots(len(objectives), cols, figsize=(5.2 * cols, 3.6 * len(objectives)), squeeze=False)
    x = np.arange(1, trials + 1)

    def band(ax, data, key, label):
        ys = np.array([data[(*key, seed)] for seed in range(seeds)], dtype=float)
        ys[~np.isfinite(ys)] = np.nan
        ax.plot(x, np.nanmedian(ys, axis=0), label=label)
        ax.fill_between(x, np.nanpercentile(ys, 25, axis=0), np.nanpercentile(ys, 75, axis=0), alpha=0.2)

    for j, o in enumerate(objectives):
        panels = [(hv, "hypervolume (dB x ms)", [((s, o, 1), s) for s in samplers]),
                  (lg, "best log2 score", [((s, o, 1), s) for s in samplers])]
        if cols == 3:
            panels.append((hv, f"{DEFAULT}: hypervolume (dB x ms)", [((DEFAULT, o, w), f"{w} worker{'s' * (w > 1)}")
                                                                    for w in workers]))
        for k, (data, label, lines) in enumerate(panels):
            ax = axes[j][k]
            for key, name in lines:
                band(ax, data, key, name)
            res = summary["objectives"][o]
            if data is hv and res["target_hv"] is not None:
                ax.axhline(res["target_hv"], color="grey", ls="--", lw=0.8, label=f"random's HV@{trials}")
            if data is lg:
                ax.axhline(summary["zoo"]["log2"], color="black", ls=":", lw=0.8,
                           label=f"best zoo network ({summary['zoo']['name']})")
            ax.set_xlabel("trials")
            ax.set_ylabel(label)
            ax.set_title(f"objective {o}: {label}\n(median and IQR over {seeds} seeds)", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    print(f"\nfigure: {png}")


if __name__ == "__main__":
    sys.exit(main())
