import json

import numpy as np
import pytest

from nas.errors import SpecError
from nas.space import ArchSpec, Block, Skip, load_space, zoo_entries, zoo_get


def test_json_round_trip_is_exact_for_zoo_and_sampled_specs():
    space = load_space("mai2022")
    rng = np.random.default_rng(7)
    specs = [e.spec for e in zoo_entries()] + [space.sample(rng) for _ in range(50)]
    for spec in specs:
        again = ArchSpec.from_json(spec.to_json())
        assert again == spec
        assert again.hash == spec.hash
        assert ArchSpec.from_json(spec.to_json(indent=2)) == spec


def test_hash_is_stable_across_versions():
    # Golden value: studies store spec hashes; changing the canonical form would orphan every stored trial.
    assert zoo_get("abpn").spec.hash == "b38e413da1fc"


def test_equal_specs_hash_equal_and_any_change_changes_the_hash():
    a = ArchSpec(width=32, depth=4, blocks="conv", skip="repeat_add", tail=(3,))
    b = ArchSpec.from_dict({"width": 32, "depth": 4, "block": "conv", "skip": "repeat_add", "tail": [3]})
    assert a == b and a.hash == b.hash
    variants = [a.replace(width=48), a.replace(depth=5), a.replace(blocks="ecb"), a.replace(skip="none"),
                a.replace(clip_where="after_d2s"), a.replace(clip_kind="relu"), a.replace(tail=()), a.replace(expansion=4)]
    assert len({v.hash for v in variants} | {a.hash}) == len(variants) + 1


def test_block_shorthand_expands_to_every_conv():
    spec = ArchSpec(width=16, depth=3, blocks="repconv", tail=(3,))
    assert spec.blocks == (Block.REPCONV,) * 6
    assert spec.to_dict()["blocks"] == ["repconv"] * 6


def test_conv_layout_names_and_channels():
    spec = ArchSpec(width=32, depth=2, blocks="conv", skip=Skip.CONCAT_INPUT, tail=(1,))
    slots = spec.convs()
    assert [s.name for s in slots] == ["head", "body_01", "body_02", "tail_1", "tail_2"]
    # (the image rides on past tail_1 to tail_2, which folds the anchor: training form 4)
    assert [(s.cin, s.cout) for s in slots] == [(3, 32), (32, 32), (32, 32), (35, 30), (30, 27)]
    assert [s.relu for s in slots] == [True, True, True, True, False]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"width": 0, "depth": 2, "block": "conv"}, "field 'width': 0 must be in [1, 1024]"),
        ({"width": 16, "depth": -1, "block": "conv"}, "field 'depth'"),
        ({"width": 16, "depth": 2, "block": "wavelet"}, "field 'blocks[0]': 'wavelet' is not one of conv, repconv, ecb, clb"),
        ({"width": 16, "depth": 2, "blocks": ["conv", "conv"]}, "field 'blocks': 2 entries, but the layout has 4 convs"),
        ({"width": 16, "depth": 2, "block": "repconv", "tail": [1]}, "tail_2 is a 1x1 conv and must be 'conv'"),
        ({"width": 3, "depth": 2, "block": "conv", "skip": "carry"}, "leaves no feature channels"),
        ({"width": 16, "depth": 2, "block": "conv", "skip": "teleport"}, "field 'skip': 'teleport'"),
        ({"width": 16, "depth": 2, "block": "conv", "tail": [5]}, "field 'tail[0]'"),
        ({"width": 16, "depth": 2, "block": "conv", "tail": [2]}, "field 'tail[0]': kernel 2 must be odd"),
        ({"width": "16", "depth": 2, "block": "conv"}, "field 'width': '16' is not an integer"),
        ({"width": 16, "depth": 2, "block": "conv", "colour": 1}, "unknown field 'colour'"),
        ({"depth": 2, "block": "conv"}, "missing field 'width'"),
        ({"width": 16, "depth": 2, "block": "conv", "version": 9}, "field 'version'"),
    ],
)
def test_invalid_specs_name_the_field_and_value(data, message):
    with pytest.raises(SpecError) as err:
        ArchSpec.from_dict(data)
    assert message in str(err.value)


def test_malformed_json_is_a_spec_error():
    with pytest.raises(SpecError, match="not valid JSON"):
        ArchSpec.from_json("{width: 16")
    with pytest.raises(SpecError, match="must be a JSON object"):
        ArchSpec.from_json(json.dumps([1, 2]))


def test_spec_is_frozen():
    spec = zoo_get("abpn").spec
    with pytest.raises(Exception):
        spec.width = 64  # type: ignore[misc]


@pytest.mark.parametrize("skip", ["carry", "concat_input"])
def test_a_folded_anchor_folds_into_the_last_conv_with_the_image_carried_past_tail_1(skip):
    """Training form 4: with tail convs after tail_1, the image rides on in 3 more channels to the last conv, which
    folds the anchor; no tail conv passes the image through its weights (bench/int8_probes.py: such a conv's int8
    kernel, identity plus small corrections, alone cost 1.5-3.7 dB). Without tail convs nothing changes."""
    spec = ArchSpec(width=32, depth=2, blocks="conv", skip=skip, tail=[3, 1], clip_where="before_d2s")
    t1, t2, t3 = spec.convs()[-3:]
    cin = 32 + (3 if skip == "concat_input" else 0)
    assert (t1.cin, t1.cout, t1.carry_in, t1.carry_out, t1.relu) == (cin, 30, True, True, True)
    assert (t2.cin, t2.cout, t2.carry_out, t2.relu) == (30, 30, True, True)
    assert (t3.name, t3.kernel, t3.cin, t3.cout, t3.carry_in, t3.carry_out, t3.relu) == \
        ("tail_3", 1, 30, 27, True, False, False)
    plain = ArchSpec(width=32, depth=2, blocks="conv", skip=skip, clip_where="before_d2s")
    assert (plain.convs()[-1].cin, plain.convs()[-1].cout, plain.convs()[-1].carry_out) == (cin, 27, False)
