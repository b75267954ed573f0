"""``nas latency``: calibrate a latency model on a board, predict a spec's latency, report a model."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer

from nas.cli._common import JSON_OPT, out_console, parse_hw, print_json

latency_app = typer.Typer(help="Latency models: calibrate on a board, predict, report.", no_args_is_help=True)

def _board(board: str, threads: int, runs: int, warmup: int, serial: Optional[str], delegate: str):
    from nas.latency import make_board

    return make_board(board, threads=threads, runs=runs, warmup=warmup, serial=serial, delegate=delegate)


@contextlib.contextmanager
def _progress(con, enabled: bool):
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    cols = (TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*cols, console=con) as prog:
        tasks: dict[str, int] = {}

        def callback(ev) -> None:
            if ev.phase not in tasks:
                tasks[ev.phase] = prog.add_task(ev.phase, total=ev.total, info="")
            info = ev.spec.describe()
            if ev.measurement is not None:
                info = f"{ev.measurement.median_ms:8.2f} ms  {info}"
            prog.update(tasks[ev.phase], completed=ev.done, info=info)

        yield callback


def _accuracy_table(model):
    from rich.table import Table

    acc = model.meta.get("accuracy") or {}
    folds = acc.get("folds")
    n = model.meta.get("n")
    how = "leave-one-out" if folds == n else f"{folds}-fold"
    t = Table(title=f"{how} accuracy over {n} measurements")
    for c in ("model", "MAPE", "Spearman", "within +-10%", "max error"):
        t.add_column(c, justify="left" if c == "model" else "right")
    rows = [("per-op features", acc)] + [(f"{k}-only linear", v) for k, v in (model.meta.get("baselines") or {}).items()]
    for label, a in rows:
        if a:
            t.add_row(label, f"{a['mape'] * 100:.1f}%", f"{a['spearman']:.3f}", f"{a['within_10'] * 100:.0f}%",
                      f"{a['max_ape'] * 100:.1f}%")
    return t


@latency_app.command("calibrate")
def calibrate_cmd(
    out: Path = typer.Option(..., "--out", help="Latency model to write (.json), e.g. latency_models/mycpu.json."),
    board: str = typer.Option("litert-cpu", help="Where to measure: litert-cpu (this machine's CPU, XNNPACK), "
                                                 "litert-builtin (LiteRT's own kernels), adb (an Android device), "
                                                 "or a measurements .csv/.yaml file."),
    space: str = typer.Option("mai2022", help="Search space file or name: the specs are chosen from it."),
    n: int = typer.Option(40, "--n", help="Number of specs to export and measure."),
    input_size: str = typer.Option("360x640", help="Input size HxW the model predicts for."),
    alignment: Optional[int] = typer.Option(None, help="Board's channel alignment (default: chosen from the data)."),
    threads: int = typer.Option(1, help="CPU threads of the board's runtime."),
    runs: int = typer.Option(15, help="Timed runs per model."),
    warmup: int = typer.Option(3, help="Warm-up runs per model."),
    rounds: int = typer.Option(2, help="Interleaved measuring rounds (each model keeps its fastest median)."),
    folds: int = typer.Option(5, help="k of the k-fold cross-validation."),
    seed: int = typer.Option(0, help="Seed of the space-filling design."),
    serial: Optional[str] = typer.Option(None, help="adb: device serial."),
    delegate: str = typer.Option("nnapi", help="adb: cpu, xnnpack, nnapi or gpu."),
    work: Optional[Path] = typer.Option(None, help="Folder for exported models and measurements "
                                                   "(default runs/latency/<out name>); re-running resumes."),
    export_only: bool = typer.Option(False, "--export-only", help="Only export the chosen specs (to time them "
                                     "elsewhere, then calibrate with --board FILE.csv)."),
    prior: Optional[str] = typer.Option(None, "--prior", help="Latency model of another board to start from "
                                        "(name or .json): a new board from about ten measurements (--n 10)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Pick diverse specs, export and measure them, fit a latency model and print its cross-validated accuracy."""
    from nas.latency import calibrate, load_latency_model
    from nas.space import load_space

    start = load_latency_model(prior) if prior else None
    hw = parse_hw(input_size)
    sp = load_space(space)
    b = None if export_only else _board(board, threads, runs, warmup, serial, delegate)
    work = work or Path("runs") / "latency" / out.stem
    con = out_console()
    with _progress(con, not as_json) as callback:
        model = calibrate(b, sp, n, out, input_hw=hw, work_dir=work, alignment=alignment, folds=folds,
                          rounds=rounds, seed=seed, callback=callback, prior=start)
    if model is None:
        msg = (f"exported {n} models to {work / 'models'} (listed in {work / 'specs.csv'}); time them on your board "
               f"and run this again with --board FILE.csv (columns model, median_ms)")
        print_json({"exported": n, "models": str(work / "models")}) if as_json else con.print(msg)
        return
    if as_json:
        print_json({"out": str(out), **model.to_dict()})
        return
    con.print(_accuracy_table(model))
    con.print(f"alignment {model.alignment}, uncertainty +-{model.sigma_rel * 100:.1f}% (1 sigma); "
              f"measurements in {work}")
    if "prior" in model.meta:
        con.print(f"started from {model.meta['prior']['board']}: this board takes {model.meta['prior']['scale']:.2f}x "
                  "its time, everything else equal")
    con.print(f"wrote {out}")


@latency_app.command("fit-published")
def fit_published_cmd(
    file: Path = typer.Argument(..., help="Published measurements (e.g. ../shared/latency/vs680-published.yaml)."),
    out: Path = typer.Option(..., "--out", help="Latency model to write (.json)."),
    target: str = typer.Option("vs680", help="Target profile: board name, channel alignment and peak TOPS."),
    column: str = typer.Option("npu_ms", help="Which runtime column to fit."),
    bandwidth: float = typer.Option(25.6, help="Memory bandwidth bound in GB/s for the physics floor "
                                               "(an upper bound of the board's, so the floor stays a lower bound)."),
    input_size: str = typer.Option("360x640", help="Input size HxW of the published runtimes."),
    as_json: bool = JSON_OPT,
) -> None:
    """Fit a latency model to published whole-model runtimes (rows with layers and confidence high or medium)."""
    from nas.export import load_target
    from nas.latency import fit_model, published_samples

    hw = parse_hw(input_size)
    prof = load_target(target)
    samples = published_samples(file, column=column, input_hw=hw)
    model = fit_model(samples, kind="ops", board=f"{prof.name}-{column.removesuffix('_ms')}", input_hw=hw,
                      alignment=prof.channel_alignment, peak_tops=prof.peak_tops_int8, bandwidth_gbs=bandwidth,
                      source=f"calibrated from published measurements: {file.name} ({column}), "
                             f"{len(samples)} rows with confidence high or medium")
    model.meta["published"] = True
    model.save(out)
    if as_json:
        print_json({"out": str(out), **model.to_dict()})
        return
    con = out_console()
    con.print(_accuracy_table(model))
    con.print(f"wrote {out}")


@latency_app.command("predict")
def predict_cmd(
    model: str = typer.Argument(..., help="Latency model: a .json file or a name in latency_models/ (e.g. vs680)."),
    spec: str = typer.Argument(..., help="A spec: SPEC.json or zoo:NAME."),
    input_size: Optional[str] = typer.Option(None, "--input-size", help="HxW (default and only size: the model's)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Predict a spec's latency with its per-op breakdown and uncertainty."""
    from rich.table import Table

    from nas.latency import load_latency_model
    from nas.space import load_spec


    m = load_latency_model(model)
    s = load_spec(spec)
    p = m.predict(s, parse_hw(input_size) if input_size else None)
    if as_json:
        print_json({"spec": s.to_dict(), "hash": s.hash, "board": m.board, "input_hw": list(m.input_hw),
                     **p.to_dict()})
        return
    con = out_console()
    t = Table(title=f"{s.describe()} on {m.board} at {m.input_hw[0]}x{m.input_hw[1]}")
    for c in ("op", "type", "ms", "share", "floor ms"):
        t.add_column(c, justify="left" if c in ("op", "type") else "right")
    for o in p.per_op:
        t.add_row(o.name, o.type, f"{o.ms:.3f}", f"{o.ms / p.mean_ms * 100:.1f}%",
                  f"{o.floor_ms:.3f}" + (" *" if o.at_floor else "") if o.floor_ms else "-")
    con.print(t)
    con.print(f"[bold]{p.mean_ms:.2f} ms[/] +- {p.stddev_ms:.2f} (1 sigma)"
              + ("" if p.in_range else f"  [yellow]outside the fitted range: {', '.join(p.outside)}[/]"))
    if any(o.at_floor for o in p.per_op):
        con.print("* at the board's physical floor (peak throughput / memory bandwidth)")


@latency_app.command("report")
def report_cmd(
    model: str = typer.Argument(..., help="Latency model: a .json file or a name in latency_models/."),
    as_json: bool = JSON_OPT,
) -> None:
    """What a latency model is: board, input size, fitted coefficients, cross-validated accuracy, its samples."""
    from rich.table import Table

    from nas.latency import load_latency_model

    m = load_latency_model(model)
    if as_json:
        print_json(m.to_dict())
        return
    con = out_console()
    meta = m.meta
    con.print(f"[bold]{m.board}[/] at {m.input_hw[0]}x{m.input_hw[1]} input, {m.kind} model, "
              f"{meta.get('n')} measurements, created {meta.get('created')}")
    if meta.get("source"):
        con.print(meta["source"])
    con.print(f"channel alignment {m.alignment}; floor: peak {m.peak_tops or '-'} TOPS, "
              f"bandwidth {m.bandwidth_gbs or '-'} GB/s; uncertainty +-{m.sigma_rel * 100:.1f}% (1 sigma)")
    from nas.latency import FEATURE_UNITS

    t = Table(title="coefficients")
    t.add_column("feature")
    t.add_column("ms per unit", justify="right")
    t.add_column("fitted range", justify="right")
    for f, c in m.coef.items():
        lo, hi = m.feature_range.get(f, (None, None))
        unit = FEATURE_UNITS.get(f, "")
        t.add_row(f"{f} ({unit})" if unit else f, f"{c:.4g}", "-" if lo is None else f"{lo:.3g} .. {hi:.3g}")
    t.add_row("(overhead)", f"{m.overhead_ms:.4g}", "")
    con.print(t)
    con.print(_accuracy_table(m))
    if meta.get("samples"):
        s = Table(title="measurements and their cross-validated predictions")
        for c in ("name", "measured ms", "predicted ms", "error"):
            s.add_column(c, justify="left" if c == "name" else "right")
        for row in meta["samples"]:
            err = (row["cv_predicted_ms"] - row["ms"]) / row["ms"]
            s.add_row(row["name"], f"{row['ms']:.2f}", f"{row['cv_predicted_ms']:.2f}", f"{err * 100:+.1f}%")
        con.print(s)
