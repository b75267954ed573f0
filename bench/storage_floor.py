"""The floor under the driver's per-trial cost: Optuna's own storage calls for one trial as the driver writes it
(one create from a template with 8 parameters, a record and two constraints; one user attribute; one state write).

    python -m bench.storage_floor [--trials 200] [--url sqlite:////tmp/nas-floor.db]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution as C
from optuna.distributions import IntDistribution as I
from optuna.trial import TrialState, create_trial

from nas.search import optuna_storage


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--url", default="sqlite:////tmp/nas-floor.db")
    a = ap.parse_args()
    if a.url.startswith("sqlite:///"):
        Path(a.url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna_storage(a.url)
    sid = s.create_new_study([optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE],
                             f"floor-{time.time_ns()}")
    dists = {"depth": I(1, 8), "tail": C(["none", "3"]), "width": I(16, 64, step=16), "block": C(["conv", "ecb"]),
             "expansion": C([2]), "skip": C(["none", "carry"]), "clip_where": C(["a", "b"]), "clip_kind": C(["c", "d"])}
    params = {"depth": 3, "tail": "none", "width": 32, "block": "conv", "expansion": 2, "skip": "none",
              "clip_where": "a", "clip_kind": "c"}
    rec = {"spec": {"width": 32, "depth": 3}, "hash": "abc", "describe": "w32 d3", "latency_ms": 10.0}
    times: dict[str, list[float]] = {"create": [], "attr": [], "state": []}
    for _ in range(a.trials):
        tmpl = create_trial(state=TrialState.RUNNING, params=params, distributions=dists, user_attrs={"nas": rec},
                            system_attrs={"constraints:a": 0.0, "constraints:b": -1.0})
        t0 = time.perf_counter()
        tid = s.create_new_trial(sid, template_trial=tmpl)
        t1 = time.perf_counter()
        s.set_trial_user_attr(tid, "nas", {**rec, "metrics": {"int8_psnr": 29.0}})
        t2 = time.perf_counter()
        s.set_trial_state_values(tid, TrialState.COMPLETE, [29.0, 10.0])
        t3 = time.perf_counter()
        for k, v in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
            times[k].append(v)
    half = a.trials // 2
    parts = {k: 1000 * statistics.median(v[half:]) for k, v in times.items()}
    print(f"{a.url}: median of the last {a.trials - half} trials: create_new_trial {parts['create']:.1f} ms, "
          f"set_trial_user_attr {parts['attr']:.1f} ms, set_trial_state_values {parts['state']:.1f} ms; "
          f"{sum(parts.values()):.1f} ms a trial")
    return 0


if __name__ == "__main__":
    sys.exit(main())
