"""The one exception family of the library.

Every error the library raises on purpose is a :class:`NasError`. The command line prints its message on one
line and exits with status 1; the search maps the subclasses to trial states (an architecture that cannot be
built, converted or checked becomes a failed trial with its reason, a bad configuration stops the run).
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import re

__all__ = [
    "NasError",
    "SpecError",
    "SpaceError",
    "ZooError",
    "ExportError",
    "CheckError",
    "DataError",
    "TrainError",
    "DivergedError",
    "LatencyError",
    "SearchError",
    "EnvironmentFault",
    "environment_fault",
    "faults_named",
    "first_line",
]


class NasError(Exception):
    """Root of every error this library raises deliberately."""


class SpecError(NasError, ValueError):
    """An architecture spec is malformed or inconsistent (names the field and the bad value)."""


class SpaceError(NasError, ValueError):
    """A search-space file is malformed or contradictory."""


class ZooError(NasError, KeyError):
    """An unknown reference-network name."""

    def __str__(self) -> str:  # KeyError quotes its message; we want the plain text
        return str(self.args[0]) if self.args else ""


class ExportError(NasError):
    """INT8 conversion failed, or the converted model is unusable."""


class CheckError(NasError):
    """A file given to the NPU check is not a TFLite model, or a target profile is malformed."""


class DataError(NasError):
    """Image data is missing, unreadable or unusable."""


class TrainError(NasError):
    """A training run cannot start or go on (bad config, checkpoint of another run)."""


class DivergedError(TrainError):
    """The loss became NaN or infinite: the training stops (in a search, the trial fails with this reason)."""


class LatencyError(NasError):
    """A latency measurement, measurements file or latency model is missing, malformed or does not apply."""


class SearchError(NasError):
    """A search config, study or tracking store is malformed, unreachable or does not match: the search stops
    (a trial's own failure never raises this; it becomes a failed trial with its reason)."""


class EnvironmentFault(NasError, OSError):
    """The machine refused a write or a read: a full disk or quota, a read-only or vanished folder, a permission.
    Nothing about the input is wrong; what was complete stays complete and the same command goes on once the cause
    is gone."""

    def __str__(self) -> str:
        return str(self.strerror)


_ADVICE = {
    _errno.ENOSPC: "free some space (or give another folder)",
    _errno.EDQUOT: "free some of your quota (or give another folder)",
    _errno.EROFS: "the file system is read-only: give a writable folder",
    _errno.EACCES: "give a folder you may write to (or fix its permissions)",
    _errno.EPERM: "give a folder you may write to (or fix its permissions)",
    _errno.ENOENT: "the folder is gone: create it again (or give another one)",
    _errno.EIO: "the device reported an I/O error: check the disk",
}
# SQLite (Optuna's and MLflow's default stores) says it in words, through SQLAlchemy
_SQLITE = {"database or disk is full": _errno.ENOSPC, "attempt to write a readonly database": _errno.EROFS,
           "unable to open database file": _errno.EACCES, "disk i/o error": _errno.EIO}


def environment_fault(exc: BaseException, where: str | None = None) -> EnvironmentFault | None:
    """``exc`` as an :class:`EnvironmentFault` with one line naming the path and what to do, when it (or what
    caused it: SQLAlchemy and MLflow wrap the OS's and SQLite's errors) is the machine refusing a write; None
    otherwise. ``where`` names the place when the error itself names no file (e.g. "the study folder X"). A missing
    file counts only where the error names it (a file the user named is checked before)."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, EnvironmentFault):
            return e
        code, path = None, ""
        if isinstance(e, OSError) and e.errno in _ADVICE and (e.filename or e.errno != _errno.ENOENT):
            code, path = e.errno, e.filename or where or "a file"
        elif type(e).__module__.startswith("tensorflow") and (found := _tensorflow_fault(str(e))) is not None:
            code, path = found[0], found[1] or where or "a file"
        elif type(e).__name__ == "OperationalError":
            text = str(e).lower()
            code = next((c for k, c in _SQLITE.items() if k in text), None)
            path = "a SQLite database (the Optuna storage or the MLflow store)" + (f" in {where}" if where else "")
        if code is not None:
            return EnvironmentFault(code, f"cannot write {path}: {os.strerror(code)}: {_ADVICE[code]}, then run "
                                          "the same command again (completed work is kept)")
        todo += [e.__cause__, e.__context__, getattr(e, "orig", None)]
    return None


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (its class name when it has none), at most 300 characters: what an
    error line quotes of an error raised by a library (Optuna, MLflow, SQLAlchemy)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


@contextlib.contextmanager
def faults_named(where: str):
    """Inside, the machine refusing a write becomes an :class:`EnvironmentFault` whose line names ``where`` when the
    error itself names no file (a long job's folder: "the retraining folder X"); other errors pass unchanged."""
    try:
        yield
    except NasError:
        raise
    except Exception as exc:
        fault = environment_fault(exc, where=where)
        if fault is None:
            raise
        raise fault from exc


def _tensorflow_fault(text: str) -> tuple[int, str] | None:
    """TensorFlow's file errors (a checkpoint written on a full disk: ``ResourceExhaustedError``) are not OSErrors:
    they carry the OS's words and the path in their message. The errno and the path (cut before TensorFlow's
    temporary names), or None."""
    for code in (_errno.ENOSPC, _errno.EDQUOT, _errno.EROFS, _errno.EACCES, _errno.EIO):
        words = os.strerror(code)
        if words in text:
            before = text[: text.index(words)]
            paths = re.findall(r"(/[^\s;,'\"]+)", before)
            path = paths[-1] if paths else ""
            parts = path.split("/")
            keep = next((i for i, p in enumerate(parts) if p.endswith("_temp") or "tempstate" in p), len(parts))
            return code, "/".join(parts[:keep])
    return None
