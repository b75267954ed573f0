"""The reference zoo: the challenge's networks as named specs (data in ``zoo.yaml`` beside this module)."""

from __future__ import annotations

import dataclasses
import difflib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from nas.errors import SpecError, ZooError
from nas.reference import Table1Row, table1
from nas.space._spec import ArchSpec

__all__ = ["ZooEntry", "zoo_entries", "zoo_get", "load_spec"]


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    name: str
    spec: ArchSpec
    team: str
    confidence: str
    note: str
    aliases: tuple[str, ...]
    table1: Table1Row | None  # the network's row of Table 1 (published INT8 PSNR, VS680 runtime, score)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "team": self.team,
            "confidence": self.confidence,
            "note": self.note,
            "table1": dataclasses.asdict(self.table1) if self.table1 else None,
            "spec": self.spec.to_dict(),
            "hash": self.spec.hash,
        }


def _entry(name: str, raw: Mapping[str, Any], rows: Mapping[str, Table1Row]) -> ZooEntry:
    try:
        spec = ArchSpec.from_dict(raw["spec"])
    except SpecError as exc:  # a packaging defect, not a user error, but say where
        raise SpecError(f"zoo entry '{name}': {exc}") from None
    return ZooEntry(
        name=name,
        spec=spec,
        team=str(raw.get("team", "")),
        confidence=str(raw.get("confidence", "")),
        note=str(raw.get("note", "")),
        aliases=tuple(raw.get("aliases") or ()),
        table1=rows.get(name),
    )


@lru_cache(maxsize=1)
def zoo_entries() -> tuple[ZooEntry, ...]:
    """Every reference network, in the order of the data file (Table 1's ranking within each confidence)."""
    text = resources.files("nas.space").joinpath("zoo.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    rows = {r.name: r for r in table1()}
    return tuple(_entry(name, raw, rows) for name, raw in data["entries"].items())


def zoo_get(name: str) -> ZooEntry:
    """The entry called ``name`` or one of its aliases (case-insensitive); :class:`ZooError` names the close ones."""
    key = name.strip().lower()
    names: dict[str, ZooEntry] = {}
    for e in zoo_entries():
        names[e.name] = e
        for a in e.aliases:
            names[a] = e
    if key in names:
        return names[key]
    close = difflib.get_close_matches(key, list(names), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ZooError(f"unknown zoo network '{name}'{hint} (see `nas zoo list`)")


def load_spec(source: str) -> ArchSpec:
    """A spec from ``zoo:NAME`` or from a JSON file path."""
    if source.startswith("zoo:"):
        return zoo_get(source[4:]).spec
    path = Path(source)
    if not path.exists():
        hint = " (for a reference network write zoo:NAME)" if "/" not in source and not source.endswith(".json") else ""
        raise SpecError(f"spec file not found: {source}{hint}")
    if path.is_dir():
        raise SpecError(f"{source} is a folder, not a spec file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{source}: not a text file") from None
    try:
        return ArchSpec.from_json(text)
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}") from None
