"""The CPU benchmark's process kinds, by process title (benchmarks/cpu.py)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from benchmarks.cpu import _kind


class _Titled:
    """A process as `_kind` reads it: its command line."""

    def __init__(self, *command: str) -> None:
        self._command = list(command)

    def cmdline(self) -> list[str]:
        return self._command

    def name(self) -> str:
        return "unnamed"


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        (("ray::SOPHostActor.send_batch",), "host"),
        (("ray::ProcedureActor",), "procedure"),
        (("ray::BareBatchWorker.handle_batch",), "procedure"),
        (("ray::DashboardAgent",), "ray"),
        (("ray::RuntimeEnvAgent",), "ray"),
        (("/venv/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet", "--node"), "ray"),
        (("ray::IDLE",), "other"),
        (("ray::_SharedSpace",), "other"),
        (("/venv/bin/py-spy", "record"), None),
    ],
)
def test_a_process_is_counted_by_its_title(command: tuple[str, ...], kind: str | None) -> None:
    assert _kind(cast(Any, _Titled(*command))) == kind
