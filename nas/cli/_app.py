"""The ``nas`` command line: thin Typer commands over the library (parse, call one function, print).

Heavy modules are imported inside the commands, so ``nas --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from nas.cli._common import JSON_OPT
from nas.cli._common import out_console as _console
from nas.cli._common import parse_hw as _parse_hw
from nas.cli._common import print_json as _print_json

app = typer.Typer(
    name="nas",
    help="Hardware-aware NAS for INT8 x3 super-resolution networks on mobile NPUs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
space_app = typer.Typer(help="Search spaces.", no_args_is_help=True)
zoo_app = typer.Typer(help="The reference zoo of the MAI 2022 challenge's networks.", no_args_is_help=True)
app.add_typer(space_app, name="space")
app.add_typer(zoo_app, name="zoo")


def _register_latency() -> None:
    from nas.cli._latency import latency_app

    app.add_typer(latency_app, name="latency")


_register_latency()


def _register_data() -> None:
    from nas.cli._data import data_app

    app.add_typer(data_app, name="data")


_register_data()


def _register_proxy() -> None:
    from nas.cli._proxy import proxy_app

    app.add_typer(proxy_app, name="proxy")


_register_proxy()


def _register_table() -> None:
    from nas.cli import _table

    app.add_typer(_table.table_app, name="table")
    app.command("samplers")(_table.samplers)


_register_table()


def _register_search() -> None:
    from nas.cli import _search

    app.command("search")(_search.search)
    app.command("pareto")(_search.pareto)
    app.command("rebuild")(_search.rebuild)
    app.command("retrain")(_search.retrain_cmd)
    app.command("ui")(_search.ui)
    app.command("dashboard")(_search.dashboard)


_register_search()

@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details.")) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("nas")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)


# ------------------------------------------------------------------------------------------------------ space
@space_app.command("show")
def space_show(file: str = typer.Argument(..., help="Space file, or a name in search_spaces/ (e.g. mai2022)."),
               as_json: bool = JSON_OPT) -> None:
    """Show a search space: its dimensions and how many distinct networks it holds."""
    from nas.space import load_space

    summary = load_space(file).summary()
    if as_json:
        _print_json(summary)
        return
    from rich.table import Table

    t = Table(title=f"search space '{summary['name']}'", show_header=False)
    for key in ("description", "scale", "width", "widths_per_layer", "depth", "blocks", "blocks_per_layer",
                "expansion", "skip", "clip_where", "clip_kind", "tail", "size", "deployed_size"):
        val = summary[key]
        t.add_row(key, ", ".join(map(str, val)) if isinstance(val, list) else f"{val:,}" if "size" in key else str(val))
    _console().print(t)


# -------------------------------------------------------------------------------------------------------- zoo
@zoo_app.command("list")
def zoo_list(as_json: bool = JSON_OPT) -> None:
    """List the reference networks with their published Table 1 figures."""
    from nas.space import deploy_ops, zoo_entries

    rows = []
    for e in zoo_entries():
        ops = deploy_ops(e.spec)
        rows.append({**e.to_dict(), "params": sum(o.params for o in ops), "macs": sum(o.macs for o in ops)})
    if as_json:
        _print_json(rows)
        return
    from rich.table import Table

    t = Table(title="reference zoo (Table 1: INT8 PSNR on the test set, VS680 NPU runtime, final score)")
    for col in ("name (alias)", "params", "GMACs", "PSNR", "NPU ms", "score"):
        t.add_column(col, justify="left" if col.startswith("name") else "right", no_wrap=True)
    for r in rows:
        t1 = r["table1"] or {}
        alias = f" ({','.join(r['aliases'])})" if r["aliases"] else ""
        t.add_row(r["name"] + alias, f"{r['params']:,}", f"{r['macs'] / 1e9:.2f}",
                  f"{t1.get('psnr', '')}", f"{t1.get('npu_ms', '')}", f"{t1.get('score', '')}")
    _console().print(t)


@zoo_app.command("show")
def zoo_show(name: str = typer.Argument(..., help="Network name or alias (see `nas zoo list`)."),
             input_size: str = typer.Option("360x640", help="Input HEIGHTxWIDTH for shapes and MACs."),
             as_json: bool = JSON_OPT) -> None:
    """Show one reference network: its spec, layer table, parameters and MACs."""
    from nas.space import deploy_ops, zoo_get

    h, w = _parse_hw(input_size)
    e = zoo_get(name)
    ops = deploy_ops(e.spec, h, w)
    data = {
        **e.to_dict(),
        "input_hw": [h, w],
        "params": sum(o.params for o in ops),
        "frozen_params": sum(o.frozen_params for o in ops),
        "macs": sum(o.macs for o in ops),
        "layers": [{"name": o.name, "op": o.type, "out_shape": list(o.out_shape), "in_channels": list(o.in_channels),
                    "kernel": o.kernel, "act": o.act, "params": o.params, "frozen_params": o.frozen_params,
                    "macs": o.macs} for o in ops],
    }
    if as_json:
        _print_json(data)
        return
    from rich.table import Table

    t = Table(title=f"{e.name} ({e.team}): {e.spec.describe()}  [hash {e.spec.hash}]")
    for col in ("layer", "op", "output (HxWxC)", "kernel", "act", "params", "MMACs"):
        t.add_column(col, justify="right" if col in ("params", "MMACs", "kernel") else "left")
    for o in ops:
        t.add_row(o.name, o.type, "x".join(map(str, o.out_shape)), str(o.kernel or ""), o.act,
                  f"{o.params:,}" + (f" (+{o.frozen_params} frozen)" if o.frozen_params else ""), f"{o.macs / 1e6:,.1f}")
    t.add_section()
    t.add_row("total", "", "", "", "", f"{data['params']:,}", f"{data['macs'] / 1e6:,.1f}")
    con = _console()
    con.print(t)
    if e.table1:
        t1 = e.table1
        con.print(f"Table 1: INT8 PSNR {t1.psnr} dB, SSIM {t1.ssim}, {t1.size_kb} KB, VS680 NPU {t1.npu_ms} ms, "
                  f"CPU {t1.cpu_ms} ms, score {t1.score}")
    con.print(f"note: {e.note}")


# ----------------------------------------------------------------------------------------------------- export
@app.command("export")
def export(
    source: str = typer.Argument(..., help="SPEC.json or zoo:NAME."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .tflite file."),
    weights: Optional[Path] = typer.Option(None, help="Deploy-form weights (.npz); default: seeded initial weights."),
    input_size: str = typer.Option("360x640", help="Fixed input HEIGHTxWIDTH (the challenge measures 360x640)."),
    data: Optional[Path] = typer.Option(None, help="Folder of HR images for calibration (default: embedded photos)."),
    calibration: int = typer.Option(8, min=1, help="Number of calibration samples."),
    target: str = typer.Option("vs680", help="Target NPU profile the model must pass."),
    force: bool = typer.Option(False, "--force", help="Write the model even if it fails the target check."),
    seed: int = typer.Option(0, help="Seed for calibration crops."),
    qat: Optional[bool] = typer.Option(
        None, "--qat/--no-qat",
        help="The weights come out of quantization-aware training (nas retrain, nas train --full): convert them as "
             "trained. Default: read from the report.json beside the weights."),
    as_json: bool = JSON_OPT,
) -> None:
    """Export a network to a full-integer INT8 TFLite model (uint8 in/out) and check it against the target."""
    from nas.export import export_int8
    from nas.model import load_weights
    from nas.space import load_spec

    spec = load_spec(source)
    images = None
    if data is not None:
        from nas.data import list_images, read_image

        images = [read_image(p) for p in list_images(data)[:32]]
    w = load_weights(weights) if weights else None
    if qat is None:
        qat = weights is not None and _quantization_trained(weights)
    hw = _parse_hw(input_size)
    with _console().status(f"converting {spec.describe()} to INT8 at {hw[0]}x{hw[1]} (a child process)...",
                           spinner="dots") if not as_json else contextlib.nullcontext():
        res = export_int8(spec, out, weights=w, input_hw=hw, images=images, n_calibration=calibration, seed=seed,
                          target=target, require_pass=not force, quantization_trained=qat)
    if as_json:
        _print_json({"path": str(res.path), "size_bytes": res.size_bytes, "input_hw": list(res.input_hw),
                     "seconds": round(res.seconds, 2), "spec": spec.to_dict(), "hash": spec.hash,
                     "check": res.report.to_dict()})
        return
    con = _console()
    con.print(f"wrote {res.path} ({res.size_bytes / 1024:.1f} KB, input {res.input_hw[0]}x{res.input_hw[1]}, "
              f"{res.seconds:.1f} s)")
    _print_report(res.report, con)


def _quantization_trained(weights: Path) -> bool:
    """Whether the ``report.json`` a training left beside ``weights`` says they come out of a QAT stage (and were
    shipped so: a QAT run whose float model won ships that model's weights, ``int8_form`` ``ptq``)."""
    report = weights.parent / "report.json"
    if weights.name != "weights.npz" or not report.exists():  # (weights_float.npz is a float model)
        return False
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
        if "int8_form" in data:
            return data["int8_form"] == "qat"
        stages = data["config"]["stages"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return any(st.get("qat") for st in stages)


# ------------------------------------------------------------------------------------------------------- train
def _load_data(data: Optional[str], split: str, skip_bad: bool, cache=None, scale: int = 3):
    from nas.data import load_images

    return load_images(data or "embedded", split, scale=scale, on_error="skip" if skip_bad else "raise", cache=cache)


DATA_HELP = ("Training images: a DIV2K folder (DIV2K_train_HR, optional DIV2K_train_LR_bicubic/X3), any folder of "
             "images, or 'embedded' (photographs shipped with scikit-image; the default).")


@app.command("train")
def train_cmd(
    source: str = typer.Argument(..., help="SPEC.json or zoo:NAME."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (weights, INT8 model, report, checkpoints)."),
    data: Optional[str] = typer.Option(None, help=DATA_HELP),
    val: Optional[str] = typer.Option(None, help="Validation images (default: DIV2K's valid split for a DIV2K "
                                                  "folder, otherwise the embedded held-out photographs)."),
    steps: Optional[int] = typer.Option(None, min=1, help="Total training steps (default: the proxy 1000, --full "
                                                          "20000; a study's proxy trains 300)."),
    full: bool = typer.Option(False, "--full", help="The full schedule: L1, L2 fine-tuning, QAT, EMA, checkpoints; "
                                                     "ships QAT's weights or the float model quantized after "
                                                     "training, whichever scores higher on training photographs."),
    config: Optional[Path] = typer.Option(None, help="Training config YAML (preset: proxy|full plus fields)."),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Patches per step (default 16)."),
    patch_size: Optional[int] = typer.Option(None, min=4, help="LR patch side (default 48)."),
    seed: Optional[int] = typer.Option(None, min=0, help="Seed of weights and batches (default 0)."),
    threads: Optional[int] = typer.Option(None, min=1, help="TensorFlow intra-op threads."),
    eval_every: Optional[int] = typer.Option(None, min=0, help="Steps between validation PSNR reports."),
    checkpoint_every: Optional[int] = typer.Option(None, min=0, help="Steps between checkpoints (0: stage ends)."),
    ema: Optional[float] = typer.Option(None, help="EMA decay of weights (e.g. 0.999; full schedule default)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Resume from the folder's checkpoint."),
    export: bool = typer.Option(True, "--export/--no-export", help="Export and evaluate the INT8 model."),
    input_size: str = typer.Option("360x640", help="Fixed input HEIGHTxWIDTH of the exported INT8 model."),
    target: str = typer.Option("vs680", help="Target NPU profile the INT8 model must pass."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unreadable images (counted) instead of stopping."),
    cache: Optional[Path] = typer.Option(None, help="Folder to cache decoded images in (.npy)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Train a network (proxy or full schedule), export it to INT8 and evaluate FP32 and INT8 beside bicubic."""
    from nas.data import ImageCache, default_valid_source, describe_source
    from nas.space import load_spec
    from nas.train import load_train_config, train_and_export

    spec = load_spec(source)
    cfg = load_train_config(config, preset="full" if full else None, steps=steps, batch_size=batch_size,
                            patch_size=patch_size, seed=seed, threads=threads, eval_every=eval_every,
                            checkpoint_every=checkpoint_every, ema=ema)
    hw = _parse_hw(input_size)
    decoded = ImageCache(cache)  # one cache for both splits (a folder may serve as both)
    images = _load_data(data, "train", skip_bad, decoded, spec.scale)
    vsrc = val if val is not None else default_valid_source(data)
    valid = _load_data(vsrc, "valid", skip_bad, decoded, spec.scale)
    con = _console() if not as_json else None
    if con:
        con.print(f"training {spec.describe()} ({spec.hash}) for {cfg.steps} steps "
                  f"[{' -> '.join(f'{s.label} {n}' for s, n in zip(cfg.stages, cfg.stage_steps()))}]")
        con.print(f"data: {describe_source(data, 'train')} ({len(images)} images"
                  + (f", {len(images.skipped)} skipped" if images.skipped else "") + f"); "
                  f"validation: {describe_source(vsrc, 'valid')} ({len(valid)} images)")
    with _train_progress(con, cfg.steps) as (callback, phase):
        report = train_and_export(spec, images, valid, cfg, out, resume=resume, export=export, input_hw=hw,
                                  target=target, callback=callback, phase=phase)
    data_out = report.to_dict()
    if as_json:
        _print_json(data_out)
        return
    _print_job(data_out, con)


@contextlib.contextmanager
def _train_progress(con, total: int):
    if con is None:
        yield None, None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*cols, console=con, transient=False) as prog:
        task = prog.add_task("train", total=total, info="")
        state = {"val": ""}

        def callback(ev) -> None:
            if ev.val_psnr is not None:
                state["val"] = f" val {ev.val_psnr:.2f} dB"
            prog.update(task, completed=ev.step, description=f"train [{ev.stage}]",
                        info=f"loss {ev.loss:.4f} lr {ev.lr:.1e}{state['val']}")

        def phase(name: str) -> None:
            if name != "train":
                prog.update(task, completed=total, description=f"{name}...")

        yield callback, phase


def _metrics_table(title: str, rows: list[tuple[str, dict]], seconds: bool = False):
    """PSNR/SSIM (RGB and Y) of evaluation results (``EvalResult.to_dict()`` or its summary), one row each."""
    from rich.table import Table

    t = Table(title=title)
    cols = ("model", "PSNR RGB", "PSNR Y", "SSIM RGB", "SSIM Y") + (("s",) if seconds else ())
    for c in cols:
        t.add_column(c, justify="right" if c != "model" else "left")
    f = (lambda v, d: "-" if v is None else f"{v:.{d}f}")
    for label, r in rows:
        t.add_row(label, f(r["psnr_rgb"], 2), f(r["psnr_y"], 2), f(r["ssim_rgb"], 4), f(r["ssim_y"], 4),
                  *((f"{r['seconds']:.1f}",) if seconds else ()))
    return t


def _print_job(d: dict, con) -> None:
    rows = [(label, d[key]) for key, label in (("bicubic", "bicubic"), ("fp32", "FP32"), ("int8", "INT8 (LiteRT)"))
            if d[key]]
    con.print(_metrics_table(f"{d['hash']} after {d['train']['steps']} steps ({d['train']['seconds']:.0f} s training)",
                             rows))
    if d["int8"]:
        con.print(f"INT8 vs FP32: {-d['int8_drop_db']:+.3f} dB; INT8 vs bicubic: {d['int8_gain_over_bicubic_db']:+.2f} dB"
                  f"; {d['tflite']} ({d['tflite_bytes'] / 1024:.1f} KB, check "
                  + ("passed" if d["check_passed"] else "FAILED") + ")")
    picks = d.get("int8_selection_psnr") or {}
    if picks:  # (after QAT: which weights were converted, and why)
        con.print(f"shipped {'QAT' if d['int8_form'] == 'qat' else 'the float model quantized after training'}: "
                  f"on training photographs QAT {picks['qat']:.2f} dB, the float model's PTQ {picks['ptq']:.2f} dB")
    con.print(f"wrote {d['out_dir']}/report.json")


# ---------------------------------------------------------------------------------------------------- evaluate
@app.command("evaluate")
def evaluate_cmd(
    model: Optional[Path] = typer.Argument(None, help="An INT8 .tflite model, or a `nas train` output folder "
                                                      "(evaluates its FP32 weights and its INT8 model)."),
    data: Optional[str] = typer.Option(None, help="Images to evaluate on: a folder of HR images, a DIV2K folder "
                                                   "(its valid split), or 'embedded' (default)."),
    baseline: Optional[str] = typer.Option(None, help="Evaluate a baseline instead of a model: 'bicubic'."),
    border: Optional[int] = typer.Option(None, min=0, help="Pixels cropped on each side (default: the scale, 3)."),
    ssim: bool = typer.Option(True, "--ssim/--no-ssim", help="Also compute SSIM (slower)."),
    threads: Optional[int] = typer.Option(None, min=1, help="LiteRT threads."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unreadable images (counted) instead of stopping."),
    as_json: bool = JSON_OPT,
) -> None:
    """PSNR and SSIM (RGB and Y, border cropped) on whole images of any size: an INT8 model run with LiteRT, a
    trained model's FP32 weights, or bicubic."""
    from nas.errors import NasError
    from nas.evaluate import Bicubic, KerasUpscaler, TfliteUpscaler, evaluate

    if (model is None) == (baseline is None):
        raise NasError("give a MODEL (.tflite or a `nas train` folder) or --baseline bicubic, not both or neither")
    images = _load_data(data, "valid", skip_bad)
    upscalers = []
    if baseline is not None:
        if baseline != "bicubic":
            raise NasError(f"unknown baseline '{baseline}' (known: bicubic)")
        upscalers.append(("bicubic", Bicubic(images.scale)))
    elif model.is_dir():
        from nas.model import load_weights
        from nas.space import load_spec
        from nas.train import FLOAT_WEIGHTS

        spec_path, w_path, tfl = model / "spec.json", model / "weights.npz", model / "model_int8.tflite"
        if not spec_path.exists() or not w_path.exists():
            raise NasError(f"{model} is not a `nas train` output folder (no spec.json and weights.npz)")
        spec = load_spec(str(spec_path))
        if (model / FLOAT_WEIGHTS).exists():  # a QAT run: its float model (weights.npz are trained for INT8)
            w_path = model / FLOAT_WEIGHTS
        upscalers.append(("fp32", KerasUpscaler(spec, load_weights(w_path), name=f"{spec.hash} fp32")))
        if tfl.exists():
            upscalers.append(("int8", TfliteUpscaler(tfl, threads=threads, scale=spec.scale)))
    else:
        upscalers.append(("int8", TfliteUpscaler(model, threads=threads, scale=images.scale)))
    results = {}
    con = _console() if not as_json else None
    for key, up in upscalers:
        with con.status(f"evaluating {up.name} on {len(images)} images...", spinner="dots") if con \
                else contextlib.nullcontext():
            results[key] = evaluate(up, images, border=border, with_ssim=ssim).to_dict()
    if as_json:
        _print_json(results if len(results) > 1 else next(iter(results.values())))
        return
    border_used = next(iter(results.values()))["border"]
    con.print(_metrics_table(f"{images.source} ({len(images)} images, border {border_used})",
                             [(r["model"], r) for r in results.values()], seconds=True))


# ------------------------------------------------------------------------------------------------------ score
@app.command("score")
def score(psnr: float = typer.Option(..., help="INT8 model PSNR in dB (RGB, as the challenge measures it)."),
          runtime_ms: float = typer.Option(..., "--runtime-ms", help="Runtime of the INT8 model in ms."),
          as_json: bool = JSON_OPT) -> None:
    """The MAI 2022 challenge score 2^(2*PSNR) / (C * runtime), C derived from Table 1."""
    from nas.evaluate import challenge_score, log2_score, mai2022_c

    data = {"psnr": psnr, "runtime_ms": runtime_ms, "score": challenge_score(psnr, runtime_ms),
            "log2_score": log2_score(psnr, runtime_ms), "c": mai2022_c()}
    if as_json:
        _print_json(data)
        return
    _console().print(f"score {data['score']:.3f} (log2 {data['log2_score']:.4f}) for {psnr} dB at {runtime_ms} ms; "
                     f"C = {data['c']:.6g}")


# ------------------------------------------------------------------------------------------------------ check
def _print_report(report, con) -> None:
    from rich.table import Table

    t = Table(title=f"{Path(report.path).name} vs {report.target} ({report.size_bytes / 1024:.1f} KB)")
    t.add_column("")
    t.add_column("check")
    t.add_column("result")
    for item in report.items:
        mark = "[green]PASS[/]" if item.passed else ("[red]FAIL[/]" if item.severity == "error" else "[yellow]WARN[/]")
        text = item.message + ("".join(f"\n  - {d}" for d in item.details[:8]) if not item.passed else "")
        t.add_row(mark, item.name, text)
    con.print(t)
    ops = ", ".join(f"{k} x{v}" for k, v in sorted(report.op_counts.items()))
    con.print(f"ops: {ops}")
    con.print("engines: " + ", ".join(f"{k} {v}" for k, v in sorted(report.engines.items())))
    con.print(("[green]" if report.passed else "[red]") + report.summary() + "[/]")


@app.command("check")
def check(file: Path = typer.Argument(..., help="A .tflite model."),
          target: str = typer.Option("vs680", help="Target profile name or profile .yaml file."),
          as_json: bool = JSON_OPT) -> None:
    """Check an INT8 TFLite model against a target NPU's op list and quantization rules (exit 1 if it fails)."""
    from nas.export import check_model

    report = check_model(file, target)
    if as_json:
        _print_json(report.to_dict())
    else:
        _print_report(report, _console())
    if not report.passed:
        raise typer.Exit(1)


@app.command("doctor")
def doctor(data: Optional[str] = typer.Option(None, "--data", help="Also check this data folder."),
           out: str = typer.Option("runs", "--out", help="Where studies will be written."),
           as_json: bool = JSON_OPT) -> None:
    """Check the environment: package versions, LiteRT, threads, data, latency models, study folder, Ray auth."""
    from nas._doctor import run_checks

    checks = run_checks(data, out)
    bad = [c for c in checks if c.status == "fail"]
    if as_json:
        _print_json({"healthy": not bad, "checks": [c.to_dict() for c in checks]})
    else:
        from rich.table import Table

        t = Table(title="nas doctor")
        for col in ("check", "", "found", "what to do"):
            t.add_column(col)
        marks = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}
        for c in checks:
            t.add_row(c.name, marks[c.status], c.found, c.fix)
        con = _console()
        con.print(t)
        con.print("healthy" if not bad else f"{len(bad)} problem(s) to fix")
    if bad:
        raise typer.Exit(1)
