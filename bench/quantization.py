"""Proxy training and quantization benchmark: ABPN trained with the default proxy budget on CBSD68, evaluated on
CSet5 as bicubic, FP32, INT8 after post-training quantization (PTQ), and INT8 after quantization-aware fine-tuning
(QAT) - beside a control that fine-tunes in float for the same steps and then quantizes post-training, so that the
QAT figure is not credited with the extra training.

    python -m bench.quantization [--train ../shared/data/CBSD68] [--valid ../shared/data/CSet5]
                                 [--steps 1000] [--qat-steps 200] [--spec zoo:abpn]
                                 [--json bench/results/quantization.json]

PSNR is the challenge's (RGB, border 3) with the literature's Y PSNR beside it. The challenge's best teams lose
0.02-0.1 dB from FP32 to INT8. The QAT model is exported as trained (``quantization_trained``: the export keeps the
levels QAT chose). The figures go to ``--json`` (for the default data and spec, ``bench/results/quantization.json``,
which the benchmarks page quotes).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench._harness import RESULTS, ROOT, write_result

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", default=str(ROOT.parent / "shared" / "data" / "CBSD68"))
    ap.add_argument("--valid", default=str(ROOT.parent / "shared" / "data" / "CSet5"))
    ap.add_argument("--spec", default="zoo:abpn")
    ap.add_argument("--steps", type=int, default=None, help="proxy steps (default: the proxy budget)")
    ap.add_argument("--qat-steps", type=int, default=200)
    ap.add_argument("--qat-lr", type=float, default=2e-5)
    ap.add_argument("--json", default=str(RESULTS / "quantization.json"), help="write the figures here ('': not)")
    args = ap.parse_args()

    from nas.data import load_images
    from nas.evaluate import Bicubic, KerasUpscaler, TfliteUpscaler, evaluate
    from nas.export import export_int8
    from nas.space import load_spec
    from nas.train import DEFAULT_PROXY_STEPS, Stage, TrainConfig, train

    spec = load_spec(args.spec)
    images = load_images(args.train)
    valid = load_images(args.valid, "valid")
    steps = args.steps or DEFAULT_PROXY_STEPS
    calib = [p.hr for p in images.pairs[:16]]

    def ev(name: str, up) -> dict:
        r = evaluate(up, valid, with_ssim=False)
        print(f"  {name:<44} {r.psnr_rgb:7.3f} dB RGB  {r.psnr_y:7.3f} dB Y", flush=True)
        return {"rgb": r.psnr_rgb, "y": r.psnr_y}

    def int8(weights, name: str, tmp: Path, qat: bool = False) -> dict:
        res = export_int8(spec, tmp / f"{name}.tflite", weights=weights, images=calib, seed=0,
                          quantization_trained=qat)
        return ev(f"INT8 {name} ({res.size_bytes / 1024:.1f} KB)", TfliteUpscaler(res.path))

    print(f"{spec.describe()} ({spec.hash}); train {args.train} ({len(images)} images), "
          f"valid {args.valid} ({len(valid)} images)")
    bic = ev("bicubic", Bicubic(spec.scale))
    t = time.perf_counter()
    proxy = train(spec, images, TrainConfig.proxy(steps))
    t_proxy = time.perf_counter() - t
    print(f"proxy: {steps} steps in {t_proxy:.0f} s ({steps / t_proxy:.1f} steps/s)")
    fp32 = ev(f"FP32 after proxy ({steps} steps)", KerasUpscaler(spec, proxy.weights))
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        ptq = int8(proxy.weights, "PTQ", tmp)
        # control: the proxy's stage again (same seed, same batches: the same weights) followed by the same
        # fine-tuning budget in float, then PTQ
        longer = train(spec, images, TrainConfig(steps=steps + args.qat_steps, stages=(
            Stage(name="l1", share=steps / (steps + args.qat_steps), lr=1e-3, lr_end=1e-5, warmup=0.02),
            Stage(name="float-ft", share=args.qat_steps / (steps + args.qat_steps), lr=args.qat_lr,
                  lr_end=args.qat_lr / 100))))
        fp32_ctl = ev(f"FP32 control (+{args.qat_steps} float steps)", KerasUpscaler(spec, longer.weights))
        ctl = int8(longer.weights, "PTQ of the control", tmp)
        qat = train(spec, images, TrainConfig(steps=args.qat_steps, stages=(
            Stage(name="qat", lr=args.qat_lr, lr_end=args.qat_lr / 100, qat=True),)), init=proxy.weights)
        fp32_qat = ev(f"FP32 weights after QAT (+{args.qat_steps} steps)", KerasUpscaler(spec, qat.weights))
        q = int8(qat.weights, "after QAT", tmp, qat=qat.quantization_trained)

    print("\nsummary (CSet5, RGB PSNR as the challenge; Y in brackets)")
    print(f"  INT8 (PTQ) gain over bicubic:        {ptq['rgb'] - bic['rgb']:+.3f} dB  ({ptq['y'] - bic['y']:+.3f})")
    print(f"  FP32 -> INT8 drop, PTQ:              {fp32['rgb'] - ptq['rgb']:+.3f} dB  ({fp32['y'] - ptq['y']:+.3f})")
    print(f"  FP32 -> INT8 drop, control + PTQ:    {fp32_ctl['rgb'] - ctl['rgb']:+.3f} dB  "
          f"({fp32_ctl['y'] - ctl['y']:+.3f})")
    print(f"  FP32 (proxy) -> INT8 after QAT:      {fp32['rgb'] - q['rgb']:+.3f} dB  ({fp32['y'] - q['y']:+.3f})")
    print(f"  INT8 after QAT vs INT8 control:      {q['rgb'] - ctl['rgb']:+.3f} dB  ({q['y'] - ctl['y']:+.3f})")
    print(f"  QAT model in float vs its INT8:      {fp32_qat['rgb'] - q['rgb']:+.3f} dB")
    print(f"  proxy wall time: {t_proxy:.0f} s")
    if args.json:
        write_result(args.json, {
            "spec": spec.describe(), "train": args.train, "valid": args.valid, "steps": steps,
            "qat_steps": args.qat_steps, "proxy_seconds": t_proxy, "bicubic": bic, "fp32": fp32, "int8_ptq": ptq,
            "fp32_control": fp32_ctl, "int8_control": ctl, "fp32_qat_weights": fp32_qat, "int8_qat": q})
    return 0


if __name__ == "__main__":
    sys.exit(main())
