"""The package's layers import downwards only (space -> reference data, never space -> evaluate -> export ->
space), and no subpackage reaches back to one that imports it."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("package, never", [
    ("nas.space", ("nas.evaluate", "nas.export", "nas.model", "nas.search", "tensorflow")),
    ("nas.reference", ("nas.evaluate", "nas.export", "nas.model")),  # (the top-level facade imports nas.space)
    ("nas.cli._latency", ("nas.cli._app", "nas.cli._search", "nas.cli._proxy")),
    ("nas.cli._search", ("nas.cli._app", "nas.cli._latency", "nas.cli._proxy")),
    # the heavy dependencies load where they are used (a process boundary, a plot), never when a package is imported
    *[(package, ("tensorflow", "tf_keras", "ray", "mlflow", "matplotlib", "pandas", "plotly"))
      for package in ("nas.search", "nas.cli", "nas.train", "nas.evaluate", "nas.export", "nas.latency", "nas.data",
                      "nas.model", "nas._doctor")],
])
def test_a_package_does_not_import_the_layers_above_it(package, never):
    code = f"import sys, {package}; print(' '.join(m for m in sys.modules if m.startswith({never!r})))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [], f"{package} imports {proc.stdout.split()}"


def _subpackage_graph():
    """Subpackage -> the subpackages its modules import (module-level and inside functions alike)."""
    import ast
    from collections import defaultdict
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "nas"
    graph, where = defaultdict(set), {}
    for f in root.rglob("*.py"):
        parts = f.relative_to(root.parent).with_suffix("").parts
        if len(parts) < 2:
            continue  # nas/__init__.py: the facade
        me = parts[1]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                p = name.split(".")
                if p[0] == "nas" and len(p) > 1 and p[1] != me:
                    graph[me].add(p[1])
                    where.setdefault((me, p[1]), str(f.relative_to(root.parent)))
    return graph, where


def test_no_circle_between_subpackages():
    graph, where = _subpackage_graph()
    assert {"space", "model", "export", "search", "cli"} <= set(graph)  # the walk saw the package

    def reaches(a, b, seen):
        return a == b or any(n not in seen and reaches(n, b, seen | {n}) for n in graph[a])

    circles = [f"{a} -> {b} ({where[(a, b)]}) -> ... -> {a}" for a in sorted(graph) for b in sorted(graph[a])
               if reaches(b, a, {b})]
    assert circles == []
