"""Pareto fronts of INT8 PSNR (up) against latency (down): dominance, ranks, hypervolume and its history.

Pure maths on :class:`FrontPoint` values; drawing them is :mod:`nas.search.pareto._plot`'s.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

__all__ = ["FrontPoint", "pareto_front", "pareto_ranks", "best_point", "hypervolume", "hypervolume_history"]


@dataclasses.dataclass(frozen=True)
class FrontPoint:
    """One completed trial as the front sees it."""

    number: int
    spec: str  # ArchSpec.describe()
    hash: str
    psnr: float  # INT8 PSNR (RGB, dB) on the study's validation images
    latency_ms: float  # predicted mean
    latency_sigma_ms: float
    latency_objective_ms: float  # mean + k sigma: what the search minimised
    log2_score: float  # on latency_objective_ms, the latency the search optimised: the one definition shown
    outside_range: bool = False
    warm_start: str = ""
    feasible: bool = True
    on_front: bool = False
    measured_ms: float | None = None  # measured on the study's board (closed loop), where it was

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def pareto_front(points: Sequence[FrontPoint]) -> list[FrontPoint]:
    """All points, with ``on_front`` set for the feasible ones no other feasible point dominates (higher or equal
    PSNR and lower or equal latency, one of them strictly), sorted by latency."""
    feas = [p for p in points if p.feasible and math.isfinite(p.psnr)]
    out = []
    for p in points:
        dominated = not p.feasible or any(
            q.psnr >= p.psnr and q.latency_objective_ms <= p.latency_objective_ms
            and (q.psnr > p.psnr or q.latency_objective_ms < p.latency_objective_ms) for q in feas)
        out.append(dataclasses.replace(p, on_front=not dominated))
    return sorted(out, key=lambda p: (p.latency_objective_ms, -p.psnr))


def best_point(points: Sequence[FrontPoint]) -> FrontPoint | None:
    """The feasible point with the highest log2 score on the latency the search optimised (None: none feasible)."""
    feasible = [p for p in points if p.feasible]
    return max(feasible, key=lambda p: p.log2_score) if feasible else None


def pareto_ranks(points: Sequence[FrontPoint]) -> dict[int, int]:
    """Trial number -> Pareto rank of each feasible point (1: on the front; 2: on the front once rank 1 is removed;
    ...), by non-dominated sorting on INT8 PSNR and the pessimistic latency. Infeasible points have no rank."""
    left = [p for p in points if p.feasible and math.isfinite(p.psnr)]
    ranks: dict[int, int] = {}
    rank = 1
    while left:
        layer = pareto_front(left)
        ranks.update({p.number: rank for p in layer if p.on_front})
        left = [p for p in left if p.number not in ranks]
        rank += 1
    return ranks


def hypervolume(points: Sequence[tuple[float, float]], ref_psnr: float, ref_latency_ms: float) -> float:
    """The area (dB x ms) that the (PSNR, latency) ``points`` dominate above ``ref_psnr`` and below
    ``ref_latency_ms``: the front's hypervolume, exact (points outside the reference box add nothing)."""
    pts = sorted((lat, psnr) for psnr, lat in points if psnr > ref_psnr and lat < ref_latency_ms)
    area, best = 0.0, ref_psnr
    for i, (lat, psnr) in enumerate(pts):
        best = max(best, psnr)
        nxt = pts[i + 1][0] if i + 1 < len(pts) else ref_latency_ms
        area += (best - ref_psnr) * (nxt - lat)
    return area


def hypervolume_history(points: Sequence[tuple[float, float] | None], ref_psnr: float,
                        ref_latency_ms: float) -> list[float]:
    """The hypervolume after each of ``points`` in the order the trials finished (``None``: a trial that added no
    feasible point: pruned, failed, infeasible)."""
    seen: list[tuple[float, float]] = []
    out = []
    for p in points:
        if p is not None:
            seen.append(p)
            seen = [(q_psnr, q_lat) for q_psnr, q_lat in seen  # keep the non-dominated ones (cheap: fronts are small)
                    if not any(r_psnr >= q_psnr and r_lat <= q_lat and (r_psnr, r_lat) != (q_psnr, q_lat)
                               for r_psnr, r_lat in seen)]
        out.append(hypervolume(seen, ref_psnr, ref_latency_ms))
    return out
