"""``nas proxy check``: does the study's short proxy rank networks like a longer training does?"""

from __future__ import annotations

import contextlib
import enum
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from nas.cli._common import out_console, status_console

proxy_app = typer.Typer(help="Proxy fidelity: check that the search's short training ranks networks like a long one.",
                        no_args_is_help=True)


def _steps_list(text: str | None) -> tuple[int, ...] | None:
    from nas.errors import SearchError

    if not text:
        return None
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise SearchError(f"--candidates {text!r}: give proxy lengths in steps, separated by commas "
                          "(e.g. 75,150,300)") from None
    if not values:
        raise SearchError("--candidates is empty")
    return values


class Schedule(str, enum.Enum):
    full = "full"
    proxy = "proxy"


@proxy_app.command("check")
def check(
    config: Optional[Path] = typer.Argument(None, help="Search config (YAML); default: the built-in study."),
    n: int = typer.Option(8, "--n", min=3, help="Specs to train, spread over the space's latency range."),
    candidates: Optional[str] = typer.Option(None, "--candidates", help="Proxy lengths to compare, in steps "
                                             "(default: the study's proxy, half and a quarter of it)."),
    long_steps: Optional[int] = typer.Option(None, "--long-steps", min=2, help="Steps of the reference training "
                                             "(default: --factor times the study's proxy)."),
    factor: int = typer.Option(10, "--factor", min=2, help="Reference length as a multiple of the proxy."),
    reference: Schedule = typer.Option(Schedule.full, "--reference",
                                  help="The reference training's schedule: full (the product's: Charbonnier, L2, "
                                       "QAT; what nas retrain runs) or proxy (the proxy's, made longer)."),
    target: float = typer.Option(0.8, "--target", help="Kendall tau a proxy must reach to be recommended."),
    repeats: int = typer.Option(0, "--repeats", min=0, help="Specs also trained with --seeds seeds (the proxy's "
                                                            "seed-to-seed noise)."),
    seeds: int = typer.Option(3, "--seeds", min=2),
    workers: Optional[int] = typer.Option(None, "--workers", help="Trainings in parallel (Ray when > 1)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Join this Ray cluster (host:port)."),
    tracking: Optional[str] = typer.Option(None, "--tracking", help="MLflow tracking URI."),
    out: Optional[str] = typer.Option(None, "--out", help="Folder of the study folders (default runs)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Train N specs with the study's proxy (and cheaper ones) and with a long schedule; print Kendall tau with its
    confidence, the per-spec table and a plot; recommend the cheapest proxy that meets the target; log to MLflow.

    Resumable: run the same command again after an interruption and only the missing trainings run.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from nas.search import load_search_config
    from nas.fidelity import proxy_check

    cfg = load_search_config(config, workers=workers, ray_address=ray_address, tracking=tracking, out=out)
    con = status_console()
    con.print(f"proxy check of study [bold]{cfg.name}[/] ({cfg.space}, objective {cfg.objective}): {n} specs, "
              f"proxy {cfg.proxy.steps} steps against {long_steps or factor * cfg.proxy.steps} of the {reference.value} "
              "schedule")
    cols = (TextColumn("trainings"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"))
    with Progress(*cols, console=con, disable=as_json) as prog, contextlib.redirect_stdout(sys.stderr):
        task = prog.add_task("check", total=None, info="")

        def progress(done: int, total: int, message: str) -> None:
            prog.update(task, completed=done, total=total, info=message[:60])
            if message != "start":
                prog.console.print(message, soft_wrap=True)

        rep = proxy_check(cfg, n=n, candidates=_steps_list(candidates), long_steps=long_steps, factor=factor,
                          reference=reference.value, target=target, repeats=repeats, seeds=seeds, progress=progress)
    if as_json:
        sys.stdout.write(json.dumps(rep.to_dict(), indent=2) + "\n")
        return
    print_report(rep)


def print_report(rep) -> None:
    from rich.table import Table

    con = out_console()
    steps = (*rep.candidates, rep.long_steps)
    t = Table(title=f"INT8 PSNR (dB) by training length, {len(rep.rows)} specs of study {rep.study}")
    for col in ("spec", "latency ms", "params", *(f"{s} steps" for s in steps)):
        t.add_column(col, justify="left" if col == "spec" else "right", no_wrap=True)
    for r in rep.rows:
        t.add_row(r.spec.describe(), f"{r.latency_ms:.1f}", f"{r.params:,}",
                  *(f"{r.int8[s]:.2f}" if s in r.int8 else "failed" for s in steps))
    con.print(t)
    what = "log2 score" if rep.objective == "score" else "INT8 PSNR"
    t = Table(title=f"Kendall tau against {rep.long_steps} steps of the {rep.reference} schedule ({what}; 95% "
                    "bootstrap interval)")
    for col in ("proxy", "tau", "interval", "p-value", "PSNR tau", "log2-score tau", "train s/spec"):
        t.add_column(col, justify="right")
    for s in rep.candidates:
        e = rep.tau[s]
        t.add_row(f"{s} steps", f"{e.tau:.3f}", f"[{e.low:.2f}, {e.high:.2f}]", f"{e.p_value:.2g}",
                  f"{rep.tau_psnr[s].tau:.3f}", f"{rep.tau_score[s].tau:.3f}", f"{rep.cost_s[s]:.0f}")
    for name, e in rep.baselines.items():
        t.add_row(f"{name} alone", f"{e.tau:.3f}", f"[{e.low:.2f}, {e.high:.2f}]", f"{e.p_value:.2g}", "", "", "0")
    con.print(t)
    for r in rep.repeatability:
        con.print(f"repeatability {r['spec']}: INT8 {', '.join(f'{v:.2f}' for v in r['int8'])} dB, std "
                  f"{r['std_db']:.3f} dB (CV {r['cv_percent']:.2f}%), {r['std_over_spec_spread']:.2f} of the spread "
                  "between specs")
    if rep.recommended is not None:
        con.print(f"recommended proxy: {rep.recommended} steps (the cheapest with tau >= {rep.target}); set "
                  f"proxy.steps: {rep.recommended} in the study's config")
    else:
        best = max(rep.candidates, key=lambda s: rep.tau[s].tau)
        e = rep.tau[best]
        if e.tau >= rep.target:  # reached, but by chance as likely as not
            con.print(f"no recommendation: {best} steps reach tau {e.tau:.3f}, but with {e.n} specs that is not "
                      f"significant (p={e.p_value:.2g} > {e.ALPHA}); run again with a larger --n (at least 6; 12 "
                      "or more for a useful interval)")
        else:
            con.print(f"no candidate reaches tau {rep.target}: the best is {best} steps (tau {e.tau:.3f}); "
                      "try longer proxies with --candidates")
    con.print(f"report: {rep.folder / 'report.json'}, {rep.folder / 'specs.csv'}, {rep.folder / 'proxy_check.png'} "
              "(also in MLflow, run kind proxy-check)", soft_wrap=True)
