"""Security guards: no unpickling or unsafe YAML anywhere in the library; servers the tool starts stay on
127.0.0.1 or behind Ray's token."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_library_never_unpickles_or_loads_yaml_unsafely():
    bad = re.compile(r"\bimport pickle\b|\bpickle\.load|\bcloudpickle\.load|allow_pickle\s*=\s*True|yaml\.load\(|"
                     r"yaml\.unsafe_load|yaml\.full_load|\btorch\.load\(|\beval\(")
    hits = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
            for p in sorted((ROOT / "nas").rglob("*.py"))
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if bad.search(line)]
    assert hits == []
    loads = [p for p in (ROOT / "nas").rglob("*.py") if "np.load(" in p.read_text(encoding="utf-8")]
    for p in loads:  # every numpy load refuses pickled objects
        for line in p.read_text(encoding="utf-8").splitlines():
            if "np.load(" in line:
                assert "allow_pickle=False" in line, f"{p}: {line.strip()}"


def test_a_local_ray_started_by_the_search_requires_its_token():
    """The search's own local Ray keeps token authentication: a client with a wrong token is turned away."""
    import ray

    from nas.search import RayExecutor

    ex = RayExecutor(workers=1)
    try:
        gcs = ray.get_runtime_context().gcs_address
        probe = ("import ray\n"
                 f"ray.init(address='{gcs}', include_dashboard=False, log_to_driver=False)\n"
                 "print('connected')\n")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "RAY_AUTH_MODE": "token",
               "RAY_AUTH_TOKEN": "not-the-token", "RAY_USAGE_STATS_ENABLED": "0"}
        proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode != 0 and "connected" not in proc.stdout
        assert "InvalidAuthToken" in proc.stderr or "uthenticat" in proc.stderr, proc.stderr[-1500:]
    finally:
        ex.close()
