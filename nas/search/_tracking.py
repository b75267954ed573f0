"""MLflow tracking of a study: one parent run per study, one nested run per trial, the Pareto front's artifacts.

Everything goes through an :class:`mlflow.MlflowClient` built with the study's tracking URI: the process-wide
tracking URI, active runs and environment are never touched. Runs are found again by their tags (``nas.study``,
``nas.kind``, ``nas.trial``), which is what lets a resumed study continue its parent run and repair the trial
runs a killed driver left open.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterable, Mapping

from nas._logging import get_logger
from nas.errors import SearchError, environment_fault, first_line

__all__ = ["Tracker", "check_tracking_uri", "ui_link"]

log = get_logger("search")

STATUS = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}


def _is_remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "databricks"))


def check_tracking_uri(uri: str, timeout: float = 5.0) -> None:
    """Raise :class:`SearchError` now (before any training) when an MLflow server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return

    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (the user's own server)
            if resp.status != 200:
                raise SearchError(f"MLflow server {uri} answered {resp.status} on /health")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SearchError(f"MLflow tracking server {uri} is unreachable ({reason}); start it or pass another "
                          "--tracking URI") from None


def ui_link(tracking_uri: str, experiment: str, base_url: str) -> str:
    """The address of the experiment's runs table in the MLflow UI served at ``base_url`` (model-training view);
    the UI's front page where the experiment is not in the store."""
    from mlflow import MlflowClient

    exp = MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name(experiment)
    if exp is None:
        return base_url
    return f"{base_url.rstrip('/')}/#/experiments/{exp.experiment_id}/runs?workflowType=machine_learning"


# MLflow 3's UI opens an experiment without this tag in its GenAI (traces) view; ours is model training, where
# the runs table with their metrics is what users come to see
_KIND_TAG, _KIND = "mlflow.experimentKind", "custom_model_development"


def _create_sqlite_store(path: Path) -> None:
    """Create the SQLite MLflow store at ``path`` if there is none, all at once: MLflow builds its tables by running
    its schema migrations one by one (seconds), and a process killed between two of them left a store that every
    later run refused ("table trace_info already exists"). The store is built in a file of its own beside ``path``
    and linked into place only once complete, so ``path`` is either absent or whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return
    for old in path.parent.glob(f".{path.name}.*.creating"):  # left by a process killed while it created the store
        pid = old.name.removeprefix(f".{path.name}.").removesuffix(".creating")
        if pid.isdigit() and not _alive(int(pid)):
            old.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.creating")
    tmp.unlink(missing_ok=True)
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=f"sqlite:///{tmp}", registry_uri=f"sqlite:///{tmp}").search_experiments()
    try:
        os.link(tmp, path)  # (never replaces a store another process completed meanwhile)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # (alive, another user's)
        pass
    return True


class Tracker:
    """The study's MLflow experiment (``nas-<study>``), created on first use with its artifacts under
    ``artifact_root`` for a local store."""

    def __init__(self, uri: str, experiment: str, artifact_root: Path | None = None):
        check_tracking_uri(uri)
        from mlflow import MlflowClient

        self.uri = uri
        try:
            if uri.startswith("sqlite:///"):
                _create_sqlite_store(Path(uri.removeprefix("sqlite:///")))
            self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            exp = self.client.get_experiment_by_name(experiment)
            if exp is None:
                location = None
                if artifact_root is not None and not _is_remote(uri):
                    location = (Path(artifact_root).resolve() / experiment).as_uri()
                self.experiment_id = self.client.create_experiment(
                    experiment, artifact_location=location, tags={_KIND_TAG: _KIND})
            else:
                if exp.lifecycle_stage == "deleted":
                    raise SearchError(f"MLflow experiment '{experiment}' is deleted in {uri}: restore it "
                                      "(mlflow experiments restore) or use another study name")
                self.experiment_id = exp.experiment_id
                if _KIND_TAG not in exp.tags:  # a store written before the tag was set
                    self.client.set_experiment_tag(self.experiment_id, _KIND_TAG, _KIND)
        except SearchError:
            raise
        except Exception as exc:  # MlflowException, database errors: the store is unusable
            fault = environment_fault(exc, where=f"the MLflow store {uri}")
            if fault is not None:
                raise fault from None
            raise SearchError(f"MLflow tracking store {uri} is unusable: {first_line(exc)}") from None
        self.experiment = experiment

    # ------------------------------------------------------------------------------------------------- runs
    def find(self, **tags: str) -> list:
        flt = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        return list(self.client.search_runs([self.experiment_id], filter_string=flt, max_results=5000))

    def parent_run(self, study: str, tags: Mapping[str, str], params: Mapping[str, Any]) -> str:
        """The study's parent run: found again on resume (and set running), created otherwise."""
        found = self.find(**{"nas.study": study, "nas.kind": "study"})
        if found:
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        run = self.client.create_run(self.experiment_id, run_name=study,
                                     tags={"nas.study": study, "nas.kind": "study", **tags})
        self.log_params(run.info.run_id, params)
        return run.info.run_id

    def create_run(self, name: str, tags: Mapping[str, str], params: Mapping[str, Any]) -> str:
        """A new top-level run of the experiment (e.g. a proxy check), with its tags and parameters."""
        run = self.client.create_run(self.experiment_id, run_name=name, tags=dict(tags))
        self.log_params(run.info.run_id, params)
        return run.info.run_id

    def start_trial(self, parent_id: str, study: str, number: int, params: Mapping[str, Any],
                    tags: Mapping[str, str]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=f"trial-{number:04d}", tags={
            "mlflow.parentRunId": parent_id, "nas.study": study, "nas.kind": "trial", "nas.trial": str(number),
            **tags})
        self.log_params(run.info.run_id, params)
        return run.info.run_id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i:i + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()
                 if v is not None and isinstance(v, (int, float)) and not isinstance(v, bool)]
        for i in range(0, len(items), 500):
            self.client.log_batch(run_id, metrics=items[i:i + 500])

    def log_curve(self, run_id: str, name: str, curve: Iterable[tuple[int, float]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(name, float(v), now, int(s)) for s, v in curve]
        if items:
            self.client.log_batch(run_id, metrics=items)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)[:5000]) for k, v in tags.items()]
        if items:
            self.client.log_batch(run_id, tags=items)

    def log_files(self, run_id: str, files: Iterable[Path], artifact_path: str | None = None) -> None:
        for f in files:
            self.client.log_artifact(run_id, str(f), artifact_path)

    def end(self, run_id: str, state: str) -> None:
        # MLflow prints "View run ... at: URL" to stdout for a server store; stdout carries --json output, so the
        # links go to this library's log instead
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            self.client.set_terminated(run_id, status=STATUS.get(state, state))
        for line in buf.getvalue().splitlines():
            log.debug("%s", line)

    def artifact_uri(self, run_id: str) -> str:
        return self.client.get_run(run_id).info.artifact_uri
