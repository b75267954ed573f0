"""After the search (nas.retrain): which trial is retrained, an interrupted retraining resumes, each length
gets its own folder and model version."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from nas.errors import SearchError
from nas.retrain import retrain
from tests.conftest import retraining_at


def test_the_trial_to_retrain_is_named_once_and_must_have_completed(study):
    _, summary, _ = study
    folder = summary.study.folder
    with pytest.raises(SearchError, match="choose one trial: --trial N or --best"):
        retrain(folder, trial=0, best=True)
    with pytest.raises(SearchError, match="choose one trial"):
        retrain(folder)
    with pytest.raises(SearchError, match=r"has no trial 999 \(trials 0\.\."):
        retrain(folder, trial=999)


@pytest.mark.slow
def test_an_interrupted_retraining_resumes_from_its_checkpoint(study):
    _, summary, _ = study
    folder = summary.study.folder
    progress = folder / "retrain-0000-200steps" / "checkpoints" / "progress.json"
    proc, cmd = retraining_at(folder, 200, 40)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    at = json.loads(progress.read_text())["step"]
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    res = json.loads(again.stdout)
    report = json.loads((folder / "retrain-0000-200steps" / "report.json").read_text())
    assert report["train"]["resumed_from"] == at > 0 and report["train"]["steps"] == 200
    assert res["trial"] == 0 and res["check_passed"] is True and res["model_version"] == "1"
    # QAT's weights or the float model quantized after training: whichever scored higher on training photographs
    picks = report["int8_selection_psnr"]
    assert report["int8_form"] == max(picks, key=picks.get) and set(picks) == {"qat", "ptq"}

    # the same trial for another number of steps: its own folder, the finished model above is kept
    model = (folder / "retrain-0000-200steps" / "model_int8.tflite").read_bytes()
    other = subprocess.run(cmd[:-2] + ["20", "--json"], capture_output=True, text=True, timeout=600)
    assert other.returncode == 0, other.stderr[-2000:]
    assert json.loads(other.stdout)["model_version"] == "2"
    assert (folder / "retrain-0000-20steps" / "model_int8.tflite").exists()
    assert (folder / "retrain-0000-200steps" / "model_int8.tflite").read_bytes() == model
