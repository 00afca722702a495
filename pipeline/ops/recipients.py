"""Report recipients per site (placeholder: being written)."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.config import Settings


def add_parser(commands: Any) -> None:
    """Adds the `report` command to `python -m pipeline.sites`."""


def command(settings: Settings, args: argparse.Namespace) -> int:
    return 2
