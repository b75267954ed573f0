"""How much of a validation set the nearest-neighbour anchor already gets exactly right (pixels a network cannot
improve), beside the standard test sets: does the embedded validation set tell networks apart?

    python -m bench.anchor_share [--sets embedded-valid,embedded-train,../shared/data/CBSD68,../shared/data/CSet5]
                                 [--json bench/results/anchor-share.json]

Writes one row per set (its label, image count, exact and within-one-level shares, per image exact shares, nearest
and bicubic PSNR); the docs' benchmark row quotes it (``tests/test_docs.py`` holds them together).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bench._harness import RESULTS, write_result
from nas.data import default_valid_source, load_images
from nas.evaluate import Bicubic, evaluate


def share(source, split: str, label: str) -> dict:
    images = load_images(source, split)
    exact, near, psnr = [], [], []
    for p in images.pairs:
        lr, hr = p.lr.astype(np.float64), p.hr.astype(np.float64)
        nn = np.repeat(np.repeat(lr, 3, 0), 3, 1)[:hr.shape[0], :hr.shape[1]]
        d = np.abs(nn - hr)
        exact.append((d == 0).mean())
        near.append((d <= 1).mean())
        psnr.append(10 * np.log10(255 ** 2 / ((nn - hr) ** 2).mean()))
    bic = evaluate(Bicubic(), images, with_ssim=False).psnr_rgb
    print(f"{label}: {len(images)} images; anchor exactly right on {100 * np.mean(exact):.1f}% of pixels (within one "
          f"level {100 * np.mean(near):.1f}%; per image {[round(100 * x) for x in exact][:12]}); nearest-neighbour "
          f"PSNR {np.mean(psnr):.2f} dB, bicubic {bic:.2f} dB (RGB)")
    return {"label": label, "images": len(images), "exact_pct": 100 * float(np.mean(exact)),
            "within_one_pct": 100 * float(np.mean(near)), "exact_pct_per_image": [100 * float(x) for x in exact],
            "nearest_psnr": float(np.mean(psnr)), "bicubic_psnr": float(bic)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="embedded-valid,embedded-train,../shared/data/CBSD68,../shared/data/CSet5")
    ap.add_argument("--json", default=str(RESULTS / "anchor-share.json"), help="write the rows here ('' not at all)")
    a = ap.parse_args()
    rows = []
    for name in a.sets.split(","):
        if name == "embedded-valid":
            rows.append(share(default_valid_source("embedded"), "valid", "embedded validation"))
        elif name == "embedded-train":
            rows.append(share("embedded", "train", "embedded training"))
        elif Path(name).exists():
            rows.append(share(name, "valid", Path(name).name))
        else:
            print(f"{name}: not found, left out", file=sys.stderr)
    if a.json:
        write_result(a.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
