"""Why does the full schedule's QAT stage lose INT8 PSNR against its own float model? One factor at a time.

    python -m bench.qat_probes [--results runs/bench-fidelity/fidelity/proxy-check/results] [--key PREFIX]
                               [--steps 300] [--json bench/results/qat-probes.json]

Takes a full-schedule training the fidelity bench kept with its float model (``<key>.float.npz``: the float stages'
result, which the QAT stage starts from) and measures, on the validation photographs, INT8 PSNR of:

* the float model exported as float weights are (post-training quantization: rescaled, every kernel rounded for its
  output, GPTQ), with nearest rounding instead, and converted as given (neither);
* the QAT stage again (``--steps``, the schedule's learning rate, EMA) with its L1 loss and with L2 instead;
* the same QAT stage started from the GPTQ-rounded weights (on the grid, so its fake quantizers start at that
  rounding), and those weights before any QAT step.

Each QAT arm is exported as trained. Writes ``bench/results/qat-probes.json``; ``--print-only`` prints it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench._harness import RESULTS, write_result
from nas.data import load_images
from nas.evaluate import KerasUpscaler, TfliteUpscaler, evaluate
from nas.export import calibration_samples, export_int8
from nas.model import int8_ready, load_weights
from nas.space import ArchSpec
from nas.train import QAT_CALIBRATION_HW, Stage, TrainConfig, train


def measure(float_npz: Path, steps: int) -> dict:
    key = float_npz.name[:-len(".float.npz")]
    spec = ArchSpec.from_dict(json.loads(float_npz.with_name(f"{key}.json").read_text(encoding="utf-8"))["spec"])
    fw = load_weights(float_npz)
    train_set, valid = load_images("embedded", "train"), load_images("embedded", "valid")
    calib = [p.hr for p in train_set.pairs[:16]]
    out = {"key": key, "spec": spec.describe(), "steps": steps}

    def psnr(path) -> float:
        return evaluate(TfliteUpscaler(path), valid, with_ssim=False).psnr_rgb

    def say(name: str, value: float) -> None:
        out[name] = value
        print(f"  {name:<40} {value:7.3f} dB", flush=True)

    def qat(start, loss: str) -> dict:
        cfg = TrainConfig(steps=steps, ema=0.999, threads=1,
                          stages=(Stage(name="qat", loss=loss, lr=2e-5, lr_end=1e-7, qat=True),))
        return train(spec, train_set, cfg, init=start).weights

    print(f"{spec.describe()} ({key})", flush=True)
    say("float model FP32", evaluate(KerasUpscaler(spec, fw), valid, with_ssim=False).psnr_rgb)
    with tempfile.TemporaryDirectory(prefix="qat-probes-") as tmp:
        def int8(weights, **kw) -> float:
            return psnr(export_int8(spec, Path(tmp) / "m.tflite", weights=weights, images=calib, seed=0, **kw).path)

        say("PTQ (rescaled, GPTQ)", int8(fw))
        say("PTQ (rescaled, nearest)", int8(fw, rounding=False))
        say("PTQ (as given)", int8(fw, quantization_trained=True))
        say("QAT L1 (the schedule's)", int8(qat(fw, "l1"), quantization_trained=True))
        say("QAT L2", int8(qat(fw, "l2"), quantization_trained=True))
        start = int8_ready(spec, fw, calibration_samples(calib, QAT_CALIBRATION_HW, scale=spec.scale, seed=0))
        say("GPTQ-rounded start, no QAT step", int8(start, quantization_trained=True))
        say("QAT L1 from the GPTQ-rounded start", int8(qat(start, "l1"), quantization_trained=True))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default="runs/bench-fidelity/fidelity/proxy-check/results")
    ap.add_argument("--key", default="", help="the training's key prefix (default: the first with a float model)")
    ap.add_argument("--steps", type=int, default=300, help="QAT steps (the 3,000-step schedule's)")
    ap.add_argument("--json", default=str(RESULTS / "qat-probes.json"))
    ap.add_argument("--print-only", action="store_true")
    a = ap.parse_args()
    if a.print_only:
        for k, v in json.loads(Path(a.json).read_text(encoding="utf-8")).items():
            print(f"  {k:<40} {v:7.3f} dB" if isinstance(v, float) else f"  {k}: {v}")
        return 0
    found = sorted(Path(a.results).glob(f"{a.key}*-full-*.float.npz"))
    if not found:
        print(f"no full-schedule training with a float model in {a.results}: run python -m bench.fidelity --part tau "
              "first, or --print-only", file=sys.stderr)
        return 1
    write_result(a.json, measure(found[0], a.steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
