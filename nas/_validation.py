"""What the validated files (search spaces, study configs) share: a strict frozen pydantic model, and one line
that names the file, the field and the value for what pydantic found wrong."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["Strict", "describe_errors", "one_line"]


class Strict(BaseModel):
    """A frozen model that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def one_line(text: str) -> str:
    """``text`` on one line: line breaks and other control characters (a field name in a user's file may hold
    them) written as escapes."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def describe_errors(exc: ValidationError, where: str, limit: int = 3) -> str:
    """``where: what is wrong`` for the first ``limit`` errors of ``exc`` (and how many more there are)."""
    out = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        if err["type"] == "extra_forbidden":
            out.append(f"unknown field '{loc}'")
        elif err["type"] == "missing":
            out.append(f"missing field '{loc}'")
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            out.append(f"field '{loc}': {err['msg'].removeprefix('Value error, ')}{shown}")
    more = f" (and {exc.error_count() - limit} more)" if exc.error_count() > limit else ""
    return one_line(f"{where}: " + "; ".join(out) + more)
