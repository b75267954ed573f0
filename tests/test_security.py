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


HOLD_LOCAL_RAY = """
import json, sys
from nas.search import RayExecutor
ex = RayExecutor(workers=1)
import ray
print(json.dumps({"gcs": ray.get_runtime_context().gcs_address, "node": ray.util.get_node_ip_address()}), flush=True)
sys.stdin.read()
ex.close()
"""


def test_the_searchs_local_ray_listens_on_loopback_and_requires_its_token():
    """A local Ray started by the search binds 127.0.0.1 only and turns away a client with a wrong token."""
    import json

    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCAL_RAY], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    try:
        where = json.loads(holder.stdout.readline())
        assert where["node"] == "127.0.0.1" and where["gcs"].startswith("127.0.0.1:")
        listening = _listening_addresses()
        port = int(where["gcs"].rsplit(":", 1)[1])
        assert listening.get(port) == {"127.0.0.1"}, listening.get(port)
        probe = ("import ray\n"
                 f"ray.init(address='{where['gcs']}', include_dashboard=False, log_to_driver=False)\n"
                 "print('connected')\n")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "RAY_AUTH_MODE": "token",
               "RAY_AUTH_TOKEN": "not-the-token", "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=90, env=env)
        assert proc.returncode != 0 and "connected" not in proc.stdout
        assert "InvalidAuthToken" in proc.stderr or "uthenticat" in proc.stderr, proc.stderr[-1500:]
    finally:
        holder.communicate("", timeout=120)


def _listening_addresses() -> dict[int, set[str]]:
    """Port -> local addresses of the TCP sockets listening on this machine (from /proc/net/tcp and tcp6)."""
    import ipaddress

    out: dict[int, set[str]] = {}
    for name, width in (("tcp", 8), ("tcp6", 32)):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            addr_hex, port_hex = fields[1].split(":")
            raw = bytes.fromhex(addr_hex)
            if width == 8:
                ip = ipaddress.IPv4Address(raw[::-1])
            else:
                ip = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
                ip = ip.ipv4_mapped or ip
            out.setdefault(int(port_hex, 16), set()).add(str(ip))
    return out
