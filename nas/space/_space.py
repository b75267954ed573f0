"""Search spaces: YAML files that say which :class:`ArchSpec` values a search may sample.

Example (``search_spaces/mai2022.yaml``)::

    name: mai2022
    width: {min: 16, max: 64, multiple_of: 16}
    depth: {min: 1, max: 8}
    blocks: {choices: [conv, repconv, ecb, clb], per_layer: false}
    skip: {choices: [none, repeat_add, nearest_conv_add, concat_input, carry]}
    ...

Widths are multiples of 16 (the NPU's channel alignment) unless the file sets ``multiple_of`` explicitly.
Every problem is reported as one :class:`~nas.errors.SpaceError` line naming the file, the field and the value.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import Field, ValidationError, field_validator, model_validator

from nas._builtin import builtin_dir
from nas._validation import Strict, describe_errors
from nas._yaml import read_yaml_mapping
from nas.errors import SpaceError, SpecError
from nas.space._graph import deploy_ops
from nas.space._spec import CARRY_CHANNELS, ArchSpec, Block, ClipKind, ClipWhere, Skip

__all__ = ["SearchSpace", "load_space", "space_search_path", "TrialLike", "IntParam", "ChoiceParam", "Param"]


@dataclasses.dataclass(frozen=True)
class IntParam:
    """An integer parameter a space draws: ``low`` to ``high`` in steps of ``step``."""

    low: int
    high: int
    step: int = 1

    def options(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))


@dataclasses.dataclass(frozen=True)
class ChoiceParam:
    """A categorical parameter a space draws: one of ``choices``."""

    choices: tuple[Any, ...]

    def options(self) -> list[Any]:
        return list(self.choices)


Param = IntParam | ChoiceParam


class TrialLike(Protocol):
    """The part of ``optuna.trial.Trial`` that :meth:`SearchSpace.suggest` uses."""

    def suggest_int(self, name: str, low: int, high: int, step: int = 1) -> int: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


class IntRange(Strict):
    min: int = Field(ge=0)
    max: int = Field(ge=0)
    multiple_of: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> "IntRange":
        if self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        if self.min % self.multiple_of or self.max % self.multiple_of:
            raise ValueError(f"min {self.min} and max {self.max} must be multiples of {self.multiple_of}")
        return self

    def values(self) -> list[int]:
        return list(range(self.min, self.max + 1, self.multiple_of))


class WidthRange(IntRange):
    min: int = Field(ge=1)
    multiple_of: int = Field(16, ge=1)
    per_layer: bool = Field(False, description="each feature conv draws its own width (parameters width_0..)")


class _Choices(Strict):
    """Base of the choice lists: non-empty (each subclass's field) and without repeats."""

    @field_validator("choices", check_fields=False)
    @classmethod
    def _unique(cls, v: list[Any]) -> list[Any]:
        seen: list[Any] = []
        for x in v:
            if x in seen:
                raise ValueError(f"choice {getattr(x, 'value', x)!r} is listed twice")
            seen.append(x)
        return v


class BlockChoices(_Choices):
    choices: list[Block] = Field(min_length=1)
    per_layer: bool = False


class SkipChoices(_Choices):
    choices: list[Skip] = Field(min_length=1)


class ClipWhereChoices(_Choices):
    choices: list[ClipWhere] = Field(min_length=1)


class ClipKindChoices(_Choices):
    choices: list[ClipKind] = Field(min_length=1)


class TailChoices(_Choices):
    choices: list[tuple[int, ...]] = Field(min_length=1)

    @field_validator("choices")
    @classmethod
    def _kernels(cls, v: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        for t in v:
            for k in t:
                if k not in (1, 3):
                    raise ValueError(f"tail kernel {k} is not 1 or 3")
        return v


class ExpansionChoices(_Choices):
    choices: list[int] = Field(min_length=1)

    @field_validator("choices")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        bad = [x for x in v if x < 1]
        if bad:
            raise ValueError(f"expansion {bad[0]} must be >= 1")
        return v


class SearchSpace(Strict):
    """A validated search space (see the module docstring for the file format)."""

    name: str = Field(min_length=1)
    description: str = ""
    scale: int = Field(3, ge=2, le=4)
    width: WidthRange
    depth: IntRange
    blocks: BlockChoices
    expansion: ExpansionChoices = ExpansionChoices(choices=[2])
    skip: SkipChoices
    clip_where: ClipWhereChoices
    clip_kind: ClipKindChoices
    tail: TailChoices = TailChoices(choices=[()])

    @model_validator(mode="after")
    def _consistent(self) -> "SearchSpace":
        if Skip.CARRY in self.skip.choices and self.width.min <= CARRY_CHANNELS:
            raise ValueError(f"skip 'carry' needs width > {CARRY_CHANNELS}, but width.min is {self.width.min}")
        if self.depth.max > 64:
            raise ValueError(f"depth.max {self.depth.max} is more than 64")
        return self

    # ------------------------------------------------------------------------------------------------ queries
    def _n_convs(self, depth: int, tail: tuple[int, ...]) -> int:
        return 2 + depth + len(tail)

    def size(self) -> int:
        """The number of distinct specs in the space."""
        nb, nw = len(self.blocks.choices), len(self.width.values())
        fixed = (len(self.expansion.choices) * len(self.skip.choices) * len(self.clip_where.choices)
                 * len(self.clip_kind.choices))
        total = 0
        for d in self.depth.values():
            widths = nw ** (d + 1) if self.width.per_layer else nw
            for t in self.tail.choices:
                if self.blocks.per_layer:
                    n3 = self._n_convs(d, t) - sum(1 for k in t if k == 1)
                    total += widths * nb ** n3
                else:
                    total += widths * nb
        return total * fixed

    def deployed_size(self) -> int:
        """The number of distinct deployed graphs (block types fuse away: what latency and the NPU see)."""
        nw = len(self.width.values())
        fixed = (len(self.expansion.choices) * len(self.skip.choices) * len(self.clip_where.choices)
                 * len(self.clip_kind.choices) * len(self.tail.choices))
        return fixed * sum(nw ** (d + 1) if self.width.per_layer else nw for d in self.depth.values()) \
            // len(self.expansion.choices)  # (the expansion is a training-form choice: it fuses away too)

    def contains(self, spec: ArchSpec) -> list[str]:
        """Why ``spec`` is outside the space ([] when it is inside)."""
        why = []
        if spec.scale != self.scale:
            why.append(f"scale {spec.scale} is not {self.scale}")
        bad = sorted({w for w in spec.feature_widths if w not in self.width.values()})
        if bad:
            why.append(f"width {bad[0]} is not in {self.width.min}..{self.width.max} step {self.width.multiple_of}")
        if spec.per_layer and not self.width.per_layer:
            why.append("widths differ between layers, but the space has one width per network")
        if spec.depth not in self.depth.values():
            why.append(f"depth {spec.depth} is not in {self.depth.min}..{self.depth.max}")
        kinds = {b for b, slot in zip(spec.blocks, spec.convs()) if slot.kernel == 3}
        if not kinds <= set(self.blocks.choices):
            why.append(f"blocks {sorted(b.value for b in kinds - set(self.blocks.choices))} are not allowed")
        if not self.blocks.per_layer and len(kinds) > 1:
            why.append("blocks differ between layers, but the space has one block type per network")
        for field, value in (("skip", spec.skip), ("clip_where", spec.clip_where), ("clip_kind", spec.clip_kind)):
            if value not in getattr(self, field).choices:
                why.append(f"{field} '{value.value}' is not allowed")
        if spec.tail not in self.tail.choices:
            why.append(f"tail {list(spec.tail)} is not allowed")
        if spec.expansion not in self.expansion.choices:
            why.append(f"expansion {spec.expansion} is not allowed")
        return why

    def _make(self, width: int | list[int], depth: int, blocks: list[str] | str, expansion: int, skip: str,
              clip_where: str, clip_kind: str, tail: tuple[int, ...]) -> ArchSpec:
        """The spec of these choices; ``width`` is a list of per-layer widths in a per-layer space."""
        widths = tuple(width) if isinstance(width, (list, tuple)) else ()
        try:
            return ArchSpec(width=max(widths) if widths else width, depth=depth, blocks=blocks, expansion=expansion,
                            skip=skip, clip_where=clip_where, clip_kind=clip_kind, tail=tail, scale=self.scale,
                            widths=widths)
        except SpecError as exc:  # a space that can produce an invalid spec is a bad space
            raise SpaceError(f"space '{self.name}' produced an invalid spec: {exc}") from None

    def _blocks_for(self, depth: int, tail: tuple[int, ...], pick) -> list[str] | str:
        names = [b.value for b in self.blocks.choices]
        if not self.blocks.per_layer:
            block = pick("block", names)
            # a 1x1 tail conv is always a plain conv
            ks = [3] * (2 + depth) + list(tail)
            return [block if k == 3 else "conv" for k in ks]
        ks = [3] * (2 + depth) + list(tail)
        return [pick(f"block_{i}", names) if k == 3 else "conv" for i, k in enumerate(ks)]

    def _widths_for(self, depth: int, pick_int) -> int | list[int]:
        """The width (or, per layer, the widths of head and body: parameters ``width_0``.. as deep as the net)."""
        if not self.width.per_layer:
            return pick_int("width")
        return [pick_int(f"width_{i}") for i in range(depth + 1)]

    def sample(self, rng: np.random.Generator) -> ArchSpec:
        """A spec drawn uniformly per dimension with ``rng`` (seeded by the caller)."""

        def pick(_: str, options: list[Any]) -> Any:
            return options[int(rng.integers(len(options)))]

        depth = pick("depth", self.depth.values())
        tail = pick("tail", self.tail.choices)
        return self._make(
            width=self._widths_for(depth, lambda name: pick(name, self.width.values())),
            depth=depth,
            blocks=self._blocks_for(depth, tail, pick),
            expansion=pick("expansion", self.expansion.choices),
            skip=pick("skip", [s.value for s in self.skip.choices]),
            clip_where=pick("clip_where", [c.value for c in self.clip_where.choices]),
            clip_kind=pick("clip_kind", [c.value for c in self.clip_kind.choices]),
            tail=tuple(tail),
        )

    def suggest(self, trial: TrialLike) -> ArchSpec:
        """A spec suggested by an Optuna trial (parameter names: width, depth, block[_i], skip, ...)."""
        depth = trial.suggest_int("depth", self.depth.min, self.depth.max, step=self.depth.multiple_of)
        tails = ["-".join(map(str, t)) or "none" for t in self.tail.choices]
        tail_key = trial.suggest_categorical("tail", tails)
        tail = self.tail.choices[tails.index(tail_key)]

        def pick(name: str, options: list[Any]) -> Any:
            return trial.suggest_categorical(name, options)

        def pick_int(name: str) -> int:
            return trial.suggest_int(name, self.width.min, self.width.max, step=self.width.multiple_of)

        return self._make(
            width=self._widths_for(depth, pick_int),
            depth=depth,
            blocks=self._blocks_for(depth, tail, pick),
            expansion=pick("expansion", list(self.expansion.choices)),
            skip=pick("skip", [s.value for s in self.skip.choices]),
            clip_where=pick("clip_where", [c.value for c in self.clip_where.choices]),
            clip_kind=pick("clip_kind", [c.value for c in self.clip_kind.choices]),
            tail=tuple(tail),
        )

    def enumerate(self) -> list[tuple[dict[str, Any], ArchSpec]]:
        """Every spec of the space with the parameters :meth:`suggest` draws for it (``size()`` of them; a walk over
        the parameters in the order :meth:`suggest` asks for them, each option other than the first starting a
        branch of its own). Meant for spaces small enough to list (``mai2022``: 5,120 specs)."""
        out: list[tuple[dict[str, Any], ArchSpec]] = []
        stack: list[dict[str, Any]] = [{}]
        while stack:
            walk = _Walk(stack.pop())
            try:
                spec = self.suggest(walk)
            except SpaceError:  # a combination the space refuses
                spec = None
            fixed = dict(walk.prefix)
            for name, others in walk.branches:
                stack.extend({**fixed, name: o} for o in others)
                fixed[name] = walk.params[name]
            if spec is not None:
                out.append((walk.params, spec))
        return out

    def replay(self, params: dict[str, Any]) -> tuple[ArchSpec, dict[str, Param]]:
        """The spec :meth:`suggest` makes from known ``params``, and the parameter (with its range or choices) of
        each name it draws: how a finished trial is read back into the space (the inverse of :meth:`params_of`).
        A parameter missing from ``params`` raises ``KeyError``; a combination the space refuses,
        :class:`~nas.errors.SpaceError`."""
        walk = _Walk(params, strict=True)
        spec = self.suggest(walk)
        return spec, walk.drawn

    def params_of(self, spec: ArchSpec) -> dict[str, Any]:
        """The parameters :meth:`suggest` would have to draw to produce ``spec`` (which must be in the space)."""
        why = self.contains(spec)
        if why:
            raise SpaceError(f"{spec.describe()} is not in space '{self.name}': {'; '.join(why)}")
        params: dict[str, Any] = {
            "depth": spec.depth, "tail": "-".join(map(str, spec.tail)) or "none",
            "expansion": spec.expansion, "skip": spec.skip.value, "clip_where": spec.clip_where.value,
            "clip_kind": spec.clip_kind.value,
        }
        if self.width.per_layer:
            params.update({f"width_{i}": w for i, w in enumerate(spec.feature_widths)})
        else:
            params["width"] = spec.width
        ks = [slot.kernel for slot in spec.convs()]
        if self.blocks.per_layer:
            params.update({f"block_{i}": b.value for i, (b, k) in enumerate(zip(spec.blocks, ks)) if k == 3})
        else:
            params["block"] = next(b.value for b, k in zip(spec.blocks, ks) if k == 3)
        return params

    def project(self, spec: ArchSpec) -> ArchSpec:
        """The spec of the space nearest to ``spec``: width and depth rounded to the nearest allowed value, choices
        the space lacks replaced by its first choice (``spec`` itself when it is inside)."""
        if not self.contains(spec):
            return spec

        def nearest(v: int, values: list[int]) -> int:
            return min(values, key=lambda x: (abs(x - v), x))

        depth = nearest(spec.depth, self.depth.values())
        tail = spec.tail if spec.tail in self.tail.choices else min(
            self.tail.choices, key=lambda t: (abs(len(t) - len(spec.tail)), t != tuple(k for k in spec.tail)))
        allowed = [b.value for b in self.blocks.choices]
        ks = [slot.kernel for slot in spec.convs()]
        first = next((b.value for b, k in zip(spec.blocks, ks) if k == 3 and b.value in allowed), allowed[0])
        blocks = self._blocks_for(depth, tuple(tail), lambda name, options: first)

        def keep(field: str, value):
            choices = [c.value for c in getattr(self, field).choices]
            return value.value if value.value in choices else choices[0]

        skip = keep("skip", spec.skip)
        widths = self.width.values()
        if skip == Skip.CARRY.value:
            widths = [w for w in widths if w > CARRY_CHANNELS] or widths
        have = list(spec.feature_widths)[:depth + 1]
        have += [have[-1]] * (depth + 1 - len(have))  # a deeper projection repeats the last width
        width: int | list[int] = ([nearest(w, widths) for w in have] if self.width.per_layer
                                  else nearest(spec.width, widths))
        return self._make(
            width=width, depth=depth, blocks=blocks,
            expansion=spec.expansion if spec.expansion in self.expansion.choices else self.expansion.choices[0],
            skip=skip, clip_where=keep("clip_where", spec.clip_where), clip_kind=keep("clip_kind", spec.clip_kind),
            tail=tuple(tail))

    def covering(self, seed: int = 0, at_least: int = 24, candidates: int = 200) -> list[ArchSpec]:
        """A small set of specs in which every pair of choices of two dimensions appears together at least once
        (and, up to ``at_least`` specs, the pairs seen least often are added again).

        Dimensions: width (every value), depth (its extremes and its middle value), block, skip, clip placement,
        clip kind, tail and expansion. Built greedily (each new spec, of ``candidates`` random ones, covers the
        most pairs not yet covered), seeded; an untestable pair (skip ``carry`` with a width of at most 3 channels)
        is left out. This is the set a trainability check trains: a mechanism that fails for one choice, or for
        two choices together, shows up in it.
        """
        depths = self.depth.values()
        levels = {
            "width": self.width.values(),
            "depth": sorted({depths[0], depths[len(depths) // 2], depths[-1]}),
            "block": [b.value for b in self.blocks.choices],
            "skip": [c.value for c in self.skip.choices],
            "clip_where": [c.value for c in self.clip_where.choices],
            "clip_kind": [c.value for c in self.clip_kind.choices],
            "tail": [tuple(t) for t in self.tail.choices],
            "expansion": list(self.expansion.choices),
        }
        if self.width.per_layer:  # how the widths run through the net, the widest being ``width``
            levels["profile"] = list(_PROFILES)
        if self.blocks.per_layer:  # one block everywhere, or the block alternating with plain convs
            levels["mix"] = ["same", "alternate"]
        names = list(levels)

        def valid(row: dict) -> bool:
            return not (row["skip"] == Skip.CARRY.value and row["width"] <= CARRY_CHANNELS)

        def pairs(row: dict) -> set:
            return {(a, row[a], b, row[b]) for a, b in itertools.combinations(names, 2)}

        todo = set()
        for a, b in itertools.combinations(names, 2):
            for va in levels[a]:
                for vb in levels[b]:
                    if valid({**{n: levels[n][0] for n in names}, a: va, b: vb}):
                        todo.add((a, va, b, vb))
        rng = np.random.default_rng(seed)
        rows: list[dict] = []
        while todo:
            a, va, b, vb = min(todo, key=repr)  # an uncovered pair is placed in every candidate
            best, gain = None, -1
            for _ in range(candidates):
                row = {n: levels[n][int(rng.integers(len(levels[n])))] for n in names}
                row[a], row[b] = va, vb
                if not valid(row):
                    continue
                g = len(pairs(row) & todo)
                if g > gain:
                    best, gain = row, g
            if best is None:  # pragma: no cover - only a pair that no valid spec holds
                todo.discard((a, va, b, vb))
                continue
            todo -= pairs(best)
            rows.append(best)
        seen: dict = {}
        for r in rows:
            for p in pairs(r):
                seen[p] = seen.get(p, 0) + 1
        while len(rows) < at_least:  # more specs: each covers the pairs seen least so far
            best, gain = None, -1.0
            for _ in range(candidates):
                row = {n: levels[n][int(rng.integers(len(levels[n])))] for n in names}
                if not valid(row) or row in rows:
                    continue
                g = sum(1.0 / (1 + seen.get(p, 0)) for p in pairs(row))
                if g > gain:
                    best, gain = row, g
            if best is None:  # pragma: no cover - a space with fewer distinct specs
                break
            rows.append(best)
            for p in pairs(best):
                seen[p] = seen.get(p, 0) + 1
        out = []
        for r in rows:
            ks = [3] * (2 + r["depth"]) + list(r["tail"])
            blocks = [r["block"] if k == 3 and (r.get("mix", "same") == "same" or i % 2 == 0) else "conv"
                      for i, k in enumerate(ks)]
            width = r["width"]
            if "profile" in r:
                width = _PROFILES[r["profile"]](r["depth"] + 1, r["width"], self.width.values(), r["skip"])
            out.append(self._make(width, r["depth"], blocks, r["expansion"], r["skip"], r["clip_where"],
                                  r["clip_kind"], r["tail"]))
        return out

    def deployed_variants(self, draws: int = 3000, seed: int = 0) -> list[ArchSpec]:
        """One spec per distinct deployed graph (block types fuse away, so each uses the first block choice).

        This is what latency depends on: the candidates a latency calibration chooses from. A per-layer space has
        billions: its uniform-width graphs, then ``draws`` seeded per-layer ones (each distinct).
        """
        block = self.blocks.choices[0].value
        seen: set[tuple] = set()
        out = []
        for width, depth, skip, where, kind, tail in itertools.product(
                self.width.values(), self.depth.values(), self.skip.choices, self.clip_where.choices,
                self.clip_kind.choices, self.tail.choices):
            blocks = [block if k == 3 else "conv" for k in [3] * (2 + depth) + list(tail)]
            spec = self._make(width, depth, blocks, self.expansion.choices[0], skip.value, where.value, kind.value,
                              tuple(tail))
            key = tuple((o.type, o.out_shape, o.in_channels, o.kernel) for o in deploy_ops(spec, 8, 8))
            if key not in seen:
                seen.add(key)
                out.append(spec)
        if self.width.per_layer:
            rng = np.random.default_rng(seed)
            for _ in range(draws):
                s = self.sample(rng)
                spec = s.replace(blocks=[block if slot.kernel == 3 else "conv" for slot in s.convs()],
                                 expansion=self.expansion.choices[0])
                key = tuple((o.type, o.out_shape, o.in_channels, o.kernel) for o in deploy_ops(spec, 8, 8))
                if key not in seen:
                    seen.add(key)
                    out.append(spec)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The space as plain data; a field added since a space was first written is left out at its default
        (``width.per_layer``), so a space's digest, which tables keep, is what it was."""
        d = self.model_dump(mode="json")
        if not d["width"].get("per_layer"):
            d["width"].pop("per_layer", None)
        return d

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "scale": self.scale,
            "width": self.width.values(),
            "widths_per_layer": self.width.per_layer,
            "depth": self.depth.values(),
            "blocks": [b.value for b in self.blocks.choices],
            "blocks_per_layer": self.blocks.per_layer,
            "expansion": list(self.expansion.choices),
            "skip": [s.value for s in self.skip.choices],
            "clip_where": [c.value for c in self.clip_where.choices],
            "clip_kind": [c.value for c in self.clip_kind.choices],
            "tail": [list(t) for t in self.tail.choices],
            "size": self.size(),
            "log10_size": round(math.log10(max(1, self.size())), 2),
            "deployed_size": self.deployed_size(),
        }


def _narrowest(values: list[int], skip: str) -> int:
    return min(v for v in values if skip != Skip.CARRY.value or v > CARRY_CHANNELS)


def _ramp(n: int, a: int, b: int, values: list[int]) -> list[int]:
    """``n`` widths from ``a`` to ``b``, each the allowed value nearest the straight line."""
    line = np.linspace(a, b, n) if n > 1 else np.array([b])
    return [min(values, key=lambda v: (abs(v - x), v)) for x in line]


_PROFILES = {  # (convs, widest, allowed widths, skip) -> per-layer widths
    "flat": lambda n, w, vals, skip: [w] * n,
    "up": lambda n, w, vals, skip: _ramp(n, _narrowest(vals, skip), w, vals),
    "down": lambda n, w, vals, skip: _ramp(n, w, _narrowest(vals, skip), vals),
    "waist": lambda n, w, vals, skip: [w if i in (0, n - 1) else _narrowest(vals, skip) for i in range(n)],
}


class _Walk:
    """The trial-like object of :meth:`SearchSpace.replay` and :meth:`SearchSpace.enumerate`: answers from
    ``prefix`` and records every parameter drawn (:attr:`drawn`); a parameter ``prefix`` lacks raises ``KeyError``
    when ``strict``, and otherwise takes its first option (the others noted as branches)."""

    def __init__(self, prefix: dict[str, Any], strict: bool = False):
        self.prefix, self.params, self.strict = prefix, dict(prefix), strict
        self.drawn: dict[str, Param] = {}
        self.branches: list[tuple[str, list[Any]]] = []

    def _answer(self, name: str, param: Param) -> Any:
        self.drawn[name] = param
        if name not in self.params:
            if self.strict:
                raise KeyError(name)
            options = param.options()
            self.params[name] = options[0]
            self.branches.append((name, options[1:]))
        return self.params[name]

    def suggest_int(self, name: str, low: int, high: int, step: int = 1) -> int:
        return self._answer(name, IntParam(low, high, step))

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._answer(name, ChoiceParam(tuple(choices)))


def space_search_path() -> list[Path]:
    """Folders searched for a space given by name: ``./search_spaces`` (a user's own) then the built-in ones."""
    return [Path.cwd() / "search_spaces", builtin_dir("search_spaces")]


def load_space(name_or_path: str | Path) -> SearchSpace:
    """Load and validate a space file, given as a path or as a name found on :func:`space_search_path`."""
    path = Path(name_or_path)
    if not path.exists() and path.suffix not in (".yaml", ".yml"):
        for folder in space_search_path():
            cand = folder / f"{name_or_path}.yaml"
            if cand.exists():
                path = cand
                break
    if not path.exists():
        raise SpaceError(f"space file not found: {name_or_path}")
    data = read_yaml_mapping(path, "space file", SpaceError)
    try:
        return SearchSpace.model_validate(data)
    except ValidationError as exc:
        raise SpaceError(describe_errors(exc, str(path), limit=1)) from None
