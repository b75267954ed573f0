"""The one exception family of the library.

Every error the library raises on purpose is a :class:`NasError`. The command line prints its message on one
line and exits with status 1; the search maps the subclasses to trial states (an architecture that cannot be
built, converted or checked becomes a failed trial with its reason, a bad configuration stops the run).
"""

from __future__ import annotations

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
