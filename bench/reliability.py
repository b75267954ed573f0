"""Reliability figures: faults injected and survived, bad inputs refused cleanly, trials lost.

    python -m bench.reliability [--kills 4] [--trials 8] [--work runs/bench-reliability] [--skip-suites]

1. Runs the fault and bad-input test suites (real processes: a killed driver, a killed Ray worker, a model that
   fails the NPU check, a conversion that times out, a diverging training, MLflow down at start and lost mid-study,
   a second driver, an interrupted retraining; 28 bad inputs through the CLI; downloads and archives) and counts
   what passed.
2. A chaos run: one small study whose driver is killed with SIGKILL at ``--kills`` seeded random moments and started
   again each time. Every trial that had finished before a kill must still be there afterwards, byte for byte, in
   the study folder, in Optuna and in MLflow: the figure "trials lost" counts those that are not (goal 0).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from bench._harness import ROOT

SUITES = {
    "faults": ["tests/search/test_faults.py", "tests/search/test_resume.py",
               "tests/search/test_ray_cluster.py::test_a_killed_ray_worker_costs_only_a_retry",
               "tests/search/test_retrain.py::test_an_interrupted_retraining_resumes_from_its_checkpoint",
               "tests/reliability/test_full_disk.py",
               "tests/search/test_study.py::test_a_second_driver_on_the_same_study_is_refused"],
    "bad input": ["tests/cli/test_bad_input.py", "tests/data/test_fetch.py", "tests/search/test_config.py",
                  "tests/reliability/test_fuzz.py"],
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


def run_suites() -> dict[str, tuple[int, int]]:
    out = {}
    for name, paths in SUITES.items():
        with tempfile.TemporaryDirectory() as tmp:
            xml = Path(tmp) / "r.xml"
            subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
                            *paths], cwd=ROOT, capture_output=True, text=True)
            root = ET.parse(xml).getroot()
            cases = root.iter("testcase")
            total = bad = 0
            for c in cases:
                total += 1
                if c.find("failure") is not None or c.find("error") is not None:
                    bad += 1
                    print(f"  FAILED {c.get('classname')}::{c.get('name')}")
            out[name] = (total - bad, total)
    return out


def _state(study_dir: Path) -> dict[int, bytes]:
    return {int(d.name): (d / "outcome.json").read_bytes() for d in (study_dir / "trials").iterdir()
            if (d / "outcome.json").exists()} if (study_dir / "trials").exists() else {}


def chaos(work: Path, kills: int, n: int, seed: int = 0) -> dict:
    import optuna
    from mlflow import MlflowClient

    from nas.search._record import TrialRecord

    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "chaos.yaml"
    cfg.write_text(CONFIG.format(n=n, out=work / "runs"))
    study_dir = work / "runs" / "chaos"
    cmd = [sys.executable, "-m", "nas", "search", str(cfg), "--json"]
    seen: dict[int, bytes] = {}
    killed = 0
    for _ in range(kills):
        log = work / f"run{killed}.log"
        with open(log, "w") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        time.sleep(rng.uniform(10.0, 30.0))
        if proc.poll() is not None:  # the study ended before this kill
            if proc.returncode != 0:
                raise SystemExit(f"a run failed (status {proc.returncode}): {log.read_text()[-2000:]}")
            break
        seen.update(_state(study_dir))  # finished before this kill
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=4)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--work", default="runs/bench-reliability")
    ap.add_argument("--skip-suites", action="store_true")
    a = ap.parse_args()
    work = (ROOT / a.work) if not Path(a.work).is_absolute() else Path(a.work)
    if work.exists():
        import shutil

        shutil.rmtree(work)
    suites = {} if a.skip_suites else run_suites()
    t0 = time.perf_counter()
    c = chaos(work, a.kills, a.trials)
    print("\nReliability")
    for name, (ok, total) in suites.items():
        label = "faults injected and survived" if name == "faults" else "bad inputs tried and refused cleanly"
        print(f"  {label:<44} {ok:3d} of {total:3d} test cases")
    print(f"  chaos: driver killed (SIGKILL) {c['kills']} times in a {a.trials}-trial study "
          f"({time.perf_counter() - t0:.0f} s)")
    print(f"    trials finished before a kill           {c['finished_before_kills']:3d}")
    print(f"    trials complete at the end               {c['complete']:3d} of {a.trials}")
    print(f"    trials re-run after a kill (requeued)    {c['requeued']:3d}")
    print(f"    MLflow runs left open                    {c['open_mlflow_runs']:3d}")
    print(f"    trials lost                              {c['lost']:3d} (goal 0)")
    return 0 if c["lost"] == 0 and c["open_mlflow_runs"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
