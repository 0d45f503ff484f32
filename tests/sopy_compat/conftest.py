"""The two engines every SOPy compatibility test runs on: in process, and the actor runtime.

A SOPy program runs in process until `sopy_actors.init()` has run in the process; the
`in_process` engine takes the session's runtime away for the test (and gives it back after),
the `actors` engine makes sure the session's runtime is up.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(params=["in_process", "actors"])
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Where `with sop:` runs in this test: "in_process" or "actors"."""
    if request.param == "actors":
        request.getfixturevalue("runtime")
        yield "actors"
        return
    if "sopy_actors.runtime.engine" not in sys.modules:
        yield "in_process"
        return
    from sopy_actors.errors import RuntimeUnavailable
    from sopy_actors.runtime.engine import current_engine, install, uninstall

    try:
        saved = current_engine()
    except RuntimeUnavailable:
        yield "in_process"
        return
    uninstall()
    try:
        yield "in_process"
    finally:
        install(saved.config, job_runtime_env=saved.job_runtime_env())
