"""The library's own logger; the library never configures handlers (the CLI does)."""

from __future__ import annotations

import logging

__all__ = ["get_logger"]


def get_logger(name: str | None = None) -> logging.Logger:
    """Return ``nas`` or a child of it (``nas.export``...)."""
    return logging.getLogger("nas" if not name else f"nas.{name}")
