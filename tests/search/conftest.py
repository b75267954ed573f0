"""Small real studies: 20-step proxies, INT8 models at 48x64, one validation photograph; servers on a study."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

SMALL = """\
name: {name}
n_trials: {n}
workers: {workers}
warm_start: [abpn]
sampler: {{name: random}}
proxy: {{steps: 20, eval_every: 10, batch_size: 4, patch_size: 24}}
export: {{input_size: 48x64}}
data: {{limit: 3, valid_limit: 1, cache: {cache}}}
out: {out}
"""


@pytest.fixture(scope="session")
def image_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("images")


@pytest.fixture
def small_config(tmp_path, image_cache):
    def make(name: str = "s", n: int = 3, workers: int = 1, extra: str = "") -> Path:
        f = tmp_path / f"{name}.yaml"
        f.write_text(SMALL.format(name=name, n=n, workers=workers, cache=image_cache, out=tmp_path / "runs")
                     + textwrap.dedent(extra))
        return f

    return make


@pytest.fixture(scope="package")
def study(tmp_path_factory, image_cache):
    """One finished 3-trial study (config file, summary, events) shared by the search tests: each trial trains,
    converts and evaluates for real. Tests may add trials to it, never remove any."""
    from nas.search import load_search_config, run_search

    tmp = tmp_path_factory.mktemp("study")
    f = tmp / "s.yaml"
    f.write_text(SMALL.format(name="s", n=3, workers=1, cache=image_cache, out=tmp / "runs"))
    events = []
    summary = run_search(load_search_config(f), callback=events.append)
    return f, summary, events


def group_empties(group: int, timeout_s: float = 10.0) -> bool:
    """Whether process group ``group`` has no process left within ``timeout_s`` (its zombies are reaped by init,
    which can take a few seconds once their parent is gone)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def serve(command: str, folder, probe: str, what: str, stop_with: int = signal.SIGTERM):
    """Run ``nas COMMAND FOLDER --port P`` and yield (port, (status, body) of its first answer at ``probe``).

    On leaving, ``stop_with`` goes to the ``nas`` process alone, as ``kill`` or a service manager sends it: it must
    exit within 5 s, print one line saying the server stopped, and leave nothing of its process group behind (the
    server it started included; SIGTERM used to leave the MLflow server orphaned and still serving)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "nas", command, str(folder), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    stopped = False
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=2) as r:
                    first = r.status, r.read()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, f"{what} did not come up"
                time.sleep(0.5)
        yield port, first
        t0 = time.monotonic()
        proc.send_signal(stop_with)
        err = proc.communicate(timeout=30)[1].decode()
        took = time.monotonic() - t0
        stopped = True
        assert took < 5.0 and proc.returncode == 0, (took, proc.returncode, err[-2000:])
        assert err.count("stopped") == 1 and "Traceback" not in err, err[-2000:]
        assert group_empties(proc.pid), "a process of the server's group is still there"  # the server included
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=2)
    finally:
        if not stopped:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # this test's own group only
            proc.wait(timeout=30)
