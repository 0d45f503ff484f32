"""Public helpers for testing workflows: the in-process engine (no Ray needed)."""

from sopy_actors.testing.local import HistoryEntry, LocalSOP

__all__ = ["HistoryEntry", "LocalSOP"]
