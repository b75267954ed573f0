"""What the export does to weights that come out of QAT: each full-schedule training of the fidelity bench, exported
again from its saved weights three ways, side by side on the validation photographs.

    python -m bench.qat_export [--results runs/bench-fidelity/fidelity/proxy-check/results] [--json FILE]

* ``as trained``: converted as given (what the export does with QAT's weights since 2026-12-07): every kernel on the
  level of the nearest rounding its fake quantizer trained it for;
* ``rescaled``: first rescaled as float weights are (:func:`nas.model.int8_ready` without rounding), then converted;
* ``rescaled + re-rounded``: rescaled, then every kernel re-rounded for its output on the calibration images (GPTQ):
  how float weights are exported, and how QAT's were until 2026-12-07;
* ``QAT weights in float``: the same weights run in float, without their quantizers (the FP32 figure until then);
* where the training kept its float model (``<key>.float.npz``: the float stages' result, which QAT starts from):
  that model in float (the FP32 figure since) and exported as float weights are (post-training quantization, as the
  proxy's are): does QAT beat quantizing the float model after training?

Reads every ``<key>.npz`` whose key is a ``3000-full`` training (its spec in ``<key>.json``) in ``--results`` (the
fidelity bench's work folder keeps the trained weights; the repository keeps only the figures). Writes
``bench/results/qat-export.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench._harness import RESULTS, write_result
from nas.data import load_images
from nas.evaluate import KerasUpscaler, TfliteUpscaler, evaluate
from nas.export import export_int8
from nas.model import load_weights
from nas.space import ArchSpec

WAYS = {"as trained": dict(quantization_trained=True), "rescaled": dict(rounding=False),
        "rescaled + re-rounded": {}}


def measure(results: Path) -> list[dict]:
    train, valid = load_images("embedded", "train"), load_images("embedded", "valid")
    calib = [p.hr for p in train.pairs[:16]]  # (what a trial's export calibrates on)
    rows = []
    for npz in sorted(f for f in results.glob("*-3000-full-*.npz") if not f.name.endswith(".float.npz")):
        rec = json.loads(npz.with_suffix(".json").read_text(encoding="utf-8"))
        spec, weights = ArchSpec.from_dict(rec["spec"]), load_weights(npz)
        row = {"key": npz.stem, "spec": spec.describe(), "hash": spec.hash,
               "qat_weights_fp32": evaluate(KerasUpscaler(spec, weights), valid, with_ssim=False).psnr_rgb}
        with tempfile.TemporaryDirectory(prefix="qat-export-") as tmp:
            for way, kw in WAYS.items():
                t0 = time.perf_counter()
                model = export_int8(spec, Path(tmp) / "m.tflite", weights=weights, images=calib, seed=0, **kw).path
                row[way] = evaluate(TfliteUpscaler(model), valid, with_ssim=False).psnr_rgb
                row[f"{way} s"] = time.perf_counter() - t0
            float_npz = npz.with_name(npz.name[:-len(".npz")] + ".float.npz")
            if float_npz.exists():
                fw = load_weights(float_npz)
                row["float_fp32"] = evaluate(KerasUpscaler(spec, fw), valid, with_ssim=False).psnr_rgb
                model = export_int8(spec, Path(tmp) / "f.tflite", weights=fw, images=calib, seed=0).path
                row["float_ptq"] = evaluate(TfliteUpscaler(model), valid, with_ssim=False).psnr_rgb
        rows.append(row)
        print(f"  {row['spec']}: INT8 as trained {row['as trained']:.2f} dB, re-rounded "
              f"{row['rescaled + re-rounded']:.2f}", flush=True)
    return rows


def report(rows: list[dict]) -> None:
    print(f"\n  {len(rows)} full-schedule trainings (3,000 steps, QAT the last 10%); INT8 PSNR (RGB dB) on the validation "
          "photographs:\n")
    print(f"  {'spec':48s} {'as trained':>10s} {'rescaled':>9s} {'re-rounded':>10s} {'QAT w. in float':>15s}"
          f" {'trained - re-rounded':>21s}")
    for r in rows:
        print(f"  {r['spec'][:48]:48s} {r['as trained']:10.3f} {r['rescaled']:9.3f} {r['rescaled + re-rounded']:10.3f}"
              f" {r['qat_weights_fp32']:15.3f} {r['as trained'] - r['rescaled + re-rounded']:+21.3f}")
    kept = [r for r in rows if "float_ptq" in r]
    if kept:
        print(f"\n  the float model QAT started from, {len(kept)} trainings: FP32, INT8 by post-training quantization, "
              "INT8 after QAT:\n")
        for r in kept:
            print(f"  {r['spec'][:48]:48s} {r['float_fp32']:7.3f} {r['float_ptq']:7.3f} {r['as trained']:7.3f}   "
                  f"QAT - PTQ {r['as trained'] - r['float_ptq']:+.3f} dB, FP32 - INT8 after QAT "
                  f"{r['float_fp32'] - r['as trained']:+.3f}")
    if rows:
        gains = [r["as trained"] - r["rescaled + re-rounded"] for r in rows]
        print(f"\n  converting QAT's weights as trained gains {min(gains):+.2f} to {max(gains):+.2f} dB "
              "over re-rounding them")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default="runs/bench-fidelity/fidelity/proxy-check/results",
                    help="the fidelity bench's results folder (with the trained weights)")
    ap.add_argument("--json", default=str(RESULTS / "qat-export.json"))
    ap.add_argument("--print-only", action="store_true", help="print the committed result")
    a = ap.parse_args()
    if a.print_only:
        report(json.loads(Path(a.json).read_text(encoding="utf-8")))
        return 0
    results = Path(a.results)
    if not any(results.glob("*-3000-full-*.npz")):
        print(f"no full-schedule trainings with weights in {results}: run python -m bench.fidelity --part tau "
              "--work ... first, or --print-only", file=sys.stderr)
        return 1
    rows = measure(results)
    write_result(a.json, rows)
    report(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
