"""What a study optimises, in one value: its Optuna names and directions, a completed trial's values, and how a
trial's outcome maps to Optuna's states. The store (creating and checking the study), the rebuild (re-creating it
from the folder), the policy and the driver all read it from here, so the two can never disagree.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from optuna.trial import TrialState

__all__ = ["Objective", "optuna_state", "outcome_state", "OUTCOMES"]

OUTCOMES = ("complete", "pruned", "failed")
"""What a finished trial counts as."""
_STATES = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}


def optuna_state(outcome: str) -> TrialState:
    """The Optuna state a trial outcome (``complete``, ``pruned``, ``failed``) is told as."""
    try:
        return _STATES[outcome]
    except KeyError:
        raise ValueError(f"unknown trial outcome {outcome!r} (one of {', '.join(OUTCOMES)})") from None


def outcome_state(state: TrialState) -> str:
    """The outcome a finished Optuna trial counts as: ``complete``, ``pruned`` or ``failed`` (any other state, such
    as a trial still running when its driver died, counts as failed)."""
    return {v: k for k, v in _STATES.items()}.get(state, "failed")


@dataclasses.dataclass(frozen=True)
class Objective:
    """A study's objective: ``pareto`` (INT8 PSNR up, pessimistic latency down) or ``score`` (log2 of the
    challenge's score on the pessimistic latency, up)."""

    kind: Literal["pareto", "score"]

    def __post_init__(self) -> None:
        if self.kind not in ("pareto", "score"):
            raise ValueError(f"unknown objective {self.kind!r} (pareto or score)")

    @classmethod
    def of(cls, config) -> "Objective":
        """The objective of a :class:`~nas.search.SearchConfig`."""
        return cls(config.objective)

    @property
    def names(self) -> tuple[str, ...]:
        """The values' names in Optuna (optuna-dashboard shows them instead of "Objective 0/1")."""
        if self.kind == "pareto":
            return ("INT8 PSNR (dB)", "latency mean+k sigma (ms)")
        return ("log2 score (mean+k sigma)",)

    @property
    def directions(self) -> list[str]:
        return ["maximize", "minimize"] if self.kind == "pareto" else ["maximize"]

    @property
    def multi(self) -> bool:
        return len(self.directions) > 1

    def values(self, psnr: float, latency_objective_ms: float, log2_objective: float) -> list[float] | float:
        """A completed trial's values as Optuna is told them."""
        if self.kind == "pareto":
            return [psnr, latency_objective_ms]
        return log2_objective
