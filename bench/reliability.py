"""Reliability figures: faults injected and survived, bad inputs refused cleanly, trials lost.

    python -m bench.reliability [--kills 4] [--trials 8] [--work runs/bench-reliability] [--skip-suites]
                                [--scale 1000 --scale-kills 50 --workers 16 --worker-loss 0.05]
                                [--storages sqlite,postgresql] [--postgres URL]

1. Runs the tests of each fault and input family (:data:`FAMILIES`; real processes: a killed driver, a killed Ray
   worker, a model that fails the NPU check, a conversion that times out, a diverging training, MLflow down at start
   and lost mid-study, a second driver, an interrupted retraining; a tmpfs that fills under a study, a retraining
   and a calibration; bad inputs through the CLI; downloads and archives; generated inputs) and counts what passed
   (written to ``bench/results/reliability.json`` with the chaos run below).
2. A chaos run: one small study whose driver is killed with SIGKILL at ``--kills`` seeded random moments and started
   again each time. Every trial that had finished before a kill must still be there afterwards, byte for byte, in
   the study folder, in Optuna and in MLflow: the figure "trials lost" counts those that are not (goal 0).
3. With ``--scale``, the chaos at scale (:func:`chaos_at_scale`): a long table study, its driver killed many times
   and its simulated workers dying at random (:mod:`bench._chaos`), against the same study without driver kills,
   on SQLite and on a throwaway PostgreSQL server (written to ``bench/results/reliability-scale.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from bench._harness import RESULTS, ROOT, read_result, write_result

#: the fault and input families, each with the tests that try it (slow ones included: real kills, a real tmpfs)
FAMILIES = {
    "killed driver, killed workers": [
        "tests/search/test_faults.py", "tests/search/test_resume.py", "tests/reliability/test_chaos.py",
        "tests/search/test_ray_cluster.py::test_a_killed_ray_worker_costs_only_a_retry",
        "tests/retrain/test_retrain.py::test_an_interrupted_retraining_resumes_from_its_checkpoint",
        "tests/search/test_tracking.py::test_a_driver_killed_while_mlflow_creates_its_store_leaves_none_or_a_whole_one",
        "tests/search/test_study.py::test_a_second_driver_on_the_same_study_is_refused"],
    "full disk, read-only folder": ["tests/reliability/test_full_disk.py"],
    "bad input through the CLI": ["tests/cli/test_bad_input.py", "tests/data/test_fetch.py",
                                  "tests/search/test_config.py"],
    "generated inputs (Hypothesis)": ["tests/reliability/test_fuzz.py"],
}

CONFIG = """\
name: chaos
n_trials: {n}
warm_start: [abpn]
sampler: {{name: random}}
proxy: {{steps: 40, eval_every: 20, batch_size: 4, patch_size: 24}}
export: {{input_size: 48x64}}
data: {{limit: 3, valid_limit: 1}}
out: {out}
"""


def run_suites(only: list[str] | None = None) -> dict[str, dict]:
    """Each family's tests run (slow ones included; ``only``: those families); passed and total test cases per
    family."""
    out = {}
    for name, paths in FAMILIES.items():
        if only is not None and name not in only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            xml = Path(tmp) / "r.xml"
            subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "", "-p", "no:cacheprovider",
                            f"--junitxml={xml}", *paths], cwd=ROOT, capture_output=True, text=True)
            root = ET.parse(xml).getroot()
            total = bad = skipped = 0
            for c in root.iter("testcase"):
                if c.find("skipped") is not None:
                    skipped += 1
                    continue
                total += 1
                if c.find("failure") is not None or c.find("error") is not None:
                    bad += 1
                    print(f"  FAILED {c.get('classname')}::{c.get('name')}")
            out[name] = {"passed": total - bad, "total": total, "skipped": skipped, "tests": paths}
    return out


def _kill_driver(cmd: list[str], log: Path, after_s: float, before=None, running: Path | None = None) -> bool:
    """Start the driver ``cmd`` (its stderr to ``log``) and SIGKILL it ``after_s`` seconds after it started, or, with
    ``running`` (a study's trials folder), ``after_s`` seconds after a new trial folder appears there (a kill while
    trials run, not while the driver starts up: on busy cores start-up alone takes longer than the whole window);
    ``before()`` is called just before the kill. False when the study ended first (a run that failed stops the
    bench)."""
    count = (lambda: sum(1 for _ in running.iterdir()) if running.exists() else 0) if running else None
    at_start = count() if count else 0
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
    if count:
        while proc.poll() is None and count() <= at_start:
            time.sleep(0.05)
    if proc.poll() is None:
        time.sleep(after_s)
    if proc.poll() is not None:
        if proc.returncode != 0:
            raise SystemExit(f"a run failed (status {proc.returncode}): {log.read_text()[-2000:]}")
        return False
    if before is not None:
        before()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def _state(study_dir: Path) -> dict[int, bytes]:
    return {int(d.name): (d / "outcome.json").read_bytes() for d in (study_dir / "trials").iterdir()
            if (d / "outcome.json").exists()} if (study_dir / "trials").exists() else {}


def chaos(work: Path, kills: int, n: int, seed: int = 0) -> dict:
    import optuna
    from mlflow import MlflowClient

    from nas.search import TrialRecord

    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "chaos.yaml"
    cfg.write_text(CONFIG.format(n=n, out=work / "runs"))
    study_dir = work / "runs" / "chaos"
    cmd = [sys.executable, "-m", "nas", "search", str(cfg), "--json"]
    seen: dict[int, bytes] = {}
    killed = 0
    for _ in range(kills):
        if not _kill_driver(cmd, work / f"run{killed}.log", rng.uniform(15.0, 75.0),
                            before=lambda: seen.update(_state(study_dir))):  # (what finished before this kill)
            break
        killed += 1
    final = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if final.returncode != 0:
        raise SystemExit(f"the last run failed: {final.stderr[-2000:]}")
    after = _state(study_dir)
    lost_files = [k for k, v in seen.items() if after.get(k) != v]
    st = optuna.load_study(study_name="chaos", storage=f"sqlite:///{study_dir / 'optuna.db'}")
    complete = {t.number for t in st.trials if t.state.name == "COMPLETE"}
    lost_optuna = [k for k in seen if json.loads(seen[k])["state"] == "complete" and k not in complete]
    client = MlflowClient(f"sqlite:///{work / 'runs' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("nas-chaos")
    runs = client.search_runs([exp.experiment_id], "tags.`nas.kind` = 'trial'")
    finished = {int(r.data.tags["nas.trial"]) for r in runs if r.info.status == "FINISHED"}
    lost_mlflow = [k for k in seen if json.loads(seen[k])["state"] == "complete" and k not in finished]
    open_runs = [r for r in runs if r.info.status == "RUNNING"]
    requeued = sum(1 for t in st.trials if TrialRecord.from_attrs(t.user_attrs).requeued)
    return {"kills": killed, "finished_before_kills": len(seen), "complete": len(complete),
            "lost": len(set(lost_files) | set(lost_optuna) | set(lost_mlflow)), "open_mlflow_runs": len(open_runs),
            "requeued": requeued}


SCALE_CONFIG = """\
name: {name}
n_trials: {n}
workers: {workers}
table: {table}
sampler: {{name: balanced}}
pruner: {{name: none}}
out: {out}
"""


def chaos_at_scale(work: Path, trials: int, workers: int, kills: int, seed: int = 0, storage: str | None = None,
                   loss: float = 0.0) -> dict:
    """A study answered from the committed benchmark table (``trials`` trials on ``workers`` simulated workers, the
    space-filling sampler), its driver SIGKILLed at ``kills`` seeded random moments and started again each time, and
    (``loss`` > 0) each trial's simulated worker dying with that chance (:mod:`bench._chaos`); then the same study run
    without driver kills, losing the same workers. ``storage``: the Optuna storage URL of both (a database of their
    own each; None: SQLite in the study folder). What must hold: every trial number accounted for, no spec evaluated
    twice, no MLflow run left open, the evaluated specs and the front equal to the uninterrupted run's, and the
    driver's time per trial flat."""
    import optuna
    from mlflow import MlflowClient

    from nas.search import Cause, TrialRecord

    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    table = ROOT / "bench" / "tables" / "mai2022-300.csv"
    out = {}
    for name in ("chaos-scale", "chaos-ref"):
        cfg = work / f"{name}.yaml"
        url = None
        if storage is not None:
            from bench._postgres import fresh_database

            url = fresh_database(storage, name.replace("-", "_"))
        cfg.write_text(SCALE_CONFIG.format(name=name, n=trials, workers=workers, table=table, out=work / "runs")
                       + (f"storage: {url}\n" if url else ""))
        ledger = work / f"{name}-lost-workers.json"
        cmd = ([sys.executable, "-m", "bench._chaos", str(cfg), "--loss", str(loss), "--ledger", str(ledger)]
               if loss > 0 else [sys.executable, "-m", "nas", "search", str(cfg), "--json"])
        killed, t0 = 0, time.perf_counter()
        trials_dir = work / "runs" / name / "trials"
        while name == "chaos-scale" and killed < kills:
            # one kill in five while the driver starts up (opening the stores), the rest while trials run
            start_up = rng.random() < 0.2
            after = rng.uniform(0.5, 6.0) if start_up else rng.uniform(0.0, 4.0)
            if not _kill_driver(cmd, work / f"{name}-run{killed}.log", after,
                                running=None if start_up else trials_dir):
                break
            killed += 1
        final = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if final.returncode != 0:
            raise SystemExit(f"{name}: the last run failed: {final.stderr[-2000:]}")
        study_dir = work / "runs" / name
        st = optuna.load_study(study_name=name, storage=url or f"sqlite:///{study_dir / 'optuna.db'}")
        recs = {t.number: TrialRecord.from_attrs(t.user_attrs) for t in st.trials}
        counted = [t for t in st.trials if not (t.state.name == "FAIL" and recs[t.number].superseded)]
        evaluated = [recs[t.number].hash for t in counted
                     if t.state.name == "COMPLETE" and recs[t.number].duplicate_of is None]
        summary = json.loads(final.stdout)
        client = MlflowClient(f"sqlite:///{work / 'runs' / 'mlflow.db'}")
        exp = client.get_experiment_by_name(f"nas-{name}")
        runs = client.search_runs([exp.experiment_id], "tags.`nas.kind` = 'trial'", max_results=50000)
        driver = sorted(((int(r.data.tags["nas.trial"]), r.data.metrics["driver_seconds"]) for r in runs
                         if "driver_seconds" in r.data.metrics))
        k = max(1, len(driver) // 10)
        first = statistics.median(d for _, d in driver[:k]) if driver else float("nan")
        last = statistics.median(d for _, d in driver[-k:]) if driver else float("nan")
        lost = read_result(ledger, {})
        out[name] = {
            "kills": killed, "seconds": time.perf_counter() - t0, "trials": len(st.trials), "counted": len(counted),
            "numbers_contiguous": [t.number for t in st.trials] == list(range(len(st.trials))),
            "evaluated": sorted(evaluated), "evaluated_twice": len(evaluated) - len(set(evaluated)),
            "front": sorted(p["hash"] for p in summary["front"]),
            "open_mlflow_runs": sum(r.info.status == "RUNNING" for r in runs),
            "requeued": sum(r.requeued for r in recs.values()),
            "workers_lost": sum(lost.values()),
            "failed_worker_lost": sum(1 for t in counted if t.state.name == "FAIL"
                                      and recs[t.number].cause is Cause.WORKER_LOST),
            "driver_first_ms": 1000 * first, "driver_last_ms": 1000 * last}
    a, b = out["chaos-scale"], out["chaos-ref"]
    return {**{k: v for k, v in a.items() if k not in ("evaluated", "front")},
            "storage": "postgresql" if storage else "sqlite", "worker_loss_rate": loss, "workers": workers,
            "same_specs_as_uninterrupted": a["evaluated"] == b["evaluated"], "same_front": a["front"] == b["front"],
            "evaluated_n": len(a["evaluated"]), "reference_seconds": b["seconds"],
            "reference_workers_lost": b["workers_lost"],
            "reference_driver_first_ms": b["driver_first_ms"], "reference_driver_last_ms": b["driver_last_ms"]}


def _print_scale(sc: dict, trials: int) -> None:
    lost = (f", simulated workers dying with chance {sc['worker_loss_rate']:g} per trial"
            if sc["worker_loss_rate"] else "")
    print(f"  chaos at scale on {sc['storage']}: a {trials}-trial table study on {sc['workers']} simulated workers, "
          f"the space-filling sampler{lost}; driver killed (SIGKILL) {sc['kills']} times ({sc['seconds']:.0f} s; "
          f"uninterrupted {sc['reference_seconds']:.0f} s)")
    print(f"    trial numbers accounted for (0..{sc['trials'] - 1}) {'yes' if sc['numbers_contiguous'] else 'NO'}")
    print(f"    trials re-run (driver kills, lost workers) {sc['requeued']:3d}")
    if sc["worker_loss_rate"]:
        print(f"    workers lost                             {sc['workers_lost']:3d} (uninterrupted "
              f"{sc['reference_workers_lost']}); trials failed for it {sc['failed_worker_lost']}")
    print(f"    specs evaluated twice                    {sc['evaluated_twice']:3d} (goal 0)")
    print(f"    MLflow runs left open                    {sc['open_mlflow_runs']:3d} (goal 0)")
    print(f"    evaluated specs as an uninterrupted run  {'yes' if sc['same_specs_as_uninterrupted'] else 'NO'} "
          f"({sc['evaluated_n']} specs)")
    print(f"    front as an uninterrupted run            {'yes' if sc['same_front'] else 'NO'}")
    print(f"    driver ms per trial, first / last tenth  {sc['driver_first_ms']:.1f} / {sc['driver_last_ms']:.1f} "
          f"(uninterrupted {sc['reference_driver_first_ms']:.1f} / {sc['reference_driver_last_ms']:.1f})")


def readme_table(results: dict | None = None, scale: dict | None = None, fuzz: dict | None = None) -> str:
    """The README's reliability table, from the committed results (``reliability.json``, ``reliability-scale.json``,
    ``fuzz.json``): each fault and input family, the command that tries it and its count. ``tests/test_docs.py``
    holds the README to it."""
    results = results if results is not None else read_result("reliability.json", {})
    scale = scale if scale is not None else read_result("reliability-scale.json", {})
    fuzz = fuzz if fuzz is not None else read_result("fuzz.json", {})
    rows = ["| family | tried by | count |", "| --- | --- | --- |"]
    for name, f in results.get("families", {}).items():
        tests = ", ".join(f"`{t.split('::')[-1] if '::' in t else t}`" for t in f["tests"][:3])
        more = f" and {len(f['tests']) - 3} more" if len(f["tests"]) > 3 else ""
        rows.append(f"| {name} | {tests}{more} | {f['passed']} of {f['total']} test cases pass |")
    if fuzz:
        rows.append(f"| generated inputs, at scale | `python -m bench.fuzz` | {fuzz['inputs']:,} inputs, "
                    f"{sum(p['failing'] for p in fuzz['parsers'].values())} failing |")
    c = results.get("chaos")
    if c:
        an = "an" if str(c["trials"]).startswith("8") or c["trials"] in (11, 18) else "a"
        rows.append(f"| driver killed during real training | `python -m bench.reliability` | {c['kills']} kills in "
                    f"{an} {c['trials']}-trial study: {c['lost']} trials lost, {c['open_mlflow_runs']} MLflow runs "
                    "left open |")
    for storage, sc in scale.items():
        rows.append(f"| chaos at scale, {storage} | `python -m bench.reliability --scale {sc['counted']}` | "
                    f"{sc['kills']} driver kills and {sc['workers_lost']} lost workers in a {sc['counted']:,}-trial "
                    f"study on {sc['workers']} workers ({sc['requeued']} re-runs): "
                    f"{sc['evaluated_twice']} specs evaluated twice, {sc['open_mlflow_runs']} MLflow runs left open, "
                    f"{'the same' if sc['same_specs_as_uninterrupted'] else 'NOT the same'} {sc['evaluated_n']} "
                    f"specs and {'the same' if sc['same_front'] else 'NOT the same'} front as without kills |")
    return "\n".join(rows)


def main() -> int:
    # SIGTERM (kill, a service manager) unwinds like Ctrl-C: the throwaway PostgreSQL server is stopped and removed
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=4)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--work", default="runs/bench-reliability")
    ap.add_argument("--skip-suites", action="store_true")
    ap.add_argument("--scale", type=int, default=0, metavar="TRIALS",
                    help="also the chaos at scale: a TRIALS-trial table study on --workers simulated workers, its "
                         "driver killed --scale-kills times (e.g. --scale 1000 --scale-kills 50 --workers 16)")
    ap.add_argument("--scale-kills", type=int, default=50)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--storages", default="sqlite,postgresql",
                    help="the Optuna storages of the chaos at scale (postgresql needs the postgres extra and a local "
                         "initdb, or --postgres)")
    ap.add_argument("--postgres", default=None, metavar="URL",
                    help="a PostgreSQL server to use instead of a throwaway one")
    ap.add_argument("--worker-loss", type=float, default=0.05,
                    help="the chance that a trial's simulated worker dies in the chaos at scale")
    ap.add_argument("--family", action="append", default=None, metavar="NAME",
                    help="run only this family's tests (a name as printed; repeat for more) and update its count in "
                         "the committed results, nothing else")
    ap.add_argument("--table", action="store_true",
                    help="only print the README's reliability table from the committed results")
    a = ap.parse_args()
    if a.table:
        print(readme_table())
        return 0
    if a.family:
        only = [f.strip() for f in a.family]
        unknown = [f for f in only if f not in FAMILIES]
        if unknown:
            raise SystemExit(f"--family: unknown {unknown}; the families are {list(FAMILIES)}")
        got = run_suites(only)
        for name, f in got.items():
            print(f"  {name:<44} {f['passed']:3d} of {f['total']:3d} test cases passed")
        kept = read_result("reliability.json", {"families": {}})
        kept["families"] = {name: got.get(name, kept["families"].get(name)) for name in FAMILIES
                            if name in got or name in kept["families"]}
        write_result(RESULTS / "reliability.json", kept)
        return 0 if all(f["passed"] == f["total"] for f in got.values()) else 1
    work = (ROOT / a.work) if not Path(a.work).is_absolute() else Path(a.work)
    if work.exists():
        import shutil

        shutil.rmtree(work)
    suites = {} if a.skip_suites else run_suites()
    t0 = time.perf_counter()
    c = chaos(work, a.kills, a.trials)
    print("\nReliability")
    for name, f in suites.items():
        skipped = f" ({f['skipped']} skipped)" if f["skipped"] else ""
        print(f"  {name:<44} {f['passed']:3d} of {f['total']:3d} test cases passed{skipped}")
    print(f"  chaos: driver killed (SIGKILL) {c['kills']} times in a {a.trials}-trial study "
          f"({time.perf_counter() - t0:.0f} s)")
    print(f"    trials finished before a kill           {c['finished_before_kills']:3d}")
    print(f"    trials complete at the end               {c['complete']:3d} of {a.trials}")
    print(f"    trials re-run after a kill (requeued)    {c['requeued']:3d}")
    print(f"    MLflow runs left open                    {c['open_mlflow_runs']:3d}")
    print(f"    trials lost                              {c['lost']:3d} (goal 0)")
    ok = c["lost"] == 0 and c["open_mlflow_runs"] == 0 and all(f["passed"] == f["total"] for f in suites.values())
    if suites:
        write_result(RESULTS / "reliability.json", {"families": suites, "chaos": {**c, "trials": a.trials}})
    if a.scale:
        import contextlib

        results = {}
        with contextlib.ExitStack() as stack:
            for storage in a.storages.split(","):
                if storage == "postgresql":
                    from bench._postgres import postgres_server

                    url = a.postgres or stack.enter_context(postgres_server())
                elif storage == "sqlite":
                    url = None
                else:
                    raise SystemExit(f"--storages: unknown storage {storage!r} (sqlite, postgresql)")
                sc = chaos_at_scale(work / f"scale-{storage}", a.scale, a.workers, a.scale_kills, storage=url,
                                    loss=a.worker_loss)
                _print_scale(sc, a.scale)
                results[storage] = sc
                ok = (ok and sc["evaluated_twice"] == 0 and sc["open_mlflow_runs"] == 0 and sc["numbers_contiguous"]
                      and sc["same_specs_as_uninterrupted"] and sc["same_front"])
        write_result(RESULTS / "reliability-scale.json", results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
