import itertools
from pathlib import Path

import numpy as np
import optuna
import pytest

from nas.errors import SpaceError
from nas.space import load_space, zoo_get

GOOD = """\
name: t
width: {min: 16, max: 32, multiple_of: 16}
depth: {min: 1, max: 2}
blocks: {choices: [conv, repconv], per_layer: true}
skip: {choices: [none, carry]}
clip_where: {choices: [before_d2s]}
clip_kind: {choices: [clip, relu]}
tail: {choices: [[], [1]]}
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "space.yaml"
    p.write_text(text)
    return p


def test_default_space_loads_by_name_and_has_npu_aligned_widths():
    space = load_space("mai2022")
    assert space.width.values() == [16, 32, 48, 64]
    assert space.size() == 4 * 8 * 4 * 5 * 2 * 2 * 2


def test_size_matches_brute_force_enumeration(tmp_path):
    space = load_space(_write(tmp_path, GOOD))
    count = 0
    for depth, tail in itertools.product(space.depth.values(), space.tail.choices):
        n3 = 2 + depth + sum(1 for k in tail if k == 3)  # 1x1 tails are always plain
        count += len(list(itertools.product(space.blocks.choices, repeat=n3)))
    count *= len(space.width.values()) * len(space.skip.choices) * len(space.clip_kind.choices)
    assert space.size() == count


def test_sampling_is_seeded_and_stays_inside_the_space(tmp_path):
    space = load_space("mai2022")
    a = [space.sample(np.random.default_rng(3)).hash for _ in range(3)]
    assert len(set(a)) == 1
    rng = np.random.default_rng(0)
    specs = [space.sample(rng) for _ in range(200)]
    assert all(space.contains(s) == [] for s in specs)
    assert len({s.hash for s in specs}) > 150
    assert {s.skip.value for s in specs} == {c.value for c in space.skip.choices}
    per_layer = load_space(_write(tmp_path, GOOD))
    mixed = [per_layer.sample(rng) for _ in range(50)]
    assert any(len(set(s.blocks)) > 1 for s in mixed)


def test_suggest_with_a_real_optuna_trial():
    space = load_space("mai2022")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        trial = study.ask()
        spec = space.suggest(trial)
        assert space.contains(spec) == []
        assert trial.params["width"] == spec.width and trial.params["skip"] == spec.skip.value
        study.tell(trial, 0.0)


def test_contains_explains_why_a_spec_is_outside():
    why = load_space("mai2022").contains(zoo_get("abpn").spec)
    assert why == ["width 28 is not in 16..64 step 16"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (("min: 16, max: 32, multiple_of: 16", "min: 20, max: 32"), "field 'width': min 20 and max 32 must be multiples of 16"),
        (("depth: {min: 1, max: 2}", "depth: {min: 5, max: 2}"), "field 'depth': min 5 is greater than max 2"),
        (("[conv, repconv]", "[conv, wavelet]"), "field 'blocks.choices.1'"),
        (("[none, carry]", "[none, none]"), "field 'skip.choices': choice"),
        (("[none, carry]", "[]"), "field 'skip.choices'"),
        (("[[], [1]]", "[[], [5]]"), "tail kernel 5 is not 1 or 3"),
        (("name: t\n", "name: t\ncolour: red\n"), "unknown field 'colour'"),
        (("name: t\n", ""), "missing field 'name'"),
        (("min: 16, max: 32, multiple_of: 16", "min: 3, max: 32, multiple_of: 1"), "skip 'carry' needs width > 3"),
        (("depth: {min: 1, max: 2}", "depth: {min: one, max: 2}"), "field 'depth.min'"),
    ],
)
def test_bad_space_files_name_the_field_and_value(tmp_path, edit, message):
    old, new = edit
    assert old in GOOD
    with pytest.raises(SpaceError) as err:
        load_space(_write(tmp_path, GOOD.replace(old, new)))
    assert message in str(err.value)
    assert str(tmp_path) in str(err.value)


def test_not_yaml_missing_and_non_mapping_files(tmp_path):
    with pytest.raises(SpaceError, match="not valid YAML at line"):
        load_space(_write(tmp_path, "name: [\n"))
    with pytest.raises(SpaceError, match="must be a YAML mapping"):
        load_space(_write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(SpaceError, match="space file not found"):
        load_space(tmp_path / "nope.yaml")
    with pytest.raises(SpaceError, match="is a folder"):
        load_space(tmp_path)


def test_enumerate_lists_every_spec_of_the_space_once_with_the_parameters_that_make_it():
    space = load_space("mai2022")
    made = space.enumerate()
    assert space.size() == 5120 and len(made) == 5120  # 4 widths x 8 depths x 4 blocks x 5 skips x 2 x 2 x 2
    assert len({spec.hash for _, spec in made}) == len(made)
    for params, spec in made[::97]:
        assert space.params_of(spec) == params
    # blocks per layer: the parameters a spec has depend on its depth (block_0 .. block_{depth+1})
    from nas.space import SearchSpace

    tiny = SearchSpace.model_validate({
        **space.to_dict(), "name": "tiny", "width": {"min": 16, "max": 16, "multiple_of": 16},
        "depth": {"min": 1, "max": 2}, "blocks": {"choices": ["conv", "repconv"], "per_layer": True},
        "skip": {"choices": ["none"]}, "clip_where": {"choices": ["before_d2s"]}, "clip_kind": {"choices": ["clip"]},
        "tail": {"choices": [[]]}})
    made = tiny.enumerate()
    assert tiny.size() == 2**3 + 2**4 and len({spec.hash for _, spec in made}) == len(made) == tiny.size()
    assert all(tiny.params_of(spec) == params for params, spec in made)
