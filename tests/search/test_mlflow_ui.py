"""The study as its users see it: the MLflow UI (a real ``mlflow server`` started by ``nas ui``) in headless Chromium.

Debian's Chromium (``apt-get install chromium``, done by ``.ci/run``) is driven by Playwright, which launches the
installed browser and downloads none. The tests type into the UI as a user does and read what the page shows:
the trial runs with their metrics, the front's runs found by their tag, the parent run's Pareto plot artifact
(PNG and interactive HTML). Screenshots go to ``$NAS_SCREENSHOTS`` (default: the test's temporary folder).

Without Chromium or Playwright the tests skip with the reason, unless ``NAS_REQUIRE_BROWSER=1`` (set by
``.ci/run``), where they fail.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from nas.search import ui_link
from tests.search.conftest import serve

VIEWPORT = {"width": 1920, "height": 1080}
# Chromium as the machine's closed network wants it: no background connections, no first-run work
ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
# every cell of the runs table by row and column id; the Run Name cell holds the run's colour chip, then its name
GRID_JS = """() => {
  const rows = {};
  document.querySelectorAll('.ag-row').forEach(r => {
    const i = r.getAttribute('row-index');
    rows[i] = rows[i] || {};
    r.querySelectorAll('[col-id]').forEach(c => { rows[i][c.getAttribute('col-id')] = c.innerText.trim(); });
  });
  return Object.values(rows);
}"""
METRICS = ["int8_psnr", "int8_ssim", "latency_ms", "log2_score"]


def _unavailable(reason: str):
    if os.environ.get("NAS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (NAS_REQUIRE_BROWSER=1: the browser test must run here)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    exe = os.environ.get("NAS_CHROMIUM") or next(
        (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if exe is None:
        _unavailable("no Chromium on this machine (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def ui(study):
    """The MLflow UI that ``nas ui`` serves on the study's store: (base URL, client, experiment id, parent run)."""
    _, summary, _ = study
    with serve("ui", summary.study.folder, "/health", "the MLflow UI") as (port, _):
        client = MlflowClient(tracking_uri=summary.study.tracking)
        exp = client.get_experiment_by_name(summary.study.experiment)
        (parent,) = client.search_runs([exp.experiment_id], "tags.`nas.kind` = 'study'")
        yield f"http://127.0.0.1:{port}", client, exp.experiment_id, parent


@pytest.fixture
def page(browser):
    pg = browser.new_page(viewport=VIEWPORT)
    pg.set_default_timeout(60_000)
    yield pg
    pg.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("NAS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _shot(page, path: Path, **kw) -> np.ndarray:
    """Save a screenshot and return its pixels (RGB), checked to be a rendered page, not a blank one."""
    from PIL import Image

    page.screenshot(path=str(path), **kw)
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.std() > 10, f"{path.name} is blank"
    return img


def _open(page, url: str) -> None:
    """Load a page of the UI, wait until it shows runs, and close the assistant panel that takes a third of it."""
    page.goto(url)
    page.get_by_text("matching runs").or_(page.get_by_text("Artifacts", exact=True)).first.wait_for()
    close = page.get_by_role("button", name="Close", exact=True).first
    try:
        close.wait_for(timeout=5_000)
    except Exception:  # playwright's TimeoutError: this MLflow has no assistant panel
        return
    close.click()


def _filter(page, expression: str) -> None:
    box = page.get_by_placeholder("metrics.rmse", exact=False)  # the runs search box ("metrics.rmse < 1 and ...")
    box.fill(expression)
    with page.expect_response(lambda r: r.url.endswith("/runs/search") and expression in (r.request.post_data or "")):
        box.press("Enter")


def _expand(page, study: str) -> None:
    """Once the filtered runs are loaded, open the study's parent run to show the trial runs nested under it."""
    page.locator(".ag-row", has_text=study).first.locator("button").first.click()


def _rows(page, study: str, expect: set[str]) -> dict[str, dict[str, str]]:
    """The runs the table shows, by name, once exactly ``expect`` are listed under the study's parent run (the
    UI nests trial runs under it and shows the parent of every matching run)."""
    page.wait_for_function(
        """([study, names]) => {
             const shown = [...document.querySelectorAll('.ag-row [col-id="attributes.`Run Name`"]')]
               .map(c => c.innerText.trim().split('\\n').pop());
             return shown.includes(study) && shown.length === names.length + 1
               && names.every(n => shown.includes(n));
           }""", arg=[study, sorted(expect)])
    rows = {r["attributes.`Run Name`"].split("\n")[-1]: r for r in page.evaluate(GRID_JS)}
    return {k: v for k, v in rows.items() if k != study}


def test_the_trials_are_listed_with_their_metrics(study, ui, page, shots):
    _, summary, _ = study
    base, client, exp_id, parent = ui
    trials = {r.info.run_name: r for r in client.search_runs([exp_id], "tags.`nas.kind` = 'trial'")}
    assert len(trials) >= 3

    link = ui_link(summary.study.tracking, summary.study.experiment, base)  # what `nas ui` prints
    assert link == f"{base}/#/experiments/{exp_id}/runs?workflowType=machine_learning"
    _open(page, link)
    _filter(page, "tags.nas.kind = 'trial'")
    _expand(page, summary.study.name)
    page.get_by_role("button", name="Columns", exact=True).click()  # the metrics a user looks at, and the front's tag
    menu = page.locator("[role=dialog]", has_text="Metrics (").first
    for name in [*METRICS, "nas.pareto"]:
        menu.get_by_text(name, exact=True).first.click()
    page.keyboard.press("Escape")

    rows = _rows(page, summary.study.name, set(trials))
    _shot(page, shots / "mlflow-trials.png")
    assert set(rows) == set(trials)
    for name, run in trials.items():
        for m in METRICS:
            assert float(rows[name][f"metrics.`{m}`"]) == pytest.approx(run.data.metrics[m], rel=1e-9), (name, m)
        assert rows[name]["tags.`nas.pareto`"] == run.data.tags["nas.pareto"]


def test_the_front_is_found_by_its_tag(study, ui, page, shots):
    _, summary, _ = study
    base, client, exp_id, _ = ui
    front = {r.info.run_name for r in client.search_runs([exp_id], "tags.`nas.pareto` = 'true'")}
    assert front and {f"trial-{p.number:04d}" for p in summary.front} <= front

    _open(page, f"{base}/#/experiments/{exp_id}/runs?workflowType=machine_learning")
    _filter(page, "tags.nas.pareto = 'true'")
    _expand(page, summary.study.name)
    rows = _rows(page, summary.study.name, front)
    _shot(page, shots / "mlflow-front.png")
    assert set(rows) == front
    page.get_by_text(f"{len(front) + 1} matching runs").wait_for()  # the front and their parent


def test_the_parent_runs_pareto_plot_renders(study, ui, page, shots):
    from PIL import Image

    _, summary, _ = study
    base, _, exp_id, parent = ui
    png = (summary.study.folder / "pareto" / "pareto.png").read_bytes()
    width, height = struct.unpack(">II", png[16:24])  # the PNG header's size

    _open(page, f"{base}/#/experiments/{exp_id}/runs/{parent.info.run_id}/artifacts/pareto/pareto.png"
          "?workflowType=machine_learning")
    img = page.locator("img[src^='blob:']").first
    page.wait_for_function("([w, h]) => [...document.images].some(i => i.complete && i.naturalWidth === w "
                           "&& i.naturalHeight === h)", arg=[width, height])
    _shot(page, shots / "mlflow-pareto-png.png")
    shown = np.asarray(Image.open(io.BytesIO(img.screenshot())).convert("RGB")).astype(int)
    red = (np.abs(shown - [0xD6, 0x27, 0x28]).sum(axis=2) < 60).sum()  # the front's markers and step line
    assert red > 50, "the Pareto front is not visible in the rendered plot"

    page.get_by_text("pareto.html", exact=True).click()  # the interactive plot, in the UI's sandboxed frame
    frame = page.frame_locator("iframe").first
    frame.locator(".js-plotly-plot").wait_for()
    legend = frame.locator(".legendtext").all_text_contents()
    assert "Pareto front" in legend and any(n.startswith("zoo") for n in legend), legend
    assert f"study {summary.study.name}" in frame.locator(".gtitle").text_content()
    _shot(page, shots / "mlflow-pareto-html.png")
