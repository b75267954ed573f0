"""The per-layer space (mai2022-layers): per-layer widths in ArchSpec, the space's size, its parameters through a
real Optuna study, and mai2022 and the zoo inside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest

from nas.errors import SpecError
from nas.space import ArchSpec, deploy_ops, load_space, zoo_entries

LAYERS = load_space("mai2022-layers")
TABLE = Path(__file__).resolve().parents[2] / "bench" / "tables" / "mai2022-300.csv"


def test_a_uniform_spec_keeps_its_json_and_hash():
    """Specs measured before per-layer widths existed (tables, studies, caches) must keep their identity: a uniform
    spec's JSON has no 'widths', and giving equal widths makes the same spec."""
    spec = ArchSpec(width=32, depth=4, blocks="repconv", skip="repeat_add", tail=(3,))
    assert "widths" not in spec.to_dict()
    assert ArchSpec(width=32, depth=4, blocks="repconv", skip="repeat_add", tail=(3,), widths=(32,) * 5) == spec
    # every committed row's spec, read back from its JSON, has the hash it was stored under
    import csv

    with open(TABLE) as fh:
        lines = [ln for ln in fh if not ln.startswith("#")]
    for row in list(csv.DictReader(lines))[:60]:
        assert ArchSpec.from_json(row["spec"]).hash == row["hash"]


def test_a_per_layer_spec_round_trips_and_lays_out_its_widths():
    spec = ArchSpec(width=48, depth=2, blocks=["ecb", "conv", "clb", "repconv", "conv"], skip="carry", widths=(16, 48, 32),
                    tail=(3,))
    assert ArchSpec.from_json(spec.to_json()) == spec and ArchSpec.from_dict(json.loads(spec.to_json())).hash == spec.hash
    assert [(s.cin, s.cout) for s in spec.convs()] == [(3, 16), (16, 48), (48, 32), (32, 30), (30, 27)]
    assert spec.describe().startswith("w16-48-32 d2 mixed(")
    convs = [o for o in deploy_ops(spec) if o.type == "conv"]
    assert [o.name for o in convs] == ["head", "body_01", "body_02", "tail_1", "tail_2"]
    assert convs[1].params == 3 * 3 * 16 * 48 + 48
    assert ArchSpec.from_dict({"widths": [16, 32], "depth": 1, "block": "conv"}).width == 32  # the widest
    with pytest.raises(SpecError, match="'widths': 2 entries, but the layout has 3 feature convs"):
        ArchSpec(width=32, depth=2, blocks="conv", widths=(16, 32))
    with pytest.raises(SpecError, match="widest of 'widths' is 32"):
        ArchSpec(width=16, depth=1, blocks="conv", widths=(16, 32))
    with pytest.raises(SpecError, match="leaves no feature channels"):
        ArchSpec(width=32, depth=1, blocks="conv", widths=(3, 32), skip="carry")


def test_the_space_holds_billions_of_deployed_graphs_and_mai2022_and_the_zoo():
    assert LAYERS.deployed_size() >= 10 ** 9 and LAYERS.size() > LAYERS.deployed_size()
    small = load_space("mai2022")
    for _, spec in small.enumerate():  # all 5,120
        assert LAYERS.contains(spec) == []
    grid = set(LAYERS.width.values())
    fits = [e for e in zoo_entries() if set(e.spec.feature_widths) <= grid and e.spec.expansion == 2]
    assert {e.name for e in fits} >= {"z6-scsrn", "ecnusr-pureconvsr", "vccip", "megsr-ncnet"}
    assert all(LAYERS.contains(e.spec) == [] for e in fits)  # SCSRN and VCCIP mix blocks: outside mai2022
    assert small.contains(next(e.spec for e in fits if e.name == "z6-scsrn"))


def test_optuna_draws_per_layer_parameters_as_deep_as_the_net():
    """Widths and blocks are conditional parameters: a trial draws width_i and block_i only for the convs its depth
    gives it; a finished trial's parameters read back into the same spec."""
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5, multivariate=True,
                                                                   group=True))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    specs = []
    for _ in range(12):
        trial = study.ask()
        spec = LAYERS.suggest(trial)
        specs.append(spec)
        widths = [trial.params[f"width_{i}"] for i in range(spec.depth + 1)]
        assert list(spec.feature_widths) == widths and f"width_{spec.depth + 1}" not in trial.params
        assert LAYERS.params_of(spec) == trial.params
        assert LAYERS.replay(trial.params)[0] == spec
        study.tell(trial, float(sum(widths)))
    assert any(s.per_layer for s in specs)


def test_the_covering_set_varies_the_widths_through_the_net():
    cov = LAYERS.covering(seed=0)
    assert all(LAYERS.contains(s) == [] for s in cov)
    assert {s.depth for s in cov} >= {1, 12} and sum(s.per_layer for s in cov) >= len(cov) // 3
    assert any(len(set(s.blocks)) > 1 for s in cov)
    rng = np.random.default_rng(0)
    drawn = [LAYERS.sample(rng) for _ in range(50)]
    assert all(LAYERS.contains(s) == [] for s in drawn) and sum(s.per_layer for s in drawn) > 40


def test_a_space_written_before_per_layer_widths_keeps_its_digest():
    """Adding width.per_layer changed mai2022's dump, so its digest, and every committed table (which keeps the
    digest of the space it was made on) was refused: 'made on space mai2022 (72331308e7e7), not on this study's
    space mai2022 (67b720456f4e)'. A field at its default is left out of the dump."""
    from nas.benchmark._table import space_digest

    with open(TABLE) as fh:
        kept = [json.loads(ln.split(":", 1)[1]) for ln in fh if ln.startswith("# space_digest:")]
    assert kept == [space_digest(load_space("mai2022"))] == ["72331308e7e7"]
    assert "per_layer" in json.dumps(LAYERS.to_dict())
