"""Options every command spells the same way (shared by app.py and the command modules it registers)."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
DryOpt = Annotated[bool, typer.Option("--dry-run", "-n", help="Show exactly what would change; change nothing.")]
