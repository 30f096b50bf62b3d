"""JSON workflows (`mediaidx run`): validate every step first, then run them through MediaIndexer."""

from .runner import run_workflow
from .spec import ACTIONS, parse

__all__ = ["ACTIONS", "parse", "run_workflow"]
