"""Proxy fidelity, measured the way Vertex AI NAS asks for it, and the zoo against its published PSNRs.

    python -m bench.fidelity [--part all|tau|zoo|partial] [--n 16] [--candidates 75,150,300] [--long-steps 3000]
                             [--reference full|proxy] [--repeats 3] [--seeds 3] [--work runs/bench-fidelity]
                             [--workers 2]

* tau: ``nas proxy check`` on the default study's config: ``--n`` seeded specs spread over the space's predicted
  VS680 latency range, trained with each candidate proxy length and with ``--long-steps`` of the ``--reference``
  schedule (default ``full``: the product's own, Charbonnier, L2 and QAT, what users ship); Kendall tau of INT8 PSNR
  and of log2 score (with p-values and bootstrap intervals), parameter count and MACs as baselines, the
  seed-to-seed repeatability of the default proxy on ``--repeats`` specs. Goal: tau >= 0.8. The results measured
  before the INT8 fix (issue 30) against 3,000 proxy steps are kept in ``bench/results/fidelity-tau-v1``.
* zoo: every zoo network with a row in Table 1, trained by the default proxy (one trial each, as the search would
  train it); Spearman of their proxy INT8 PSNR against their published INT8 PSNR (full DIV2K training, the
  challenge's test set). The comparison is loose by nature (other data, other training), so it is a sanity check
  of the direction, not a fidelity figure.

Everything is resumable: results are kept in ``--work`` and a second run trains only what is missing. The tau
part's results (one small JSON per training, named by spec, steps, seed and the config digest) are also copied as
they come into ``--keep`` (``bench/results/fidelity-tau``, in the repository): the long trainings take more CPU
hours than one sitting has, so a run on a fresh clone starts from what earlier runs committed there. When the run
stops (Ctrl-C included) the checkpoints of the long trainings under way are copied there too (``<key>.train/``, a
few MB each; removed once the training has its result), and the next run goes on from them. The trained weights
stay in ``--work`` only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from bench._harness import ROOT, write_result
from nas.fidelity import proxy_check
from nas.model import result_forms
from nas.search import SearchConfig, TrialJob, run_trial
from nas.space import ArchSpec, zoo_entries


def _current(result: Path) -> bool:
    """Whether a kept result was measured with today's training forms and export (a result of an earlier one stays
    in a work folder, where nothing reuses it, but is not copied on)."""
    r = json.loads(result.read_text(encoding="utf-8"))
    return r.get("forms") == result_forms(ArchSpec.from_dict(r["spec"]), qat=r.get("schedule") == "full")


def _sync(src: Path, dst: Path) -> int:
    """Copy the current result files of ``src`` that ``dst`` lacks; how many were copied. Checkpoint folders of
    trainings that have their result are removed from both."""
    dst.mkdir(parents=True, exist_ok=True)
    new = [f for f in src.glob("*.json") if not (dst / f.name).exists() and _current(f)]
    for f in new:
        shutil.copyfile(f, dst / f.name)
    for folder in (src, dst):
        for ck in folder.glob("*.train"):
            if (folder / f"{ck.name.removesuffix('.train')}.json").exists():
                shutil.rmtree(ck, ignore_errors=True)
    return len(new)


def _keep_checkpoints(results: Path, keep: Path, min_s: float = 600.0) -> list[str]:
    """Copy the checkpoints of the trainings still under way (``<key>.train/``) from ``results`` to ``keep``,
    replacing older copies: a long training cut short by the end of a sitting goes on from there in the next one,
    on a fresh clone. The trainings that finished have no checkpoint folder left; one that holds less than ``min_s``
    seconds of training is not worth its few MB in the repository and is left out."""
    kept = []
    for ck in sorted(results.glob("*.train")):
        progress = ck / "checkpoints" / "progress.json"
        if not progress.exists() or (results / f"{ck.name[:-6]}.json").exists():
            continue
        if json.loads(progress.read_text())["seconds"] < min_s:
            continue
        shutil.rmtree(keep / ck.name, ignore_errors=True)
        shutil.copytree(ck, keep / ck.name)
        kept.append(ck.name)
    return kept


def _take_checkpoints(keep: Path, results: Path) -> list[str]:
    """The reverse, at the start: kept checkpoints of unfinished trainings that ``results`` lacks."""
    taken = []
    for ck in sorted(keep.glob("*.train")):
        if not (results / ck.name).exists() and not (results / f"{ck.name[:-6]}.json").exists():
            shutil.copytree(ck, results / ck.name)
            taken.append(ck.name)
    return taken


def tau_part(work: Path, n: int, candidates: tuple[int, ...], long_steps: int, repeats: int, seeds: int,
             workers: int = 1, keep: Path | None = None, reference: str = "full") -> None:
    from nas.cli import print_proxy_report
    from nas.fidelity import PROXY_CHECK_FOLDER

    # two single-thread trainings at once give about 1.2x the throughput of one on both cores (README, issue notes);
    # the results do not depend on it (the cache key leaves workers and threads out)
    cfg = SearchConfig(name="fidelity", out=str(work), workers=workers,
                       resources={"cpus": 1, "threads": 1} if workers > 1 else {})

    results = cfg.study_dir / PROXY_CHECK_FOLDER / "results"
    if keep is not None and keep.is_dir():
        print(f"  {_sync(keep, results)} results and {len(_take_checkpoints(keep, results))} checkpoints of "
              f"unfinished trainings taken from {keep}", flush=True)

    def progress(done: int, total: int, message: str) -> None:
        if keep is not None:
            _sync(results, keep)
        print(f"  [{done}/{total}] {message}", flush=True)

    t0 = time.perf_counter()
    try:
        rep = proxy_check(cfg, n=n, candidates=candidates, long_steps=long_steps, repeats=repeats, seeds=seeds,
                          reference=reference, progress=progress, log_to_mlflow=False)
    finally:  # (Ctrl-C included: the trainings under way keep their last checkpoint)
        if keep is not None:
            _sync(results, keep)
            kept = _keep_checkpoints(results, keep)
            if kept:
                print(f"  checkpoints of {len(kept)} unfinished trainings kept in {keep}", flush=True)
    print_proxy_report(rep)
    print(f"({time.perf_counter() - t0:.0f} s this run)")


def _measured_today(r: dict) -> bool:
    """Whether a kept result was measured with today's training form and INT8 export (a result of an earlier export
    version stays in the folder, and its successor beside it, but it is not today's figure)."""
    spec = ArchSpec.from_dict(r["spec"])
    return r.get("forms") in (None, result_forms(spec, qat=r.get("schedule") == "full"))


def int8_losses(keep: Path) -> dict[int, dict]:
    """FP32 minus INT8 PSNR of every complete training kept in ``keep``, by training length: how many, the largest
    and the spec that loses it (issue 30's goal after the default proxy: at most 0.15 dB for every spec), and every
    loss, largest first (``losses``; after the full schedule the goal is at most 0.05 dB for the worst five). After
    QAT, FP32 is the float stages' model, so QAT can make the INT8 model the better one (a negative loss)."""
    out: dict[int, dict] = {}
    for f in sorted(keep.glob("*.json")):
        r = json.loads(f.read_text())
        if (r.get("state") != "complete" or r.get("fp32_psnr") is None or r.get("int8_psnr") is None
                or not _measured_today(r)):
            continue
        d = out.setdefault(r["steps"], {"n": 0, "max_db": float("-inf"), "spec": None, "losses": []})
        loss = r["fp32_psnr"] - r["int8_psnr"]
        d["n"] += 1
        d["losses"].append(loss)
        if loss > d["max_db"]:
            d["max_db"], d["spec"] = loss, ArchSpec.from_dict(r["spec"]).describe()
    for d in out.values():
        d["losses"].sort(reverse=True)
    return dict(sorted(out.items()))


def partial_part(keep: Path, proxy_steps: int, long_steps: int, reference: str = "full") -> None:
    """What the kept results say so far (the long trainings take several sittings): Kendall tau of the proxy's INT8
    PSNR against the long training's over the specs that have both, and the proxy's seed-to-seed spread."""
    from nas.fidelity import kendall

    by: dict[str, dict] = {}
    for f in sorted(keep.glob("*.json")):
        r = json.loads(f.read_text())
        d = by.setdefault(f.name.split("-")[0], {"spec": r["spec"], "runs": {}})
        if r["steps"] == long_steps and r.get("schedule", "proxy") != reference or not _measured_today(r):
            continue
        d["runs"][(r["steps"], r["seed"])] = r
    seed = min((k[1] for d in by.values() for k in d["runs"]), default=0)
    pairs = []
    print(f"\n{len(by)} specs in {keep}; {proxy_steps}-step proxy against {long_steps} steps of the {reference} "
          f"schedule (INT8 PSNR, dB; then FP32 minus INT8 of the long training)")
    for h, d in by.items():
        short, long_ = d["runs"].get((proxy_steps, seed)), d["runs"].get((long_steps, seed))
        seeds = [r["int8_psnr"] for (st, _), r in sorted(d["runs"].items()) if st == proxy_steps and r["int8_psnr"]]
        got = [r["int8_psnr"] if r and r["state"] == "complete" else None for r in (short, long_)]
        if None not in got:
            pairs.append(got)
        cells = " ".join("    -" if v is None else f"{v:6.2f}" for v in got)
        if got[1] is not None:
            cells += f"  drop {long_['fp32_psnr'] - long_['int8_psnr']:5.2f}"
        spread = f"  seeds {' '.join(f'{v:.2f}' for v in seeds)}" if len(seeds) > 1 else ""
        print(f"  {ArchSpec.from_dict(d['spec']).describe():<50} {cells}{spread}")
    if len(pairs) >= 3:
        t = kendall([a for a, _ in pairs], [b for _, b in pairs])
        print(f"  Kendall tau over the {len(pairs)} specs with both: {t}")
    else:
        print(f"  {len(pairs)} specs with both: too few for a rank correlation")
    print("  INT8 against FP32 (FP32 minus INT8 PSNR on the validation photographs), every kept training:")
    for steps, d in int8_losses(keep).items():
        worst = ", ".join(f"{v:+.3f}" for v in d["losses"][:5])
        print(f"    {steps:5d} steps: {d['n']:2d} trainings, at most {d['max_db']:.3f} dB ({d['spec']}); worst five "
              f"{worst}")


def zoo_part(work: Path) -> None:
    from scipy.stats import spearmanr

    cfg = SearchConfig(name="fidelity-zoo", out=str(work))
    cache = work / "zoo.json"
    kept = ROOT / "bench" / "results" / "fidelity-zoo.json"  # results measured before, kept in the repository
    results = json.loads(kept.read_text()) if kept.exists() else {}
    if cache.exists():
        results.update(json.loads(cache.read_text()))
    rows, seen = [], set()
    for i, e in enumerate(zoo_entries()):
        if e.table1 is None or e.spec.hash in seen:
            continue
        seen.add(e.spec.hash)
        key = f"{e.spec.hash}-{cfg.proxy.steps}-{cfg.proxy.loss}-{result_forms(e.spec)}"
        if key not in results:
            out = run_trial(TrialJob(i, e.spec, cfg, (360, 640), None))
            results[key] = {"state": out.state, "reason": out.reason, "int8": out.metrics.get("int8_psnr")}
            write_result(cache, results)
            write_result(kept, results)  # kept in the repository as it comes, as the tau part's
            print(f"  {e.name}: {results[key]}", flush=True)
        r = results[key]
        rows.append((e.name, e.spec.describe(), e.table1.psnr, r["int8"], r["reason"]))
    ok = [r for r in rows if r[3] is not None]
    rho = spearmanr([r[2] for r in ok], [r[3] for r in ok])
    print(f"\nZoo networks: {cfg.proxy.steps}-step proxy INT8 PSNR (embedded photographs) against Table 1's INT8 PSNR")
    print(f"  {'network':<22} {'spec':<50} {'published':>9} {'proxy':>7}")
    for name, desc, pub, got, why in sorted(rows, key=lambda r: -r[2]):
        print(f"  {name:<22} {desc:<50} {pub:9.2f} {got if got is None else f'{got:7.2f}'} {why}")
    print(f"  Spearman {rho.statistic:.3f} (p={rho.pvalue:.2g}, n={len(ok)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("all", "tau", "zoo", "partial"), default="all",
                    help="partial: tau so far from the --keep folder's results, training nothing")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--candidates", default="75,150,300")
    ap.add_argument("--long-steps", type=int, default=3000)
    ap.add_argument("--reference", choices=("full", "proxy"), default="full",
                    help="the long training's schedule: the product's full one (QAT included) or the proxy's")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--work", default="runs/bench-fidelity")
    ap.add_argument("--workers", type=int, default=1, help="trainings at once (Ray, one thread each, when > 1)")
    ap.add_argument("--keep", default=str(ROOT / "bench" / "results" / "fidelity-tau"),
                    help="a folder the tau part's results are copied to and taken from ('' for none)")
    a = ap.parse_args()
    if a.part == "partial":
        partial_part(Path(a.keep), max(int(v) for v in a.candidates.split(",")), a.long_steps, a.reference)
        return 0
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    if a.part in ("all", "zoo"):
        zoo_part(work)
    if a.part in ("all", "tau"):
        tau_part(work, a.n, tuple(int(v) for v in a.candidates.split(",")), a.long_steps, a.repeats, a.seeds,
                 a.workers, Path(a.keep) if a.keep else None, a.reference)
    return 0


if __name__ == "__main__":
    sys.exit(main())
