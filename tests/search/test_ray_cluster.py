"""A study on a real Ray cluster started the way a user starts one: `ray start --head`, a second node joining it,
both on 127.0.0.1; then the best trial retrained, registered and found again in MLflow."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.search.conftest import group_empties

pytestmark = pytest.mark.slow  # two Ray nodes and three studies: about 6 minutes on 2 cores

RAY = str(Path(sys.executable).with_name("ray"))


@dataclasses.dataclass(frozen=True)
class Cluster:
    address: str
    env: dict  # the environment of its nodes, for drivers that join it
    groups: tuple[int, ...]  # the process groups of its nodes: everything the test started


@pytest.fixture(scope="module")
def ray_env(tmp_path_factory) -> dict:
    """Ray keeps its token authentication: every node and driver runs with RAY_AUTH_MODE=token. The cluster lives
    in a HOME of its own, as on a fresh machine; the token is generated there the way the README says (`ray
    get-auth-token --generate`), so the result does not depend on a token some earlier test or run left behind."""
    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    assert not (home / ".ray" / "auth_token").exists()
    _ray(env, "get-auth-token", "--generate")
    assert (home / ".ray" / "auth_token").stat().st_size > 0
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run([RAY, *args], capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _node(env: dict, *args: str, log: Path) -> subprocess.Popen:
    """``ray start ... --block`` in a session of its own: every process of the node is in its process group, so
    the test stops exactly what it started (never ``ray stop --force``, which stops every Ray of the user)."""
    return subprocess.Popen([RAY, "start", "--block", *args], env=env, start_new_session=True,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def _wait_for_nodes(env: dict, address: str, n: int, nodes: list[subprocess.Popen], logs: list[Path]) -> None:
    deadline = time.monotonic() + 180
    while True:
        st = subprocess.run([RAY, "status", f"--address={address}"], capture_output=True, text=True, env=env,
                            timeout=60)
        active = st.stdout.split("Active:")[-1].split("Pending:")[0] if "Active:" in st.stdout else ""
        if st.returncode == 0 and active.count("node_") >= n:
            return
        dead = [log for p, log in zip(nodes, logs) if p.poll() is not None]
        assert not dead, dead[0].read_text()[-3000:]
        assert time.monotonic() < deadline, st.stdout + st.stderr
        time.sleep(1)


def _stop(nodes: list[subprocess.Popen]) -> None:
    """Each node's process group: SIGTERM, SIGKILL to what is left after 15 s, until the group is empty."""
    from nas.cli._serve import stop_process_group

    for p in nodes:
        stop_process_group(p, 15.0)


@pytest.fixture(scope="module")
def cluster(ray_env):
    port = _free_port()
    tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths must stay under 107 bytes
    address = f"127.0.0.1:{port}"
    nodes, logs = [], [tmp / "head.log", tmp / "node.log"]
    try:
        nodes.append(_node(ray_env, "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=1",
                           "--include-dashboard=false", f"--temp-dir={tmp}", "--disable-usage-stats", log=logs[0]))
        _wait_for_nodes(ray_env, address, 1, nodes, logs)
        nodes.append(_node(ray_env, f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                           log=logs[1]))
        _wait_for_nodes(ray_env, address, 2, nodes, logs)
        yield Cluster(address, ray_env, tuple(p.pid for p in nodes))
    finally:
        _stop(nodes)
        shutil.rmtree(tmp, ignore_errors=True)


def test_stopping_a_node_stops_its_own_processes_only(ray_env):
    """The fixture's teardown, checked: a node started like the cluster's goes away with its whole process group,
    and a process of the same user outside it is left alone."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    port = _free_port()
    tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    node = _node(ray_env, "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=1",
                 "--include-dashboard=false", f"--temp-dir={tmp}", "--disable-usage-stats", log=tmp / "head.log")
    try:
        _wait_for_nodes(ray_env, f"127.0.0.1:{port}", 1, [node], [tmp / "head.log"])
        _stop([node])
        assert group_empties(node.pid)
        assert bystander.poll() is None
    finally:
        _stop([node])
        bystander.kill()
        bystander.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def test_study_on_a_two_node_cluster_then_retrain_the_best(cluster, small_config, tmp_path):
    cfg = small_config(name="rc", n=6, workers=2)
    proc = subprocess.run([sys.executable, "-m", "nas", "search", str(cfg), "--ray-address", cluster.address,
                           "--json"], capture_output=True, text=True, timeout=900, env=cluster.env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["complete"] + summary["pruned"] == 6 and summary["failed"] == 0
    assert summary["executor"] == f"Ray cluster {cluster.address} (2 nodes, 2 workers)"
    folder = Path(summary["folder"])
    nodes = {json.loads((d / "outcome.json").read_text())["worker"].split(" node ")[1]
             for d in (folder / "trials").iterdir() if (d / "outcome.json").exists()}
    assert len(nodes) == 2  # both nodes ran trials

    client = MlflowClient(tracking_uri=summary["tracking"])
    exp = client.get_experiment_by_name("nas-rc")
    trial_runs = client.search_runs([exp.experiment_id], "tags.`nas.kind` = 'trial'")
    assert len(trial_runs) == 6
    front = client.search_runs([exp.experiment_id], "tags.`nas.pareto` = 'true'")
    assert sorted(int(r.data.tags["nas.trial"]) for r in front) == sorted(p["number"] for p in summary["front"])
    assert {a.path for a in client.list_artifacts(summary["parent_run_id"], "pareto")} >= {
        "pareto/pareto.csv", "pareto/pareto.html", "pareto/pareto.png"}

    re = subprocess.run([sys.executable, "-m", "nas", "retrain", str(folder), "--best", "--steps", "30", "--json"],
                        capture_output=True, text=True, timeout=900)
    assert re.returncode == 0, re.stderr[-3000:]
    res = json.loads(re.stdout)
    assert res["trial"] == summary["best"]["number"] and res["check_passed"] is True
    assert Path(res["tflite"]).read_bytes()[4:8] == b"TFL3"
    run = client.get_run(res["run_id"])
    trial_run = [r for r in trial_runs if r.data.tags["nas.trial"] == str(res["trial"])][0]
    assert run.data.tags["nas.retrain_of"] == trial_run.info.run_id and "int8_psnr_rgb" in run.data.metrics
    assert client.get_run(trial_run.info.run_id).data.tags["nas.retrained_run"] == res["run_id"]
    mv = client.get_model_version("nas-rc", res["model_version"])
    assert mv.run_id == res["run_id"] and mv.source.endswith("/model")
    assert {a.path for a in client.list_artifacts(res["run_id"], "model")} >= {"model/model_int8.tflite",
                                                                              "model/spec.json"}


_PRUNING_DRIVER = """
import json, sys
from nas.search import RayExecutor, SearchConfig, TrialJob
from nas.space import zoo_get

asked = []

def stop(number, step, value):
    asked.append((number, step, value))
    return True

cfg = SearchConfig(proxy={"steps": 20, "eval_every": 10, "batch_size": 4, "patch_size": 24},
                   data={"limit": 2, "valid_limit": 1})
ex = RayExecutor(workers=1, address=sys.argv[1], on_report=stop)
try:
    ex.submit(TrialJob(7, zoo_get("abpn").spec, cfg, (48, 64), 1))
    out = []
    while not out:
        out = ex.poll(5.0)
finally:
    ex.close()
print(json.dumps({"number": out[0].number, "state": out[0].state, "reason": out[0].reason,
                  "files": sorted(out[0].files), "asked": asked}))
"""


def test_pruning_decisions_reach_ray_workers(cluster):
    """The driver's answer travels back through the mailbox actor: a trial told to stop comes back pruned.

    The driver is a process of its own, as a study's is: Ray reads its authentication settings once, when it is
    imported, so a driver in this process would carry those of whatever test imported Ray first (a local Ray of
    the closed-loop test joined this token-protected cluster with the wrong token and could not connect)."""
    proc = subprocess.run([sys.executable, "-c", _PRUNING_DRIVER, cluster.address], capture_output=True, text=True,
                          timeout=600, env=cluster.env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["number"] == 7 and out["state"] == "pruned" and out["reason"].startswith("pruned at step 10")
    assert out["asked"] and out["asked"][0][:2] == [7, 10] and out["files"] == []


def _descends_from(pid: int, groups: tuple[int, ...]) -> bool:
    """Whether ``pid`` or one of its ancestors is in one of ``groups`` (Ray puts its workers in groups of their
    own; their parent, the raylet, is in the node's)."""
    while pid > 1:
        if os.getpgid(pid) in groups:
            return True
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's pid
    return False


def _ray_trial_pids(groups: tuple[int, ...]) -> list[int]:
    """The Ray workers running a trial in the test's own cluster (started by its nodes), none other."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes().startswith(b"ray::_ray_trial") and _descends_from(int(d.name), groups):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def test_a_killed_ray_worker_costs_only_a_retry(cluster, small_config):
    """kill -9 the Ray worker process running a trial: Ray runs the trial again, the study completes."""
    cfg = small_config(name="wk", n=2, extra="proxy: {steps: 200, eval_every: 100, batch_size: 4, patch_size: 24}\n")
    proc = subprocess.Popen([sys.executable, "-m", "nas", "search", str(cfg), "--ray-address", cluster.address,
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env)
    deadline = time.monotonic() + 300
    while not _ray_trial_pids(cluster.groups):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    time.sleep(3)  # inside the trial's training
    victim = _ray_trial_pids(cluster.groups)[0]
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    summary = json.loads(out)
    assert summary["complete"] == 2 and summary["failed"] == 0
    workers = [json.loads((Path(summary["folder"]) / "trials" / f"{n:04d}" / "outcome.json").read_text())["worker"]
               for n in (0, 1)]
    assert all(f":{victim} " not in w for w in workers)  # the killed process finished nothing
