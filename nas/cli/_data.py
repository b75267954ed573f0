"""``nas data``: get DIV2K (resumable download, checksums, safe extraction) for users who can reach it."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from nas.cli._common import status_console

data_app = typer.Typer(help="Datasets: fetch DIV2K, extract archives safely.", no_args_is_help=True)


def _progress():
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    console=status_console())


@data_app.command("fetch")
def fetch(
    name: str = typer.Argument(..., help="Dataset: div2k."),
    to: Path = typer.Option(..., "--to", help="Folder to fill (then pass it as --data or data.train)."),
    part: Optional[List[str]] = typer.Option(None, "--part", help="train_hr, valid_hr, train_lr_x3, valid_lr_x3 "
                                                                   "(repeatable; default train_hr and valid_hr)."),
    base_url: str = typer.Option("https://data.vision.ee.ethz.ch/cvl/DIV2K/", "--base-url",
                                 help="Where the archives are (a mirror)."),
) -> None:
    """Download (resuming an interrupted download) and extract DIV2K archives."""
    from nas.data import fetch_div2k
    from nas.errors import DataError

    if name.lower() != "div2k":
        raise DataError(f"unknown dataset '{name}' (known: div2k)")
    with _progress() as prog:
        tasks: dict[str, int] = {}

        def cb(label: str, done: int, total: int | None) -> None:
            if label not in tasks:
                tasks[label] = prog.add_task(label, total=total)
            prog.update(tasks[label], completed=done, total=total)

        root = fetch_div2k(to, tuple(part or ("train_hr", "valid_hr")), base_url=base_url, progress=cb)
    typer.echo(f"DIV2K in {root}: nas search with data: {{train: {root}}}, or nas train ... --data {root}")


@data_app.command("extract")
def extract(archive: Path = typer.Argument(..., help="A .zip archive."),
            to: Path = typer.Option(..., "--to", help="Target folder.")) -> None:
    """Extract a zip archive, refusing entries that would land outside the target folder."""
    from nas.data import extract_zip

    with _progress() as prog:
        task = prog.add_task(archive.name, total=None)
        files = extract_zip(archive, to, progress=lambda d, t: prog.update(task, completed=d, total=t))
    typer.echo(f"{len(files)} files in {to}")
