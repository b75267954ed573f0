"""The package's layers import downwards only (space -> reference data, never space -> evaluate -> export ->
space), no subpackage reaches back to one that imports it, no module imports one that imports it back (a function-
local import included: that is how a circle hides), and no package imports another's private names."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("package, never", [
    ("nas.space", ("nas.evaluate", "nas.export", "nas.model", "nas.search", "tensorflow")),
    ("nas.reference", ("nas.evaluate", "nas.export", "nas.model")),  # (the top-level facade imports nas.space)
    ("nas.cli._latency", ("nas.cli._app", "nas.cli._search", "nas.cli._proxy")),
    # the study knows nothing of the layers built on it: benchmark tables, proxy fidelity, retraining
    ("nas.search", ("nas.benchmark", "nas.fidelity", "nas.retrain")),
    ("nas.train", ("nas.search", "nas.retrain")),
    ("nas.cli._search", ("nas.cli._app", "nas.cli._latency", "nas.cli._proxy")),
    # the heavy dependencies load where they are used (a process boundary, a plot), never when a package is imported
    *[(package, ("tensorflow", "tf_keras", "ray", "mlflow", "matplotlib", "pandas", "plotly"))
      for package in ("nas.search", "nas.retrain", "nas.cli", "nas.train", "nas.evaluate", "nas.export", "nas.latency", "nas.data",
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


def _modules():
    """Module name -> file of every module of the package (a package by its ``__init__``)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = {}
    for f in (root / "nas").rglob("*.py"):
        parts = list(f.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _imports(mods):
    """(importing module, imported module, the name as written, line) for every import of a ``nas`` module,
    module-level and inside functions alike; ``from pkg import name`` counts as the submodule ``pkg.name`` where
    there is one, else as ``pkg``."""
    import ast

    def resolve(name):
        while name and name not in mods:
            name = name.rsplit(".", 1)[0] if "." in name else ""
        return name

    for mod, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("nas"):
                for a in node.names:
                    yield mod, resolve(f"{node.module}.{a.name}"), f"{node.module}.{a.name}", node.lineno
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("nas"):
                        yield mod, resolve(a.name), a.name, node.lineno


def test_no_circle_between_modules():
    mods = _modules()
    graph = {m: set() for m in mods}
    for a, b, _, _ in _imports(mods):
        if b and b != a:
            graph[a].add(b)
    assert len(graph) > 80 and graph["nas.search._study"]  # the walk saw the package

    def path(a, b):  # a shortest import path a -> ... -> b, or None
        prev, todo = {a: None}, [a]
        while todo:
            nxt = []
            for m in todo:
                for n in sorted(graph[m]):
                    if n not in prev:
                        prev[n] = m
                        nxt.append(n)
            todo = nxt
        if b not in prev:
            return None
        out = [b]
        while out[-1] != a:
            out.append(prev[out[-1]])
        return out[::-1]

    circles = {" -> ".join(p + [a]) for a in graph for b in graph[a] if (p := path(b, a)) is not None and a < b}
    assert sorted(circles) == []


def test_no_package_imports_another_packages_private_names():
    mods = _modules()
    bad = []
    for a, _, name, line in _imports(mods):
        parts, mine = name.split("."), a.split(".")
        if len(parts) > 2 and parts[1] != (mine[1] if len(mine) > 1 else "") and any(p.startswith("_") for p in parts[2:]):
            bad.append(f"{mods[a].name}:{line} {a} imports {name}")
    assert bad == []


def test_the_checks_see_a_circle_and_a_private_import(tmp_path, monkeypatch):
    """The two checks above fail on a package that has what they forbid (so they can fail at all)."""
    pkg = tmp_path / "nas"
    for sub, text in {"a/__init__.py": "", "a/_x.py": "def f():\n    from nas.b._y import g\n",
                      "b/__init__.py": "", "b/_y.py": "from nas.a._x import f\n", "__init__.py": ""}.items():
        (pkg / sub).parent.mkdir(parents=True, exist_ok=True)
        (pkg / sub).write_text(text)
    monkeypatch.setattr(__import__("pathlib").Path, "resolve", lambda self: tmp_path / "tests" / "test_layers.py")
    with pytest.raises(AssertionError):
        test_no_package_imports_another_packages_private_names()
    mods = _modules()
    edges = {(a, b) for a, b, _, _ in _imports(mods) if b and b != a}
    assert ("nas.a._x", "nas.b._y") in edges and ("nas.b._y", "nas.a._x") in edges


def test_every_import_of_a_nas_name_resolves():
    """Every ``from nas... import name`` in the package, the benchmarks, the docs' hooks and the tests names
    something that exists, function-local imports included: a moved or renamed name breaks a benchmark that no
    test runs, and only this finds it before a user does."""
    import ast
    import importlib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = [*(root / "nas").rglob("*.py"), *(root / "bench").glob("*.py"), *(root / "tests").rglob("*.py"),
             root / "docs" / "hooks.py"]
    missing = []
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("nas")):
                continue
            mod = importlib.import_module(node.module)
            for a in node.names:
                if not hasattr(mod, a.name) and importlib.util.find_spec(f"{node.module}.{a.name}") is None:
                    missing.append(f"{f.relative_to(root)}:{node.lineno} {node.module}.{a.name}")
    assert missing == []


BENCH_INTERNALS = {  # benchmarks of one internal piece, which they time or probe on its own
    "bench/alive.py": {"nas.model._layers", "nas.model._layers.BRANCH_GAIN"},  # the branch gain it varies
    "bench/pipeline.py": {"nas.train._trainer._step_fn"},  # the training step, fed two ways and timed
    "bench/train_throughput.py": {"nas.model._layers._Block"},  # a block computed branch by branch, timed
}


def test_the_benchmarks_use_the_public_api():
    """The benchmarks are users of the library: they import its packages' public names, except the few that
    measure an internal piece itself (listed above, each with why)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    bad = []
    for f in sorted((root / "bench").glob("*.py")):
        allowed = BENCH_INTERNALS.get(f"bench/{f.name}", set())
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nas"):
                for a in node.names:
                    name = f"{node.module}.{a.name}"
                    if any(p.startswith("_") for p in name.split(".")[1:]) and name not in allowed:
                        bad.append(f"bench/{f.name}:{node.lineno} imports {name}")
    assert bad == []
