"""``nas table``: benchmark tables of a search space (make, export, show) and ``nas samplers``."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Optional

import typer

from nas.cli._common import JSON_OPT, OUT_OPT, live_trials, out_console, print_json, status_console

table_app = typer.Typer(help="Benchmark tables: a space's specs trained once by the proxy, for comparing samplers "
                             "in seconds (set table: FILE in a study's config).", no_args_is_help=True)

CSV_OPT = typer.Option(..., "--csv", help="Where to write the table (e.g. bench/tables/mai2022-300.csv).")


def _summary(table, path) -> dict:
    done = [r for r in table.rows if r.state == "complete"]
    psnr = sorted(r.int8_psnr for r in done)
    return {"file": str(path), "rows": len(table), "complete": len(done), "failed": len(table) - len(done),
            "int8_psnr_min": psnr[0] if psnr else None, "int8_psnr_median": psnr[len(psnr) // 2] if psnr else None,
            "int8_psnr_max": psnr[-1] if psnr else None,
            "train_s": sum(r.train_s or 0.0 for r in table.rows), "stale": len(table.stale), "meta": table.meta}


def _print_summary(s: dict) -> None:
    con = out_console()
    m = s["meta"]
    con.print(f"{s['file']}: {s['rows']} specs of space {m.get('space')} ({s['complete']} complete, {s['failed']} "
              f"failed), proxy {m.get('proxy', {}).get('steps')} steps on {m.get('data', {}).get('train')} data, "
              f"made with nas {m.get('nas_version')} from study {m.get('study')}", soft_wrap=True)
    if s["complete"]:
        con.print(f"INT8 PSNR {s['int8_psnr_min']:.2f} .. {s['int8_psnr_max']:.2f} dB (median "
                  f"{s['int8_psnr_median']:.2f}); {_duration(s['train_s'])} of proxy training; references "
                  f"{m.get('references')}")
    if s["stale"]:
        con.print(f"{s['stale']} of its complete rows were measured before today's training form or INT8 export: "
                  f"`nas table make` with this CSV measures them again")


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


@table_app.command("make")
def make(
    config: Optional[Path] = typer.Argument(None, help="Search config (YAML) whose space, proxy and data the table "
                                                       "uses; default: the built-in study's."),
    n: int = typer.Option(200, "--n", min=1, help="Distinct specs the table should hold."),
    csv: Path = CSV_OPT,
    name: Optional[str] = typer.Option(None, "--name", help="The table study's name (default table-SPACE-STEPS)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Trainings in parallel (Ray when > 1)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Join this Ray cluster (host:port)."),
    out: Optional[str] = typer.Option(None, "--out", help="Folder of the study folders (default runs)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Train N distinct specs of the space with the study's proxy (every zoo network first, then a space-filling
    design; no pruning) and write them as a benchmark table.

    It is a study like any other: run the same command again after an interruption and it goes on; a larger --n
    adds specs to the same table. The CSV is rewritten after every finished trial, and a run that finds it already
    there (made with the same settings) answers its specs from it instead of training them again: a table goes on
    from its CSV on another machine or a fresh clone.
    """
    from nas.search import load_search_config
    from nas.benchmark import make_table, table_config

    cfg = table_config(load_search_config(config, workers=workers, ray_address=ray_address, out=out), name)
    con = status_console()
    con.print(f"table study [bold]{cfg.name}[/] in {cfg.study_dir}: {n} specs of space {cfg.space}, proxy "
              f"{cfg.proxy.steps} steps, sampler balanced, {len(cfg.warm_start)} zoo networks first")
    with live_trials(con, not as_json, n) as cb, contextlib.redirect_stdout(sys.stderr):
        table = make_table(cfg, n, callback=cb, csv=csv)
    s = _summary(table, csv)
    print_json(s) if as_json else _print_summary(s)


@table_app.command("export")
def export(study: str = typer.Argument(..., help="Study folder (runs/NAME) or name."), csv: Path = CSV_OPT,
           out: str = OUT_OPT, as_json: bool = JSON_OPT) -> None:
    """Write a study's complete and infeasible trials (each spec once) as a benchmark table."""
    from nas.benchmark import export_table

    table = export_table(study, out)
    path = table.write_csv(csv)
    s = _summary(table, path)
    print_json(s) if as_json else _print_summary(s)


@table_app.command("show")
def show(csv: Path = typer.Argument(..., help="A benchmark table (CSV)."), as_json: bool = JSON_OPT) -> None:
    """What a benchmark table holds and what it was made with."""
    from nas.benchmark import BenchTable

    s = _summary(BenchTable.read_csv(csv), csv)
    print_json(s) if as_json else _print_summary(s)


def samplers() -> None:
    """The samplers a study's config can name (sampler.name), registered in nas.search.SAMPLERS."""
    from nas.search import SAMPLERS

    con = out_console()
    for name in sorted(SAMPLERS):
        con.print(f"{name:10s} {SAMPLERS[name].summary}")
