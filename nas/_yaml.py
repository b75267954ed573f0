"""Reading a user's YAML file into a mapping, with one error line naming the file and what is wrong."""

from __future__ import annotations

from pathlib import Path

import yaml

from nas.errors import NasError

__all__ = ["read_yaml_mapping"]


def read_yaml_mapping(path: Path, noun: str, error: type[NasError], empty_ok: bool = False) -> dict:
    """The mapping in ``path`` (an existing path; ``noun`` names the kind of file in messages). Always
    ``yaml.safe_load``. An empty file is ``{}`` with ``empty_ok``, an error otherwise."""
    if path.is_dir():
        kind = noun if noun.endswith("file") else f"{noun} file"
        raise error(f"{path} is a folder, not a {kind}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise error(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file") from None
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: a {noun} must be a YAML mapping, got {type(data).__name__}")
    return data
