"""Benchmark tables of a search space (NAS-Bench style): every row a spec trained once by the study's proxy, so
that samplers can be compared on the table in seconds instead of days.

A table is made by the product itself: :func:`table_from_study` reads a study (run with the space-filling
``balanced`` sampler and no pruning, resumable like any study) and :meth:`BenchTable.write_csv` writes it as a CSV
whose ``#`` header lines say what it was made with (space and its digest, proxy, data, latency model, package
version). The executors that answer trials from a table are in :mod:`nas.benchmark._executors`.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import statistics
from pathlib import Path
from typing import Iterable, Literal

from optuna.trial import TrialState

import nas
from nas._files import atomic_write
from nas.errors import SearchError
from nas.model import result_forms
from nas.search import Cause, TrialRecord
from nas.space import ArchSpec, Skip, deploy_ops, load_space

__all__ = ["BenchTable", "TableRow", "LookupFidelity", "table_from_study", "table_meta", "check_same_making",
           "space_digest", "spec_distance", "TABLE_FORMAT", "RESULT_META"]

TABLE_FORMAT = 1
"""The version of the CSV layout (a ``# format:`` header line)."""

_COLUMNS = ("hash", "spec", "describe", "state", "cause", "reason", "int8_psnr", "int8_ssim", "fp32_psnr",
            "fp32_ssim", "latency_ms", "latency_sigma_ms", "macs", "params", "train_s", "curve", "trial", "forms")
_OPTIONAL = ("forms",)  # columns added since format 1 (a file without them reads with their defaults)
_FLOATS = ("int8_psnr", "int8_ssim", "fp32_psnr", "fp32_ssim", "latency_ms", "latency_sigma_ms", "train_s")
_METRICS = ("int8_psnr", "int8_ssim", "fp32_psnr", "fp32_ssim")


def space_digest(space) -> str:
    """A short digest of a search space's choices (a table made on another space is refused)."""
    return hashlib.sha256(json.dumps(space.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class TableRow:
    """One spec of a table: its deployed INT8 and FP32 quality after the proxy, its predicted latency, size, and
    the proxy's training seconds; a failed spec keeps its cause and reason."""

    spec: ArchSpec
    state: Literal["complete", "failed"]
    cause: str = ""
    reason: str = ""
    int8_psnr: float | None = None
    int8_ssim: float | None = None
    fp32_psnr: float | None = None
    fp32_ssim: float | None = None
    latency_ms: float | None = None
    latency_sigma_ms: float | None = None
    macs: int = 0
    params: int = 0
    train_s: float | None = None
    curve: tuple[tuple[int, float], ...] = ()
    trial: int | None = None
    forms: str = ""  # the training form and INT8 export it was measured with (nas.model.result_forms; "": unknown)

    @property
    def current(self) -> bool:
        """Whether the row was measured with today's training form and INT8 export for its spec (a row that was not
        is measured again when its table is made on; an infeasible row stands as it is)."""
        return self.state != "complete" or self.forms == result_forms(self.spec)

    def __post_init__(self) -> None:
        if self.state not in ("complete", "failed"):
            raise ValueError(f"a table row is complete or failed, not {self.state!r}")
        if self.state == "complete" and self.int8_psnr is None:
            raise ValueError(f"complete row {self.spec.hash} has no INT8 PSNR")
        if self.state == "failed" and not self.reason:
            raise ValueError(f"failed row {self.spec.hash} needs its reason")

    @property
    def hash(self) -> str:
        return self.spec.hash

    def metrics(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in _METRICS if getattr(self, k) is not None} | (
            {"int8_drop_db": self.fp32_psnr - self.int8_psnr} if self.fp32_psnr is not None
            and self.int8_psnr is not None else {})

    def to_csv_row(self) -> dict[str, str]:
        def num(v):
            return "" if v is None else repr(float(v))  # (the shortest text that reads back to the same float)

        return {"hash": self.hash, "spec": json.dumps(self.spec.to_dict(), separators=(",", ":")),
                "describe": self.spec.describe(), "state": self.state, "cause": self.cause, "reason": self.reason,
                **{k: num(getattr(self, k)) for k in _FLOATS}, "macs": str(self.macs), "params": str(self.params),
                "curve": " ".join(f"{s}:{float(v)!r}" for s, v in self.curve),
                "trial": "" if self.trial is None else str(self.trial), "forms": self.forms}

    @classmethod
    def from_csv_row(cls, row: dict[str, str], where: str) -> "TableRow":
        try:
            spec = ArchSpec.from_dict(json.loads(row["spec"]))
            if spec.hash != row["hash"]:
                raise ValueError(f"hash {row['hash']} is not its spec's ({spec.hash})")
            curve = tuple((int(s), float(v)) for s, v in (p.split(":") for p in row["curve"].split()))
            return cls(spec, row["state"], row["cause"], row["reason"],
                       **{k: float(row[k]) if row[k] else None for k in _FLOATS if k != "train_s"},
                       macs=int(row["macs"]), params=int(row["params"]),
                       train_s=float(row["train_s"]) if row["train_s"] else None, curve=curve,
                       trial=int(row["trial"]) if row["trial"] else None, forms=row.get("forms") or "")
        except (ValueError, KeyError, TypeError, nas.NasError) as exc:
            raise SearchError(f"{where}: {exc}") from None


@dataclasses.dataclass(frozen=True)
class LookupFidelity:
    """:meth:`BenchTable.leave_one_out`: over ``n`` completed rows, the mean absolute error (dB) and Kendall tau of
    the INT8 PSNR the nearest other row gives, and the error of the table's mean PSNR alone (the floor to beat)."""

    n: int
    mae_db: float
    tau: float
    mean_only_mae_db: float

    def describe(self) -> str:
        return (f"a spec the table lacks takes its nearest row: leave-one-out over {self.n} rows, INT8 PSNR error "
                f"{self.mae_db:.2f} dB (the table's mean alone: {self.mean_only_mae_db:.2f} dB), Kendall tau "
                f"{self.tau:.2f}")


@dataclasses.dataclass(frozen=True)
class BenchTable:
    """Rows of distinct specs and what they were made with (``meta``: space, space_digest, proxy, data,
    latency_model, latency_k, references, nas_version, study)."""

    rows: tuple[TableRow, ...]
    meta: dict

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for r in self.rows:
            if r.hash in seen:
                raise ValueError(f"spec {r.hash} ({r.spec.describe()}) is in the table twice")
            seen.add(r.hash)
        object.__setattr__(self, "_by_hash", {r.hash: r for r in self.rows})

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, spec: ArchSpec) -> TableRow | None:
        return self._by_hash.get(spec.hash)

    @property
    def stale(self) -> tuple[TableRow, ...]:
        """The completed rows measured before today's training form or INT8 export for their spec (or by a version
        that did not record it): ``nas table make`` on the table measures them again."""
        return tuple(r for r in self.rows if not r.current)

    @property
    def digest(self) -> str:
        """A digest of the rows' results (what a study on this table depends on; a column added since format 1 counts
        only where it is set, so the digest of a table written before it is kept)."""
        def values(r: TableRow):
            row = r.to_csv_row()
            return [v for k, v in row.items() if v or k not in _OPTIONAL]

        body = "\n".join(",".join(values(r)) for r in sorted(self.rows, key=lambda r: r.hash))
        return hashlib.sha256(body.encode()).hexdigest()[:12]

    def nearest(self, spec: ArchSpec) -> tuple[TableRow, float]:
        """The row nearest to ``spec`` and its distance (0: the spec itself; see :func:`spec_distance`)."""
        if not self.rows:
            raise SearchError("the benchmark table has no rows")
        row = self.get(spec)
        if row is not None:
            return row, 0.0
        return min(((r, spec_distance(spec, r.spec)) for r in self.rows), key=lambda p: (p[1], p[0].hash))

    def leave_one_out(self) -> "LookupFidelity":
        """How well the table answers a spec it lacks: each completed row answered from its nearest other
        completed row (:meth:`nearest`'s rule), against its own INT8 PSNR."""
        done = [r for r in self.rows if r.state == "complete" and r.int8_psnr is not None]
        if len(done) < 3:
            raise SearchError(f"the benchmark table has {len(done)} completed rows; leave-one-out needs 3")
        pred = [min(((o, spec_distance(r.spec, o.spec)) for o in done if o is not r),
                    key=lambda p: (p[1], p[0].hash))[0].int8_psnr for r in done]
        true = [r.int8_psnr for r in done]
        mean = statistics.fmean(true)
        from scipy.stats import kendalltau

        return LookupFidelity(len(done), statistics.fmean(abs(p - t) for p, t in zip(pred, true)),
                              float(kendalltau(pred, true).statistic), statistics.fmean(abs(t - mean) for t in true))

    # ------------------------------------------------------------------------------------------------ files
    def write_csv(self, path: str | Path) -> Path:
        """Write the table (``#`` header lines with :attr:`meta`, then the rows sorted by hash), atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        buf.write(f"# nas benchmark table, format {TABLE_FORMAT}\n")
        for k, v in sorted(self.meta.items()):
            buf.write(f"# {k}: {json.dumps(v, sort_keys=True)}\n")
        w = csv.DictWriter(buf, fieldnames=_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in sorted(self.rows, key=lambda r: r.hash):
            w.writerow(r.to_csv_row())
        with atomic_write(path) as fh:
            fh.write(buf.getvalue().encode("utf-8"))
        return path

    @classmethod
    def read_csv(cls, path: str | Path) -> "BenchTable":
        path = Path(path)
        if not path.exists():
            raise SearchError(f"benchmark table not found: {path}")
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        if not lines or not lines[0].startswith("# nas benchmark table, format "):
            raise SearchError(f"{path} is not a benchmark table (its first line should be '# nas benchmark table, "
                              f"format {TABLE_FORMAT}')")
        fmt = lines[0].rsplit(" ", 1)[-1]
        if fmt != str(TABLE_FORMAT):
            raise SearchError(f"{path}: table format {fmt}, this nas reads format {TABLE_FORMAT}")
        meta, i = {}, 1
        while i < len(lines) and lines[i].startswith("# "):
            key, _, value = lines[i][2:].partition(": ")
            try:
                meta[key] = json.loads(value)
            except ValueError:
                raise SearchError(f"{path} line {i + 1}: header '{key}' is not JSON") from None
            i += 1
        reader = csv.DictReader(io.StringIO("\n".join(lines[i:])))
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or []) and c not in _OPTIONAL]
        if missing:
            raise SearchError(f"{path}: columns {missing} are missing")
        rows = [TableRow.from_csv_row(r, f"{path} line {i + 2 + n}") for n, r in enumerate(reader)]
        try:
            return cls(tuple(rows), meta)
        except ValueError as exc:
            raise SearchError(f"{path}: {exc}") from None


ANCHOR_WEIGHT = 2.0
"""The extra distance between an anchored spec and one without an anchor. Chosen by leave-one-out on the first 64
specs of ``bench/tables/mai2022-300.csv`` (each row answered from its nearest other row): INT8 PSNR mean absolute
error 1.38 dB and Kendall tau 0.31 without the term (the table's mean alone: 1.64 dB), 1.19 dB / 0.41 with a weight
of 1, 1.08 dB / 0.45 with 2 (4 and 8 give the same neighbours); :meth:`BenchTable.leave_one_out` measures it on any
table."""


def spec_distance(a: ArchSpec, b: ArchSpec) -> float:
    """How far two specs are apart: width steps of 16 and depth steps count one each, and one for each other choice
    that differs (block, skip, clip placement, clip kind, tail, expansion); a spec with an anchor (any skip but
    ``none``) and one without are :data:`ANCHOR_WEIGHT` further apart (a net without an anchor must learn the
    identity first: after the proxy it is several dB below its anchored neighbours)."""
    block = {x for x, s in zip(a.blocks, a.convs()) if s.kernel == 3} != {
        x for x, s in zip(b.blocks, b.convs()) if s.kernel == 3}
    return (abs(a.width - b.width) / 16 + abs(a.depth - b.depth) + block + (a.skip != b.skip)
            + (a.clip_where != b.clip_where) + (a.clip_kind != b.clip_kind) + (a.tail != b.tail)
            + (a.expansion != b.expansion) + ANCHOR_WEIGHT * ((a.skip is Skip.NONE) != (b.skip is Skip.NONE)))


# ---------------------------------------------------------------------------------------------- from a study
def table_from_study(config, trials: Iterable, input_hw: tuple[int, int], references: dict | None = None,
                     study: str = "") -> BenchTable:
    """A table of a finished study's ``trials`` (Optuna FrozenTrials with their records): each spec once, completed
    ones with their results, infeasible ones with their reason; duplicates, pruned trials and trials run again after
    a crash or an interruption are left out (they say nothing about the spec)."""
    space = load_space(config.space)
    rows: dict[str, TableRow] = {}
    for t in trials:
        rec = TrialRecord.from_attrs(t.user_attrs)
        if not rec.hash or rec.duplicate_of is not None or rec.hash in rows:
            continue
        if t.state == TrialState.COMPLETE:
            state, cause, reason = "complete", "", ""
        elif t.state == TrialState.FAIL and rec.cause is Cause.INFEASIBLE:
            state, cause, reason = "failed", rec.cause.value, rec.reason
        else:
            continue
        spec = ArchSpec.from_dict(dict(rec.spec))
        ops = deploy_ops(spec, *input_hw)
        m = rec.metrics
        rows[rec.hash] = TableRow(
            spec, state, cause, reason, m.get("int8_psnr"), m.get("int8_ssim"), m.get("fp32_psnr"),
            m.get("fp32_ssim"), rec.latency_ms, rec.latency_sigma_ms, sum(o.macs for o in ops),
            sum(o.params for o in ops), (rec.seconds or {}).get("train"), tuple(rec.curve), t.number, rec.forms)
    return BenchTable(tuple(rows.values()), table_meta(config, input_hw, references, study, space))


#: what a table's results depend on: a table is continued only under the same values
RESULT_META = ("space_digest", "proxy", "data", "seed", "target", "latency_model", "latency_k", "input_size")


def table_meta(config, input_hw: tuple[int, int], references: dict | None = None, study: str = "",
               space=None) -> dict:
    """The ``meta`` of a table made by the study ``config`` (see :class:`BenchTable`)."""
    space = space or load_space(config.space)
    return {"space": config.space, "space_digest": space_digest(space), "proxy": config.proxy.model_dump(mode="json"),
            "data": {"train": config.data.train, "valid": config.data.valid, "limit": config.data.limit,
                     "valid_limit": config.data.valid_limit}, "seed": config.seed, "target": config.export.target,
            "latency_model": config.latency.model, "latency_k": config.latency.k,
            "input_size": list(input_hw), "references": references or {}, "nas_version": nas.__version__,
            "study": study}


def check_same_making(table: "BenchTable", expected: dict, where: str) -> None:
    """Refuse ``table`` (read from ``where``) unless it was made with the values :data:`RESULT_META` names as
    ``expected`` (a :func:`table_meta`) says."""
    for key in RESULT_META:
        got, want = table.meta.get(key), expected.get(key)
        if got == want:
            continue
        if isinstance(got, dict) and isinstance(want, dict):
            what = ", ".join(f"{k}: {json.dumps(got.get(k))} in the file, {json.dumps(want.get(k))} in this config"
                             for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k))
        else:
            what = f"{json.dumps(got)} in the file, {json.dumps(want)} in this config"
        raise SearchError(f"{where} was made with another {key} ({what}): give another file, or the config it was "
                          "made with")
