"""The Pareto front of a study (INT8 PSNR up, predicted latency down) as a table, a CSV, an HTML plot and a PNG.

The latency on the front is the pessimistic one the search optimised (mean + k sigma), and the plots put every point
there, with a bar reaching back to the predicted mean: the front's step line then joins its own markers. They show
every trial behind the front, the warm-start zoo trials, and the reference zoo's published INT8 PSNR (DIV2K, full
training) at the pessimistic latency the same model predicts for it.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Sequence

__all__ = ["FrontPoint", "pareto_front", "write_front", "zoo_points"]


@dataclasses.dataclass(frozen=True)
class FrontPoint:
    """One completed trial as the front sees it."""

    number: int
    spec: str  # ArchSpec.describe()
    hash: str
    psnr: float  # INT8 PSNR (RGB, dB) on the study's validation images
    latency_ms: float  # predicted mean
    latency_sigma_ms: float
    latency_objective_ms: float  # mean + k sigma: what the search minimised
    log2_score: float  # on latency_objective_ms, the latency the search optimised: the one definition shown
    outside_range: bool = False
    warm_start: str = ""
    feasible: bool = True
    on_front: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def pareto_front(points: Sequence[FrontPoint]) -> list[FrontPoint]:
    """All points, with ``on_front`` set for the feasible ones no other feasible point dominates (higher or equal
    PSNR and lower or equal latency, one of them strictly), sorted by latency."""
    feas = [p for p in points if p.feasible and math.isfinite(p.psnr)]
    out = []
    for p in points:
        dominated = not p.feasible or any(
            q.psnr >= p.psnr and q.latency_objective_ms <= p.latency_objective_ms
            and (q.psnr > p.psnr or q.latency_objective_ms < p.latency_objective_ms) for q in feas)
        out.append(dataclasses.replace(p, on_front=not dominated))
    return sorted(out, key=lambda p: (p.latency_objective_ms, -p.psnr))


def zoo_points(latency_model, k: float = 1.0) -> list[dict]:
    """The reference zoo: published INT8 PSNR (Table 1) at the latency ``latency_model`` predicts (mean, and mean +
    ``k`` sigma as the search sees it)."""
    from nas.space import zoo_entries

    out = []
    for e in zoo_entries():
        if e.table1 is None or e.table1.psnr is None:
            continue
        pred = latency_model.predict(e.spec)
        out.append({"name": e.name, "psnr": e.table1.psnr, "latency_ms": pred.mean_ms,
                    "latency_objective_ms": pred.mean_ms + k * pred.stddev_ms, "published_npu_ms": e.table1.npu_ms})
    return out


def write_front(points: Sequence[FrontPoint], folder: str | Path, *, title: str, zoo: Sequence[dict] = (),
                k: float = 1.0) -> dict[str, Path]:
    """Write ``pareto.csv``, ``pareto.html`` (interactive) and ``pareto.png`` into ``folder``; return their paths."""
    import pandas as pd

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pts = pareto_front(points)
    df = pd.DataFrame([p.to_dict() for p in pts])
    csv = folder / "pareto.csv"
    (df[df["on_front"]] if len(df) else df).to_csv(csv, index=False)
    all_csv = folder / "trials.csv"
    df.to_csv(all_csv, index=False)
    html = folder / "pareto.html"
    _html(pts, zoo, html, title, k)
    png = folder / "pareto.png"
    _png(pts, zoo, png, title, k)
    return {"csv": csv, "trials": all_csv, "html": html, "png": png}


def _html(pts: Sequence[FrontPoint], zoo: Sequence[dict], path: Path, title: str, k: float) -> None:
    import plotly.graph_objects as go

    fig = go.Figure()

    def scatter(sel, name, **kw):
        if not sel:
            return
        fig.add_trace(go.Scatter(
            x=[p.latency_objective_ms for p in sel], y=[p.psnr for p in sel], name=name,
            error_x=dict(type="data", symmetric=False, array=[0.0] * len(sel),
                         arrayminus=[p.latency_objective_ms - p.latency_ms for p in sel], visible=True, thickness=1),
            text=[f"trial {p.number}: {p.spec}<br>mean {p.latency_ms:.2f} ms, log2 score {p.log2_score:.2f} (mean+k sigma)"
                  + (" (outside the latency model's range)" if p.outside_range else "") for p in sel],
            hovertemplate="%{text}<br>%{x:.2f} ms pessimistic, %{y:.3f} dB<extra></extra>", **kw))

    behind = [p for p in pts if not p.on_front]
    front = [p for p in pts if p.on_front]
    scatter(behind, "trials", mode="markers", marker=dict(color="#9aa0a6", size=8))
    scatter(front, "Pareto front", mode="lines+markers", marker=dict(color="#d62728", size=10),
            line=dict(shape="hv"))
    warm = [p for p in pts if p.warm_start]
    if warm:
        fig.add_trace(go.Scatter(x=[p.latency_objective_ms for p in warm], y=[p.psnr for p in warm],
                                 mode="markers+text",
                                 name="zoo (same proxy)", text=[p.warm_start for p in warm],
                                 textposition="top center",
                                 marker=dict(symbol="diamond-open", size=14, color="#1f77b4", line=dict(width=2))))
    if zoo:  # every name on hover; written out only for the zoo's own front, where they do not pile up
        shown = _zoo_labelled(zoo)
        fig.add_trace(go.Scatter(x=[z["latency_objective_ms"] for z in zoo], y=[z["psnr"] for z in zoo],
                                 mode="markers+text", name="zoo (published PSNR, DIV2K, full training)",
                                 text=[z["name"] if z["name"] in shown else "" for z in zoo],
                                 hovertext=[f"{z['name']}: {z['psnr']:.2f} dB published" for z in zoo],
                                 hoverinfo="text+x", textposition="bottom center",
                                 marker=dict(symbol="circle-open", size=9, color="#2ca02c")))
    fig.update_layout(title=title, xaxis_title=_XLABEL.format(k=k),
                      yaxis_title="INT8 PSNR (dB, RGB)", template="plotly_white")
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)


_XLABEL = "predicted latency, mean + {k:g} sigma (ms; bars reach back to the mean)"


def _back_to_mean(pts: Sequence[FrontPoint]) -> list[list[float]]:
    """Matplotlib's asymmetric x error: from each point (mean + k sigma) back to its mean, nothing to the right."""
    return [[p.latency_objective_ms - p.latency_ms for p in pts], [0.0] * len(pts)]


def _zoo_labelled(zoo: Sequence[dict]) -> set[str]:
    """The zoo networks no other zoo network beats on both published PSNR and predicted latency: the ones worth
    naming on a plot (thirteen names at two latencies overlap into an unreadable smear)."""
    return {z["name"] for z in zoo
            if not any(o["psnr"] >= z["psnr"] and o["latency_objective_ms"] <= z["latency_objective_ms"]
                       and (o["psnr"], o["latency_objective_ms"]) != (z["psnr"], z["latency_objective_ms"])
                       for o in zoo)}


def _png(pts: Sequence[FrontPoint], zoo: Sequence[dict], path: Path, title: str, k: float) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    behind = [p for p in pts if not p.on_front]
    front = [p for p in pts if p.on_front]
    if behind:
        ax.errorbar([p.latency_objective_ms for p in behind], [p.psnr for p in behind],
                    xerr=_back_to_mean(behind), fmt="o", color="#9aa0a6", ms=5, lw=0.8,
                    label="trials")
    if front:
        ax.errorbar([p.latency_objective_ms for p in front], [p.psnr for p in front],
                    xerr=_back_to_mean(front), fmt="o", color="#d62728", ms=7, lw=0.8,
                    label="Pareto front")
        ax.step([p.latency_objective_ms for p in front], [p.psnr for p in front], where="post", color="#d62728",
                lw=1.2)
        for p in front:
            ax.annotate(f"#{p.number}", (p.latency_objective_ms, p.psnr), textcoords="offset points", xytext=(4, 4),
                        fontsize=7)
    for p in pts:
        if p.warm_start:
            ax.plot(p.latency_objective_ms, p.psnr, marker="D", mfc="none", mec="#1f77b4", ms=11, mew=1.5)
            ax.annotate(p.warm_start, (p.latency_objective_ms, p.psnr), textcoords="offset points", xytext=(6, -10),
                        fontsize=7, color="#1f77b4")
    if zoo:
        ax.scatter([z["latency_objective_ms"] for z in zoo], [z["psnr"] for z in zoo], facecolors="none",
                   edgecolors="#2ca02c", s=40, label="zoo: published PSNR (DIV2K, full training)")
        named = _zoo_labelled(zoo)
        shown = sorted((z for z in zoo if z["name"] in named), key=lambda z: z["latency_objective_ms"])
        for i, z in enumerate(shown):  # below and above in turn: neighbours' names do not run into each other
            ax.annotate(z["name"], (z["latency_objective_ms"], z["psnr"]), textcoords="offset points",
                        xytext=(4, -10 if i % 2 == 0 else 5), fontsize=7, color="#2ca02c")
    ax.set_xlabel(_XLABEL.format(k=k))
    ax.set_ylabel("INT8 PSNR (dB, RGB)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
