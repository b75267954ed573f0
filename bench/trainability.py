"""Does every network of the space learn under the default proxy? A covering set of specs, trained as the search
trains them.

    python -m bench.trainability [--space mai2022] [--at-least 24] [--steps 300] [--seed 0]
                                 [--work runs/bench-trainability]

The specs are :meth:`SearchSpace.covering`: every width, the depth extremes and middle, and every block, skip,
clip placement, clip kind and tail, with every pair of choices of two dimensions together in at least one spec.
Each is one search trial (``run_trial``: the default proxy on the embedded photographs, fused, exported to INT8 at
the latency model's input size, evaluated on the held-out photographs). A spec *learns* when its FP32 PSNR beats
its own anchor (nearest-neighbour x3, what a dead residual outputs) by at least 0.5 dB and beats bicubic. A spec
without an anchor (skip ``none``) must learn the identity from scratch; it is judged against bicubic alone. INT8
is reported beside it; a spec whose INT8 model loses more than 0.5 dB of it is named with the reason.

Results are cached in ``--work/results.json`` (a second run only prints; an interrupted run goes on where it was);
a fresh ``--work`` starts from ``bench/results/trainability.json``, the results measured so far (copy the cache
there to keep new ones).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench._harness import ROOT, write_result
from nas.data import load_images
from nas.evaluate import Bicubic, Upscaler, evaluate
from nas.model import result_forms
from nas.search import SearchConfig, TrialJob, run_trial
from nas.space import Skip, load_space

MARGIN_DB = 0.5
KEPT = ROOT / "bench" / "results" / "trainability.json"


class Nearest(Upscaler):
    """Nearest-neighbour x``scale``: the anchor every anchored net of the space starts from."""

    def __init__(self, scale: int = 3):
        self.scale, self.name = scale, f"nearest x{scale}"

    def upscale(self, lr: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(lr, self.scale, axis=0), self.scale, axis=1)


def _int8_reason(spec) -> str:
    """Why a spec's INT8 model loses what its float model learnt (from what the bench's probes found)."""
    if spec.skip in (Skip.CARRY, Skip.CONCAT_INPUT) and spec.tail:
        return ("loses it: the tail conv after the folded anchor carries the whole image through weights of "
                "identity + small corrections, which per-channel int8 (step 1/127 of the identity tap) cannot hold")
    return "loses it"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="mai2022")
    ap.add_argument("--at-least", type=int, default=24)
    ap.add_argument("--steps", type=int, default=None, help="proxy steps (default: the search's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="runs/bench-trainability")
    ap.add_argument("--cached", action="store_true", help="print what is measured so far; train nothing")
    ap.add_argument("--only", default="", help="train only the specs whose hash starts with one of these "
                                               "(comma-separated); the others are reported as cached")
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    cfg = SearchConfig(name="bench-trainability", out=str(work), seed=a.seed,
                       **({"proxy": {"steps": a.steps}} if a.steps else {}))
    specs = load_space(a.space).covering(seed=a.seed, at_least=a.at_least)
    valid = load_images(cfg.data.valid or "embedded", "valid")
    train = load_images(cfg.data.train, "train")
    anchor = evaluate(Nearest(), valid, with_ssim=False).psnr_rgb
    bicubic = evaluate(Bicubic(), valid, with_ssim=False).psnr_rgb
    cache = work / "results.json"
    if not cache.exists() and KEPT.exists():  # results measured before, kept in the repository
        cache.write_text(KEPT.read_text())
    results = json.loads(cache.read_text()) if cache.exists() else {}
    key = f"{cfg.proxy.steps}-{cfg.proxy.loss}-{cfg.seed}"
    print(f"{len(specs)} specs of '{a.space}' (pairwise covering), {cfg.proxy.steps}-step proxy ({cfg.proxy.loss}), "
          f"seed {cfg.seed}; validation: {', '.join(p.name for p in valid.pairs)}", flush=True)
    t_all = time.perf_counter()
    only = tuple(h for h in a.only.split(",") if h)
    for i, spec in enumerate(specs):
        k = f"{spec.hash}-{key}-{result_forms(spec)}"
        if k not in results and not a.cached and not (only and not spec.hash.startswith(only)):
            out = run_trial(TrialJob(i, spec, cfg, cfg.export.input_size or (360, 640), None),
                            images=(train, valid))
            results[k] = {"state": out.state, "reason": out.reason, "fp32": out.metrics.get("fp32_psnr"),
                          "int8": out.metrics.get("int8_psnr"), "train_s": out.seconds.get("train")}
            write_result(cache, results)
            print(f"  [{i + 1}/{len(specs)}] {spec.describe()}: INT8 {results[k]['int8']} dB "
                  f"({results[k]['train_s'] or 0:.0f} s)", flush=True)
    rows = []
    not_run = {"state": "not run", "reason": "not run yet", "fp32": None, "int8": None, "train_s": None}
    for spec in specs:
        r = results.get(f"{spec.hash}-{key}-{result_forms(spec)}", not_run)  # (a placeholder only here: the cache keeps real results)
        has_anchor = spec.skip is not Skip.NONE
        if r["state"] == "not run":
            verdict = r["reason"]
        elif r["state"] != "complete":
            verdict = f"FAILED: {r['reason']}"
        elif has_anchor and r["fp32"] < anchor + MARGIN_DB:
            verdict = "STUCK near its anchor"
        elif r["fp32"] <= bicubic:
            verdict = "below bicubic" + ("" if has_anchor else " (no anchor: learns the identity from scratch)")
        else:
            verdict = "learns"
        if r["state"] == "complete" and r["fp32"] - r["int8"] > MARGIN_DB:
            verdict += "; INT8 " + _int8_reason(spec)
        rows.append((spec, r, verdict))
    print(f"\nTrainability after the {cfg.proxy.steps}-step proxy: RGB PSNR on the held-out photographs "
          f"(anchor = nearest x3 {anchor:.3f} dB, bicubic {bicubic:.3f} dB); learns = FP32 >= anchor + "
          f"{MARGIN_DB} dB and > bicubic; INT8 losses over {MARGIN_DB} dB are named")
    print(f"  {'spec':<50} {'FP32':>7} {'INT8':>7} {'-anchor':>8} {'-bicubic':>9} {'INT8 drop':>9}  verdict")
    for spec, r, verdict in rows:
        if r["state"] == "complete":
            print(f"  {spec.describe():<50} {r['fp32']:7.2f} {r['int8']:7.2f} {r['int8'] - anchor:+8.2f} "
                  f"{r['int8'] - bicubic:+9.2f} {r['fp32'] - r['int8']:9.2f}  {verdict}")
        else:
            print(f"  {spec.describe():<50} {'-':>7} {'-':>7} {'-':>8} {'-':>9} {'-':>9}  {verdict}")
    learn = sum(v.startswith("learns") for _, _, v in rows)
    int8_ok = sum(r["state"] == "complete" and r["int8"] >= anchor + MARGIN_DB and r["int8"] > bicubic
                  for _, r, _ in rows)
    measured = sum(r["state"] != "not run" for _, r, _ in rows)
    print(f"  {learn} of {measured} measured specs learn (FP32); {int8_ok} of {measured} also beat their anchor by "
          f"{MARGIN_DB} dB and bicubic in INT8" + (f"; {len(rows) - measured} not run yet" if measured < len(rows)
                                                    else ""))
    print("\nMean INT8 gain over bicubic by choice (dB):")
    for dim, get in (("width", lambda s: s.width), ("depth", lambda s: s.depth), ("block", lambda s: s.blocks[0].value),
                     ("skip", lambda s: s.skip.value), ("clip", lambda s: f"{s.clip_kind.value}:{s.clip_where.value}"),
                     ("tail", lambda s: str(list(s.tail)))):
        groups: dict = {}
        for spec, r, _ in rows:
            if r["state"] == "complete":
                groups.setdefault(get(spec), []).append(r["int8"] - bicubic)
        print(f"  {dim:<6} " + "  ".join(f"{v}: {np.mean(g):+.2f} (n={len(g)})" for v, g in sorted(groups.items(), key=lambda kv: str(kv[0]))))
    print(f"\n({time.perf_counter() - t_all:.0f} s this run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
