"""Inputs from a generator (Hypothesis): every parser a user feeds gets generated inputs, valid ones mutated field by
field into malformed ones. Each is either accepted (and a valid one round-trips) or refused with one NasError line;
never a traceback of another kind (KeyError, TypeError, AttributeError...).

A few hundred inputs run in the default suite; ``python -m bench.fuzz`` runs thousands (the ``bench`` profile).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.errors import NasError
from nas.latency import FileBoard, load_latency_model
from nas.search import SearchConfig, load_search_config
from nas.space import ArchSpec, load_space

ROOT = Path(__file__).resolve().parents[2]
settings.register_profile("suite", max_examples=60, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("bench", max_examples=int(os.environ.get("NAS_FUZZ_EXAMPLES", "1000")), deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("NAS_FUZZ_PROFILE", "suite"))

JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)


def mutated(base: dict) -> st.SearchStrategy[dict]:
    """``base`` with some fields replaced by junk, some removed, some added (nested mappings mutated the same way)."""
    def one(key, value):
        if isinstance(value, dict):
            return st.one_of(st.just(value), mutated(value), JUNK)
        return st.one_of(st.just(value), st.just(value), JUNK)

    fields = {k: one(k, v) for k, v in base.items()}
    return st.tuples(st.fixed_dictionaries(fields), st.sets(st.sampled_from(sorted(base)) if base else st.nothing(),
                                                            max_size=2),
                     st.dictionaries(st.text(max_size=8), JUNK, max_size=1)).map(
        lambda t: {**{k: v for k, v in t[0].items() if k not in t[1]}, **t[2]})


def refused_or_accepted(fn):
    """``fn()``'s result, or None when it refused with a NasError of one non-empty line; anything else fails."""
    try:
        return fn()
    except NasError as exc:
        msg = str(exc)
        assert msg.strip() and "\n" not in msg, f"not one line: {msg!r}"
        return None


SPEC = ArchSpec(width=32, depth=3, blocks="repconv", skip="carry", tail=(3,)).to_dict()


@given(mutated({**SPEC, "widths": [16, 32, 32, 16]}))
def test_spec_json(data):
    spec = refused_or_accepted(lambda: ArchSpec.from_json(json.dumps(data, allow_nan=True)))
    if spec is not None:
        assert ArchSpec.from_json(spec.to_json()) == spec and ArchSpec.from_json(spec.to_json()).hash == spec.hash


@given(mutated(SearchConfig().model_dump(mode="json")))
def test_study_config_yaml(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("cfg") / "study.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    cfg = refused_or_accepted(lambda: load_search_config(path))
    if cfg is not None:
        again = SearchConfig.model_validate(cfg.model_dump(mode="json"))
        assert again.identity_hash == cfg.identity_hash


@given(mutated(load_space("mai2022-layers").to_dict()))
def test_search_space_yaml(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("space") / "space.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    space = refused_or_accepted(lambda: load_space(path))
    if space is not None:
        assert refused_or_accepted(lambda: space.size()) is not None


VS680 = json.loads((ROOT / "latency_models" / "vs680.json").read_text())


@given(mutated({k: v for k, v in VS680.items() if k != "meta"}))
def test_latency_model_json(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("model") / "model.json"
    path.write_text(json.dumps(data, allow_nan=True))
    model = refused_or_accepted(lambda: load_latency_model(path))
    if model is not None:
        refused_or_accepted(lambda: model.predict(ArchSpec(width=32, depth=3, blocks="conv")))


ROW = {"model": "abc.tflite", "median_ms": 12.5, "runs": 3, "q1_ms": 12.0, "q3_ms": 13.0, "board": "vs680"}


@given(st.lists(mutated(ROW), min_size=0, max_size=4), st.sampled_from(["csv", "yaml"]))
def test_measurement_files(tmp_path_factory, rows, fmt):
    path = tmp_path_factory.mktemp("meas") / f"m.{fmt}"
    if fmt == "csv":
        cols = sorted({k for r in rows for k in r}) or ["model"]
        lines = [",".join(json.dumps(c)[1:-1].replace(",", ";") for c in cols)]
        lines += [",".join(str(r.get(c, "")).replace(",", ";").replace("\n", " ") for c in cols) for r in rows]
        path.write_text("\n".join(lines) + "\n")
    else:
        path.write_text(yaml.safe_dump({"measurements": rows}, allow_unicode=True))
    refused_or_accepted(lambda: FileBoard(path))


TABLE = (ROOT / "bench" / "tables" / "mai2022-3000.csv").read_text().splitlines()


@given(st.lists(st.tuples(st.integers(0, 12), st.text(max_size=30)), max_size=3))
def test_table_csv_headers(tmp_path_factory, edits):
    from nas.benchmark import BenchTable

    lines = list(TABLE)
    for i, text in edits:  # header lines (and the column names) rewritten
        lines[min(i, len(lines) - 1)] = text if not lines[i].startswith("# ") else "# " + text
    path = tmp_path_factory.mktemp("table") / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    refused_or_accepted(lambda: BenchTable.read_csv(path))


@pytest.mark.parametrize("args", [["space", "show"], ["search", "--n-trials"], ["zoo", "show"]])
@given(value=st.text(max_size=20).filter(lambda v: not v.startswith("-")))
def test_cli_option_values(capsys, args, value):
    from nas.cli import main

    rc = main([*args, value] + (["--show-config"] if args[0] == "search" else []))
    err = capsys.readouterr().err
    assert rc in (0, 1, 2) and "Traceback" not in err, err
