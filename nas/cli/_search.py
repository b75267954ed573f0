"""``nas search``, ``nas pareto``, ``nas retrain``, ``nas ui``: the product's main job and what follows it."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from nas.cli._common import JSON_OPT, OUT_OPT, live_trials, out_console, print_json, status_console


def study_executors(cfg):
    """Where the study's trials are answered: a benchmark table when the config names one, else by training."""
    if cfg.table:
        from nas.benchmark import TableExecutors

        return TableExecutors()
    return None


def _is_server(uri: str) -> bool:
    """An MLflow tracking URI that is a running server (it has its own UI) rather than a store on disk."""
    return uri.startswith(("http://", "https://"))


def _front_table(points, title: str):
    from rich.table import Table

    t = Table(title=title)
    measured = any(p.measured_ms is not None for p in points)  # a closed-loop study: the board's own figure too
    cols = ("trial", "spec", "INT8 PSNR", "latency ms", "+k sigma") + (("measured ms",) if measured else ()) + (
        "log2 score (mean+k sigma)", "flags")
    for col in cols:
        t.add_column(col, justify="left" if col in ("spec", "flags") else "right")
    for p in points:
        flags = ", ".join(f for f, on in (("outside latency range", p.outside_range), ("infeasible", not p.feasible),
                                          (p.warm_start, bool(p.warm_start))) if on)
        meas = (("-" if p.measured_ms is None else f"{p.measured_ms:.2f}",) if measured else ())
        t.add_row(str(p.number), p.spec, f"{p.psnr:.3f}", f"{p.latency_ms:.2f}",
                  f"{p.latency_objective_ms - p.latency_ms:.2f}", *meas, f"{p.log2_score:.2f}", flags)
    return t


def search(
    config: Optional[Path] = typer.Argument(None, help="Search config (YAML). Without it: the built-in default "
                                                       "(10 trials on the embedded photographs, minutes)."),
    name: Optional[str] = typer.Option(None, "--name", help="Study name (its folder is OUT/NAME)."),
    n_trials: Optional[int] = typer.Option(None, "--n-trials", help="Finished trials the study should hold."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Trials in parallel (Ray when > 1)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Join this Ray cluster (host:port)."),
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL."),
    tracking: Optional[str] = typer.Option(None, "--tracking", help="MLflow tracking URI."),
    out: Optional[str] = typer.Option(None, "--out", help="Folder of the study folders (default runs)."),
    show_config: bool = typer.Option(False, "--show-config", help="Print the resolved config as YAML and exit "
                                                                  "(a starting point for your own file)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Run (or resume) a search study: sample specs, train proxies, export INT8, predict latency, track in MLflow.

    Running the same command again after an interruption continues the study: completed trials are kept, trials
    that were running are run again.
    """
    from nas.search import load_search_config, run_search

    cfg = load_search_config(config, name=name, n_trials=n_trials, workers=workers, ray_address=ray_address,
                             storage=storage, tracking=tracking, out=out)
    if show_config:
        import yaml

        sys.stdout.write(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        return
    con = status_console()
    con.print(f"study [bold]{cfg.name}[/] in {cfg.study_dir}: {cfg.n_trials} trials, objective {cfg.objective}, "
              f"space {cfg.space}, latency model {cfg.latency.model}, proxy {cfg.proxy.steps} steps")
    # stdout carries the result (the --json document); what libraries print there while the study runs (Ray's
    # raylet notices, for one) goes to stderr with the progress
    with live_trials(con, not as_json, cfg.n_trials) as cb, contextlib.redirect_stdout(sys.stderr):
        summary = run_search(cfg, callback=cb, executors=study_executors(cfg))
    if as_json:
        sys.stdout.write(json.dumps(summary.to_dict(), indent=2) + "\n")
        return
    out_con = out_console()
    if summary.new_trials == 0:
        held = summary.complete + summary.pruned + summary.failed
        con.print(f"study {cfg.name} already holds {held} finished trials (n_trials {cfg.n_trials}): nothing left "
                  f"to run (--n-trials {held + 8} runs 8 more); its front:")
    out_con.print(_front_table(list(summary.front), f"Pareto front of {cfg.name} ({summary.complete} complete, "
                                                     f"{summary.pruned} pruned, {summary.failed} failed)"))
    if summary.best is not None:
        b = summary.best
        out_con.print(f"best (log2 score on the pessimistic latency): trial {b.number}, {b.spec}: "
                      f"{b.psnr:.3f} dB INT8, {b.latency_ms:.2f} ms predicted")
    for key, path in summary.files.items():
        out_con.print(f"{key:7s} {path}")
    tracking = summary.study.tracking
    if _is_server(tracking):  # its UI is right there
        from nas.search import ui_link

        where = ui_link(tracking, summary.study.experiment, tracking)
    else:
        where = f"{tracking} experiment {summary.study.experiment} (nas ui {cfg.study_dir})"
    out_con.print(f"MLflow: {where}", soft_wrap=True)
    out_con.print(f"retrain: nas retrain {cfg.study_dir} --best")


def rebuild(study: str = typer.Argument(..., help="Study folder (runs/NAME) or name."), out: str = OUT_OPT,
            force: bool = typer.Option(False, "--force", help="Rebuild even if the storage still opens."),
            as_json: bool = JSON_OPT) -> None:
    """Rebuild a study's Optuna storage from its trial folders (after a lost or damaged optuna.db)."""
    from nas.search import rebuild_study

    r = rebuild_study(study, out, force=force)
    if as_json:
        print_json(r.to_dict())
        return
    con = status_console()
    aside = f"; the damaged database is kept as {r.moved_aside}" if r.moved_aside else ""
    con.print(f"study {r.study} rebuilt in {r.storage}: {r.trials} trials ({r.complete} complete, {r.pruned} pruned, "
              f"{r.failed} failed, {r.requeued} queued to run again){aside}")


def _hv_ref(text: str | None) -> tuple[float, float] | None:
    from nas.errors import SearchError

    if not text:
        return None
    try:
        psnr, ms = (float(v) for v in text.split(","))
    except ValueError:
        raise SearchError(f"--hv-ref {text!r}: give the reference point as PSNR_DB,LATENCY_MS (e.g. 28,60)") from None
    if ms <= 0:
        raise SearchError(f"--hv-ref {text!r}: the reference latency must be positive")
    return psnr, ms


def pareto(study: str = typer.Argument(..., help="Study folder (runs/NAME) or name."), out: str = OUT_OPT,
           hv_ref: Optional[str] = typer.Option(None, "--hv-ref", help="Hypervolume reference point PSNR_DB,"
                                                "LATENCY_MS (default: 1 dB below bicubic, 10% above the slowest "
                                                "trial; give it to compare studies)."),
           as_json: bool = JSON_OPT) -> None:
    """Print a study's Pareto front (INT8 PSNR vs pessimistic predicted latency), its hypervolume history, and write
    their plot files."""
    from nas.search import study_front

    info, points, best, files, trace = study_front(study, out, hv_ref=_hv_ref(hv_ref))
    front = [p for p in points if p.on_front]
    if as_json:
        sys.stdout.write(json.dumps({"study": info.name, "front": [p.to_dict() for p in front],
                                     "trials": len(points), "best": best.to_dict() if best else None,
                                     "hypervolume": trace.to_dict(),
                                     "files": {k: str(v) for k, v in files.items()}}, indent=2) + "\n")
        return
    con = out_console()
    if not points:
        con.print(f"study {info.name} has no completed trial yet")
        return
    con.print(_front_table(front, f"Pareto front of {info.name} ({len(front)} of {len(points)} completed trials)"))
    if best is not None:
        con.print(f"best: trial {best.number} ({best.spec})")
    if trace.values:
        n = len(trace.values)
        marks = sorted({i for i in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, n) if i <= n})
        con.print(f"hypervolume (reference {trace.ref_psnr:.2f} dB, {trace.ref_latency_ms:.1f} ms) after "
                  + ", ".join(f"{i} trials {trace.values[i - 1]:.2f}" for i in marks), soft_wrap=True)
    for key, path in files.items():
        con.print(f"{key:11s} {path}")


def retrain_cmd(
    study: str = typer.Argument(..., help="Study folder (runs/NAME) or name."),
    trial: Optional[int] = typer.Option(None, "--trial", help="The trial number to retrain."),
    best: bool = typer.Option(False, "--best", help="Retrain the best trial (highest log2 score)."),
    steps: int = typer.Option(20000, "--steps", min=10, help="Steps of the full schedule (L1 80%, L2 10%, QAT 10%)."),
    out: str = OUT_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Retrain a trial's spec with the full schedule and QAT, export INT8, check, evaluate, log and register it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from nas.retrain import retrain
    from nas.search import open_study

    open_study(study, out)  # a study that is not there is refused before the progress bar starts
    con = status_console()
    cols = (TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*cols, console=con, disable=as_json) as prog:
        task = prog.add_task("train", total=steps, info="")

        def on_step(ev) -> None:
            prog.update(task, completed=ev.step, info=f"{ev.stage} loss {ev.loss:.4f}")

        def on_phase(name: str) -> None:
            prog.update(task, description=name)

        res = retrain(study, trial=trial, best=best, steps=steps, out=out, callback=on_step, phase=on_phase)
    if as_json:
        sys.stdout.write(json.dumps(res.to_dict(), indent=2) + "\n")
        return
    d = res.to_dict()
    con = out_console()
    con.print(f"trial {res.trial} ({res.spec.describe()}) retrained for {steps} steps in {res.out_dir}")
    for form in ("bicubic", "fp32", "int8"):
        ev = d.get(form) or {}
        if ev:
            con.print(f"  {form:8s} PSNR {ev['psnr_rgb']:.3f} dB (Y {ev['psnr_y']:.3f}), SSIM {ev['ssim_rgb']:.4f}")
    con.print(f"  NPU check {'passed' if d['check_passed'] else 'FAILED'}; predicted latency "
              f"{res.latency_ms:.2f} +- {res.latency_sigma_ms:.2f} ms; log2 score {res.log2_score:.2f} (mean latency)")
    con.print(f"  INT8 model {d['tflite']}; MLflow run {res.run_id}; registered as {res.model_name} "
              f"version {res.model_version}")


def ui(
    study: Optional[str] = typer.Argument(None, help="Study folder or name (its tracking store is used)."),
    tracking: Optional[str] = typer.Option(None, "--tracking", help="MLflow tracking URI (default: the study's, "
                                                                     "or sqlite:///runs/mlflow.db)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (127.0.0.1: this machine only)."),
    port: int = typer.Option(5000, "--port"),
    out: str = OUT_OPT,
) -> None:
    """Start the MLflow UI on a study's tracking store (bound to 127.0.0.1 unless --host says otherwise)."""
    from nas.errors import NasError

    uri, info = tracking, None
    if study is not None:
        from nas.search import open_study

        info = open_study(study, out)
        uri = uri or info.tracking
    uri = uri or f"sqlite:///{(Path(out) / 'mlflow.db').as_posix()}"
    if _is_server(uri):
        raise NasError(f"{uri} is already a server: open it in a browser")
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise NasError(f"no MLflow store at {uri.removeprefix('sqlite:///')}: run nas search first")
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host, "--port",
           str(port), "--workers", "1"]
    link = f"http://{host}:{port}"
    if info is not None:
        from nas.search import ui_link

        link = ui_link(uri, info.experiment, link)
    from nas.cli._serve import run_server

    con = status_console()
    raise typer.Exit(run_server(cmd, "the MLflow UI", host, port, lambda m: con.print(m, soft_wrap=True),
                                banner=f"MLflow UI on {link} (store {uri}); Ctrl-C stops it"))


def dashboard(
    study: str = typer.Argument(..., help="Study folder (runs/NAME) or name."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (127.0.0.1: this machine only)."),
    port: int = typer.Option(8080, "--port"),
    out: str = OUT_OPT,
) -> None:
    """Open the study's Optuna storage in optuna-dashboard (history, importances, Pareto front of the trials)."""
    from nas.search import open_study

    info = open_study(study, out)
    code = "import sys; from optuna_dashboard._cli import main; sys.argv[0] = 'optuna-dashboard'; sys.exit(main())"
    where = [info.storage]
    if info.storage.startswith("journal:///"):  # optuna-dashboard takes a journal as a file and a class hint
        where = [info.storage.removeprefix("journal:///"), "--storage-class", "JournalFileStorage"]
    cmd = [sys.executable, "-c", code, *where, "--host", host, "--port", str(port), "--quiet"]
    from nas.cli._serve import run_server

    con = status_console()
    raise typer.Exit(run_server(cmd, "optuna-dashboard", host, port, lambda m: con.print(m, soft_wrap=True),
                                banner=f"optuna-dashboard on http://{host}:{port} (storage {info.storage}); "
                                       "Ctrl-C stops it"))
