import pytest

from nas.errors import ZooError
from nas.space import ArchSpec, deploy_ops, zoo_entries, zoo_get


def _params(spec: ArchSpec) -> tuple[int, int]:
    ops = deploy_ops(spec)
    return sum(o.params for o in ops), sum(o.frozen_params for o in ops)


def test_abpn_has_42539_parameters():  # the ABPN paper's count
    assert _params(zoo_get("abpn").spec) == (42539, 0)


def test_ncnet_has_52279_parameters_and_a_frozen_81_weight_anchor():  # NCNet's public code
    assert _params(zoo_get("ncnet").spec) == (52279, 81)


def test_abpn_macs_at_360x640():
    # 42,539 params minus biases (196), times 360*640 output pixels
    spec = zoo_get("abpn").spec
    assert sum(o.macs for o in deploy_ops(spec)) == (42539 - (28 * 5 + 27 * 2)) * 360 * 640


def _as_published(spec: ArchSpec) -> list[dict]:
    """The deployed op table in the published file's layer vocabulary (consecutive equal convs merged)."""
    out: list[dict] = []
    kinds = {"repeat_add": "repeat_add", "nearest_conv_add": "nearest_conv_add", "conv_add": "conv_add"}
    ops = deploy_ops(spec)
    for op in ops:
        if op.type == "conv" and op.name != "anchor":
            layer = {"op": "conv", "k": op.kernel, "in": op.in_channels[0], "out": op.out_shape[2], "act": op.act}
            prev = out[-1] if out else None
            if prev and {k: v for k, v in prev.items() if k != "repeat"} == layer:
                prev["repeat"] = prev.get("repeat", 1) + 1
            else:
                out.append(layer)
        elif op.name == "anchor_add":
            out.append({"op": "anchor", "kind": kinds[spec.skip.value]})
        elif op.name == "concat_input":
            out.append({"op": "concat_input"})
        elif op.type == "clip":
            out.append({"op": "clip", "where": spec.clip_where.value})
        elif op.type == "depth_to_space":
            out.append({"op": "depth_to_space", "block": spec.scale})
    # the published file writes the first body conv separately from the head only by its input width
    return out


def _normalise(layers: list[dict]) -> list[dict]:
    out = []
    for layer in layers:
        layer = dict(layer)
        if layer.get("op") == "conv" and layer.get("repeat", 1) == 1:
            layer.pop("repeat", None)
        out.append(layer)
    return out


def test_every_high_and_medium_published_row_is_in_the_zoo_with_its_graph(published_rows):
    rows = [r for r in published_rows if r["confidence"] in ("high", "medium")]
    assert len(rows) == 13
    for row in rows:
        entry = zoo_get(row["name"])
        layers = _normalise(row["layers"])
        if row["name"] == "ecnusr-pureconvsr":
            # training form 4 folds a carry net's anchor into its last conv, here the 1x1 tail, so the image rides
            # on past tail_1 in 3 more channels (PureConvSR folds it into tail_1 and its 1x1 conv is the clip's
            # equivalent transformation, exact in int8; ours is learnt, whose int8 kernel cannot be the identity
            # plus small corrections: bench/int8_probes.py)
            assert (layers[2]["out"], layers[3]["in"]) == (27, 27)
            layers[2], layers[3] = {**layers[2], "out": 30}, {**layers[3], "in": 30}
        assert _normalise(_as_published(entry.spec)) == layers, row["name"]
        t1 = entry.table1
        assert (t1.npu_ms, t1.cpu_ms, t1.size_kb, t1.psnr, t1.ssim, t1.score) == (
            row["npu_ms"], row["cpu_ms"], row["size_kb"], row["psnr"], row["ssim"], row["score"]), row["name"]


def test_aliases_and_names_resolve():
    assert zoo_get("ABPN").name == "abpn-baseline"
    assert zoo_get("ncnet").name == "megsr-ncnet"
    assert zoo_get("pureconvsr").spec.skip.value == "carry"
    assert zoo_get("hopn").spec.has_anchor_add is False
    assert len({e.name for e in zoo_entries()}) == len(zoo_entries())


def test_unknown_name_suggests_close_ones():
    with pytest.raises(ZooError) as err:
        zoo_get("abpnn")
    assert "unknown zoo network 'abpnn'" in str(err.value)
    assert "abpn" in str(err.value).split("did you mean")[1]


def test_pureconvsr_deployed_graph_has_no_add_or_concat():
    types = [o.type for o in deploy_ops(zoo_get("pureconvsr").spec)]
    assert "add" not in types and "concat" not in types and "clip" not in types
    assert types.count("conv") == 6
