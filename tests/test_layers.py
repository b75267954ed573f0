"""The package's layers import downwards only: space -> reference data, never space -> evaluate -> export -> space."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("package, never", [
    ("nas.space", ("nas.evaluate", "nas.export", "nas.model", "nas.search", "tensorflow")),
    ("nas.reference", ("nas.evaluate", "nas.export", "nas.model")),  # (the top-level facade imports nas.space)
    ("nas.cli._latency", ("nas.cli._app", "nas.cli._search", "nas.cli._proxy")),
    ("nas.cli._search", ("nas.cli._app", "nas.cli._latency", "nas.cli._proxy")),
])
def test_a_package_does_not_import_the_layers_above_it(package, never):
    code = f"import sys, {package}; print(' '.join(m for m in sys.modules if m.startswith({never!r})))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [], f"{package} imports {proc.stdout.split()}"
