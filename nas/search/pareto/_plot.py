"""The Pareto front of a study (INT8 PSNR up, predicted latency down) as a table, a CSV, an HTML plot and a PNG.

The latency on the front is the pessimistic one the search optimised (mean + k sigma), and the plots put every point
there, with a bar reaching back to the predicted mean: the front's step line then joins its own markers. The study's
panel shows only what can be compared: its trials, the warm-start zoo networks trained by the same proxy, and
reference lines (bicubic x3) measured on the same validation images; a trial whose latency is extrapolated outside
the latency model's range is marked. The reference zoo's published INT8 PSNR (DIV2K, full training) is on another
scale and has a panel of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from nas.search.pareto._front import FrontPoint, pareto_front
from nas.space import zoo_entries

__all__ = ["front_figure", "write_front", "zoo_points", "write_hypervolume"]


def write_hypervolume(trace, folder: str | Path, title: str) -> Path:
    """``hypervolume.png`` in ``folder``: a :class:`~nas.search._study.HypervolumeTrace` against finished trials."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.step(range(1, len(trace.values) + 1), trace.values, where="post")
    ax.set_xlabel("finished trials")
    ax.set_ylabel("hypervolume (dB x ms)")
    ax.set_title(f"{title}\nreference: {trace.ref_psnr:.2f} dB, {trace.ref_latency_ms:.1f} ms", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = folder / "hypervolume.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def zoo_points(latency_model, k: float = 1.0) -> list[dict]:
    """The reference zoo: published INT8 PSNR (Table 1) at the latency ``latency_model`` predicts (mean, and mean +
    ``k`` sigma as the search sees it)."""
    out = []
    for e in zoo_entries():
        if e.table1 is None or e.table1.psnr is None:
            continue
        pred = latency_model.predict(e.spec)
        out.append({"name": e.name, "psnr": e.table1.psnr, "latency_ms": pred.mean_ms,
                    "latency_objective_ms": pred.mean_ms + k * pred.stddev_ms, "published_npu_ms": e.table1.npu_ms})
    return out


def write_front(points: Sequence[FrontPoint], folder: str | Path, *, title: str, zoo: Sequence[dict] = (),
                k: float = 1.0, references: Mapping[str, float] | None = None) -> dict[str, Path]:
    """Write ``pareto.csv``, ``trials.csv``, ``pareto.html`` (interactive) and ``pareto.png`` into ``folder``;
    return their paths. ``references``: name -> PSNR of baselines on the same validation images (e.g. bicubic),
    drawn as horizontal lines; ``zoo``: published figures, drawn in their own panel."""
    import pandas as pd  # heavy (half a second): only the tables that need it pay for it

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pts = pareto_front(points)
    refs = dict(references or {})
    df = pd.DataFrame([p.to_dict() for p in pts])
    csv = folder / "pareto.csv"
    (df[df["on_front"]] if len(df) else df).to_csv(csv, index=False)
    all_csv = folder / "trials.csv"
    df.to_csv(all_csv, index=False)
    html = folder / "pareto.html"
    _html(pts, zoo, html, title, k, refs)
    png = folder / "pareto.png"
    fig = front_figure(pts, zoo, title, k, refs)
    fig.savefig(png)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return {"csv": csv, "trials": all_csv, "html": html, "png": png}


PUBLISHED_TITLE = "published (Table 1): DIV2K, full training - another scale, not comparable"
STUDY_TITLE = "this study: proxy-trained, INT8, on its validation images"
OUTSIDE = "outside the latency model's range (latency extrapolated)"
MEASURED = "measured on the board (closed loop; dotted: from its prediction)"


def _html(pts: Sequence[FrontPoint], zoo: Sequence[dict], path: Path, title: str, k: float,
          refs: Mapping[str, float]) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2 if zoo else 1, column_widths=[0.72, 0.28] if zoo else None,
                        subplot_titles=(STUDY_TITLE, PUBLISHED_TITLE) if zoo else (STUDY_TITLE,),
                        horizontal_spacing=0.08)

    def scatter(sel, name, **kw):
        if not sel:
            return
        fig.add_trace(go.Scatter(
            x=[p.latency_objective_ms for p in sel], y=[p.psnr for p in sel], name=name,
            error_x=dict(type="data", symmetric=False, array=[0.0] * len(sel),
                         arrayminus=[p.latency_objective_ms - p.latency_ms for p in sel], visible=True, thickness=1),
            hovertext=[f"trial {p.number}: {p.spec}<br>mean {p.latency_ms:.2f} ms, log2 score {p.log2_score:.2f} "
                       "(mean+k sigma)" + (f"<br>{OUTSIDE}" if p.outside_range else "") for p in sel],
            hovertemplate="%{hovertext}<br>%{x:.2f} ms pessimistic, %{y:.3f} dB<extra></extra>", **kw),
            row=1, col=1)

    behind = [p for p in pts if not p.on_front]
    front = [p for p in pts if p.on_front]
    scatter(behind, "trials", mode="markers", marker=dict(color="#9aa0a6", size=8))
    scatter(front, "Pareto front", mode="lines+markers+text", marker=dict(color="#d62728", size=10),
            line=dict(shape="hv"), text=[f"#{p.number} {p.spec}" for p in front], textposition="top left",
            textfont=dict(size=9))
    out = [p for p in pts if p.outside_range]
    if out:
        fig.add_trace(go.Scatter(x=[p.latency_objective_ms for p in out], y=[p.psnr for p in out], mode="markers",
                                 name=OUTSIDE, marker=dict(symbol="x-thin-open", size=15, color="#000000",
                                                           line=dict(width=1.5)), hoverinfo="skip"), row=1, col=1)
    meas = [p for p in pts if p.measured_ms is not None]
    if meas:  # the closed loop's measurements, at their measured latency, each joined to its trial
        xs, ys = [], []
        for p in meas:
            xs += [p.latency_objective_ms, p.measured_ms, None]
            ys += [p.psnr, p.psnr, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#ff7f0e", width=1, dash="dot"),
                                 hoverinfo="skip", showlegend=False), row=1, col=1)
        fig.add_trace(go.Scatter(x=[p.measured_ms for p in meas], y=[p.psnr for p in meas], mode="markers",
                                 name=MEASURED, marker=dict(symbol="star-open", size=12, color="#ff7f0e",
                                                            line=dict(width=1.5)),
                                 hovertext=[f"trial {p.number}: measured {p.measured_ms:.2f} ms, predicted "
                                            f"{p.latency_ms:.2f} ms" for p in meas], hoverinfo="text"),
                      row=1, col=1)
    warm = [p for p in pts if p.warm_start]
    if warm:
        fig.add_trace(go.Scatter(x=[p.latency_objective_ms for p in warm], y=[p.psnr for p in warm],
                                 mode="markers+text", name="zoo, trained by the same proxy (warm start)",
                                 text=[p.warm_start for p in warm], textposition="bottom center",
                                 marker=dict(symbol="diamond-open", size=14, color="#1f77b4", line=dict(width=2))),
                      row=1, col=1)
    for name, value in refs.items():
        fig.add_hline(y=value, line_dash="dash", line_color="#444444", row=1, col=1,
                      annotation_text=f"{name} on the same images: {value:.2f} dB", annotation_position="bottom left")
    if zoo:  # every name on hover; written out only for the zoo's own front, where they do not pile up
        shown = _zoo_labelled(zoo)
        fig.add_trace(go.Scatter(x=[z["latency_objective_ms"] for z in zoo], y=[z["psnr"] for z in zoo],
                                 mode="markers+text", name="zoo: published PSNR (another panel, another scale)",
                                 text=[z["name"] if z["name"] in shown else "" for z in zoo],
                                 hovertext=[f"{z['name']}: {z['psnr']:.2f} dB published" for z in zoo],
                                 hoverinfo="text+x", textposition="bottom center",
                                 marker=dict(symbol="circle-open", size=9, color="#2ca02c")), row=1, col=2)
        fig.update_xaxes(title_text=f"predicted latency, mean + {k:g} sigma (ms)", row=1, col=2)
        fig.update_yaxes(title_text="published INT8 PSNR (dB)", row=1, col=2)
    fig.update_xaxes(title_text=_XLABEL.format(k=k), row=1, col=1)
    fig.update_yaxes(title_text="INT8 PSNR (dB, RGB)", row=1, col=1)
    fig.update_layout(title=title, template="plotly_white")
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


def _place_labels(ax, items: Sequence[tuple[str, float, float]], **kw) -> list:
    """Annotate ``(text, x, y)`` items so that no two labels overlap: each takes the first of a few offsets around
    its point whose box meets no label placed before it (the last offset if none is free)."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    offsets = [(4, 4), (4, -11), (-4, 4), (-4, -11), (4, 14), (4, -21), (-4, 14), (-4, -21), (4, 24), (4, -31),
               (-4, 24), (-4, -31), (4, 34), (4, -41)]
    placed, boxes = [], []
    for text, x, y in items:
        for dx, dy in offsets:
            a = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy),
                            ha="left" if dx > 0 else "right", **kw)
            box = a.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(b) for b in boxes) or (dx, dy) == offsets[-1]:
                break
            a.remove()
        placed.append(a)
        boxes.append(box)
    return placed


def front_figure(pts: Sequence[FrontPoint], zoo: Sequence[dict], title: str, k: float,
                 refs: Mapping[str, float] | None = None):
    """The PNG's figure (matplotlib, not shown): the study's panel, a key of the front's specs under it, and the
    published zoo in a panel of its own."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    refs = dict(refs or {})
    front = [p for p in pts if p.on_front]
    behind = [p for p in pts if not p.on_front]
    key_lines = [f"#{p.number:<3d} {p.spec}  {p.psnr:.2f} dB  {p.latency_objective_ms:.1f} ms"
                 + (f"  ({p.warm_start}, warm start)" if p.warm_start else "")
                 + ("  (latency extrapolated)" if p.outside_range else "")
                 + (f"  measured {p.measured_ms:.1f} ms" if p.measured_ms is not None else "") for p in front]
    key_h = 0.35 + 0.17 * len(key_lines)
    fig = plt.figure(figsize=(11.5 if zoo else 8.5, 5.5 + key_h), dpi=110)
    grid = fig.add_gridspec(2, 2 if zoo else 1, width_ratios=[3, 1.25] if zoo else None,
                            height_ratios=[5.0, key_h], hspace=0.35, wspace=0.28)
    ax = fig.add_subplot(grid[0, 0])
    ax.set_title(STUDY_TITLE, fontsize=9)
    if behind:
        ax.errorbar([p.latency_objective_ms for p in behind], [p.psnr for p in behind],
                    xerr=_back_to_mean(behind), fmt="o", color="#9aa0a6", ms=5, lw=0.8, label="trials")
    if front:
        ax.errorbar([p.latency_objective_ms for p in front], [p.psnr for p in front],
                    xerr=_back_to_mean(front), fmt="o", color="#d62728", ms=7, lw=0.8, label="Pareto front")
        ax.step([p.latency_objective_ms for p in front], [p.psnr for p in front], where="post", color="#d62728",
                lw=1.2)
    out = [p for p in pts if p.outside_range]
    if out:
        ax.scatter([p.latency_objective_ms for p in out], [p.psnr for p in out], marker="x", s=70, color="black",
                   lw=1.2, label=OUTSIDE, zorder=4)
    meas = [p for p in pts if p.measured_ms is not None]
    if meas:
        for p in meas:
            ax.plot([p.latency_objective_ms, p.measured_ms], [p.psnr, p.psnr], ls=":", color="#ff7f0e", lw=0.9)
        ax.scatter([p.measured_ms for p in meas], [p.psnr for p in meas], marker="*", s=90, facecolors="none",
                   edgecolors="#ff7f0e", lw=1.2, label=MEASURED, zorder=5)
    warm = [p for p in pts if p.warm_start]
    if warm:
        ax.scatter([p.latency_objective_ms for p in warm], [p.psnr for p in warm], marker="D", s=110,
                   facecolors="none", edgecolors="#1f77b4", lw=1.5, label="zoo, trained by the same proxy", zorder=3)
    for i, (name, value) in enumerate(refs.items()):
        ax.axhline(value, ls="--" if i == 0 else ":", color="#444444", lw=1,
                   label=f"{name} on the same images ({value:.2f} dB)")
    ax.set_xlabel(_XLABEL.format(k=k), fontsize=8)
    ax.set_ylabel("INT8 PSNR (dB, RGB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.canvas.draw()  # positions are final before the labels look for free room
    _place_labels(ax, [(f"#{p.number}", p.latency_objective_ms, p.psnr) for p in front], fontsize=7)
    _place_labels(ax, [(p.warm_start, p.latency_objective_ms, p.psnr) for p in warm if not p.on_front], fontsize=7,
                  color="#1f77b4")
    key = fig.add_subplot(grid[1, :])
    key.axis("off")
    key.text(0.0, 1.0, "Pareto front (mean + k sigma latency):\n" + "\n".join(key_lines) if key_lines
             else "no trial on the front yet", va="top", ha="left", family="monospace", fontsize=7.5,
             transform=key.transAxes)
    if zoo:
        axz = fig.add_subplot(grid[0, 1])
        axz.set_title(PUBLISHED_TITLE.replace(" - ", "\n"), fontsize=8)
        axz.scatter([z["latency_objective_ms"] for z in zoo], [z["psnr"] for z in zoo], facecolors="none",
                    edgecolors="#2ca02c", s=40)
        axz.set_xlabel(f"predicted latency, mean + {k:g} sigma (ms)", fontsize=7)
        axz.set_ylabel("published INT8 PSNR (dB)", fontsize=8)
        axz.tick_params(labelsize=7)
        axz.grid(alpha=0.3)
        fig.canvas.draw()
        named = _zoo_labelled(zoo)
        _place_labels(axz, [(z["name"], z["latency_objective_ms"], z["psnr"]) for z in
                            sorted(zoo, key=lambda z: z["latency_objective_ms"]) if z["name"] in named],
                      fontsize=6.5, color="#2ca02c")
    return fig
