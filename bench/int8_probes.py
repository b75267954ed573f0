"""Where does a network's INT8 model lose what its float model learnt? One quantizer at a time.

    python -m bench.int8_probes [--specs HASH,...] [--steps 300] [--work runs/bench-int8-probes] [--raw]
                                [--export-rounds 2] [--no-sim] [--json FILE]

Each spec (by default the trainability covering set's nets that lose most in INT8, and two that do not) is trained
once as a search trial (the default proxy on the embedded photographs; its deploy weights kept in ``--work`` so a
second run only probes). Then, on the held-out photographs:

* ``fp32`` and ``int8``: the float deploy form and the real INT8 TFLite model (LiteRT), as a trial measures them;
* ``sim all``: the ``qat`` form with every quantizer on (per-channel int8 kernels, every stored tensor 8-bit over its
  calibrated range), holding the weights as the export rescales them (:func:`nas.model.int8_ready`, exact in float;
  ``--raw`` leaves them as trained): it should match ``int8``, which validates the probes below;
* one quantizer at a time, everything else in float: each conv's kernel (``w:NAME``) and each stored tensor
  (``a:NAME``); the loss each causes alone says which one the INT8 model pays for.

Ranges are calibrated on the export's own calibration samples (min/max, as the converter does).

``--export-rounds N`` also exports the kept weights again with today's export (``int8 now``, a real INT8 model), with
and without its rounding of kernels for their outputs, interleaved in N rounds, and prints both PSNRs and the
export's seconds: what the rounding buys and what it costs, side by side. ``--no-sim`` skips the probes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench._harness import write_result
from nas.data import load_images
from nas.evaluate import KerasUpscaler, ModelUpscaler, TfliteUpscaler, evaluate
from nas.export import calibration_samples, export_int8
from nas.model import load_weights
from nas.search import SearchConfig, TrialJob, run_trial
from nas.space import ArchSpec, load_space

DEFAULT = ("995ddf23df70", "1cbe685393e2", "65723c115b20", "cc5b03d8cd13", "01d2cd7717e3", "1159e979186a",
           "d41645948287", "2ee5ed74d970", "af4990431c9f")


def _train(spec: ArchSpec, cfg: SearchConfig, images, folder: Path) -> dict:
    done = folder / "metrics.json"
    if done.exists():
        return json.loads(done.read_text())
    out = run_trial(TrialJob(0, spec, cfg, cfg.export.input_size or (360, 640), None), images=images)
    if out.state != "complete":
        raise SystemExit(f"{spec.describe()}: {out.reason}")
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("weights.npz", "model_int8.tflite"):
        (folder / name).write_bytes(out.files[name])
    done.write_text(json.dumps({**out.metrics, "train_s": out.seconds.get("train"), "spec": spec.to_json()}))
    return json.loads(done.read_text())


class _Sim:
    """The qat form of a spec holding its deploy weights, every quantizer calibrated and switchable."""

    def __init__(self, spec: ArchSpec, weights, calib: np.ndarray, raw: bool = False):
        import tf_keras as keras

        from nas.model import ActQuant, QConv2D, int8_ready, qat_model

        self.model = qat_model(weights if raw else int8_ready(spec, weights, calib), spec)
        self.convs = [layer for layer in self.model.layers if isinstance(layer, QConv2D)]
        self.acts = [layer for layer in self.model.layers if isinstance(layer, ActQuant)]
        self.set(set(), set())
        probe = keras.Model(self.model.input, [layer.input for layer in self.acts])
        outs = [probe(c[None], training=False) for c in calib]
        for i, layer in enumerate(self.acts):
            lo = min(float(np.min(o[i])) for o in outs)
            hi = max(float(np.max(o[i])) for o in outs)
            layer.lo.assign(lo)
            layer.hi.assign(hi)
        self.ranges = {layer.name: (float(layer.lo.numpy()), float(layer.hi.numpy())) for layer in self.acts}

    def set(self, kernels, tensors) -> None:
        for layer in self.convs:
            layer.fake_quant = layer.name in kernels
        for layer in self.acts:
            layer.seen.assign(1.0 if layer.name in tensors else 0.0)

    def psnr(self, valid, kernels, tensors) -> float:
        self.set(kernels, tensors)
        return evaluate(ModelUpscaler(self.model), valid, with_ssim=False).psnr_rgb


def _export_now(spec, weights, folder: Path, train, valid, rounds: int) -> dict:
    """The kept weights exported again with today's export, with and without its rounding (interleaved rounds)."""
    images = [p.hr for p in train.pairs[:16]]
    secs: dict[bool, list[float]] = {True: [], False: []}
    psnr = {}
    for _ in range(rounds):
        for rounding in (True, False):
            out = folder / f"model_int8_now{'' if rounding else '_nearest'}.tflite"
            t = time.perf_counter()
            export_int8(spec, out, weights=weights, input_hw=(360, 640), images=images, seed=0, rounding=rounding)
            secs[rounding].append(round(time.perf_counter() - t, 1))
            psnr[rounding] = evaluate(TfliteUpscaler(out), valid, with_ssim=False).psnr_rgb
    return {"int8_now": psnr[True], "int8_nearest": psnr[False], "export_s": secs[True],
            "export_s_nearest": secs[False]}


def _probe(spec, weights, calib, valid, raw: bool, fp32: float, int8: float, t0: float) -> dict:
    """The one-quantizer probes of one spec (see the module docstring), printed as they come."""
    sim = _Sim(spec, weights, calib, raw)
    names_w = [layer.name for layer in sim.convs]
    names_a = [layer.name for layer in sim.acts]
    row = {"sim_all": sim.psnr(valid, names_w, names_a), "sim_weights": sim.psnr(valid, names_w, set()),
           "sim_acts": sim.psnr(valid, set(), names_a), "one": {}, "ranges": sim.ranges}
    for n in names_w:
        row["one"][f"w:{n}"] = sim.psnr(valid, {n}, set())
    for n in names_a:
        row["one"][f"a:{n}"] = sim.psnr(valid, set(), {n})
    worst = sorted(row["one"].items(), key=lambda kv: kv[1])[:4]
    print(f"{spec.describe():<48} fp32 {fp32:6.2f}  int8 {int8:6.2f} (drop {fp32 - int8:5.2f})  sim all "
          f"{row['sim_all']:6.2f}  weights only {row['sim_weights']:6.2f}  acts only {row['sim_acts']:6.2f}  "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    print("    worst single quantizers: " + ", ".join(f"{k} -{fp32 - v:.2f}" for k, v in worst), flush=True)
    big = {k: v for k, v in row["ranges"].items() if v[1] > 255.5}
    print("    stored tensors over 0..255: " + (", ".join(f"{k} {lo:.0f}..{hi:.0f}" for k, (lo, hi) in big.items())
                                               or "none"), flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", default=",".join(DEFAULT), help="hash prefixes of covering-set specs")
    ap.add_argument("--space", default="mai2022")
    ap.add_argument("--steps", type=int, default=None, help="proxy steps (default: the search's)")
    ap.add_argument("--work", default="runs/bench-int8-probes")
    ap.add_argument("--json", default="", help="write the figures here")
    ap.add_argument("--raw", action="store_true", help="probe the weights as trained (not as the export rescales them)")
    ap.add_argument("--export-rounds", type=int, default=0, help="export again with and without rounding, N rounds")
    ap.add_argument("--no-sim", action="store_true", help="skip the one-quantizer probes")
    a = ap.parse_args()
    cfg = SearchConfig(name="bench-int8-probes", out=a.work, **({"proxy": {"steps": a.steps}} if a.steps else {}))
    want = tuple(h for h in a.specs.split(",") if h)
    specs = [s for s in load_space(a.space).covering(seed=0, at_least=24) if s.hash.startswith(want)]
    train = load_images(cfg.data.train, "train")
    valid = load_images(cfg.data.valid or "embedded", "valid")
    calib = calibration_samples([p.hr for p in train.pairs[:16]], cfg.export.input_size or (360, 640), 3, 8,
                                cfg.seed)
    results = {}
    for spec in specs:
        folder = Path(a.work) / f"{spec.hash}-{cfg.proxy.steps}"
        t0 = time.perf_counter()
        _train(spec, cfg, (train, valid), folder)
        weights = load_weights(folder / "weights.npz")
        int8 = evaluate(TfliteUpscaler(folder / "model_int8.tflite"), valid, with_ssim=False).psnr_rgb
        fp32 = evaluate(KerasUpscaler(spec, weights), valid, with_ssim=False).psnr_rgb
        row = {"spec": spec.describe(), "fp32": fp32, "int8": int8}
        if a.export_rounds:
            row.update(_export_now(spec, weights, folder, train, valid, a.export_rounds))
            print(f"{spec.describe():<48} fp32 {fp32:6.2f}  int8 now {row['int8_now']:6.2f} (drop "
                  f"{fp32 - row['int8_now']:5.3f}), each weight to its nearest level {row['int8_nearest']:6.2f} (drop "
                  f"{fp32 - row['int8_nearest']:5.3f}); export s {row['export_s']} vs {row['export_s_nearest']}",
                  flush=True)
        if not a.no_sim:
            row.update(_probe(spec, weights, calib, valid, a.raw, fp32, int8, t0))
        results[spec.hash] = row
    if a.json:
        write_result(a.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
