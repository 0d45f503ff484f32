"""Shared test settings and the one local Ray cluster of the session (started on first use)."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

import sopy_actors
import sopy_actors.errors
import sopy_actors.runtime

# Wall-clock deadlines flake on a loaded 2-core machine; the property is what is tested.
settings.register_profile("sopy", deadline=None, max_examples=100)
settings.load_profile("sopy")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests that read the machine's memory first: by the end of a run the session's
    cluster holds a couple of hundred actor processes (~70 MB each), and a test that sizes a
    load from the free memory has no room left then."""
    items.sort(key=lambda item: item.get_closest_marker("memory_readings") is None)


@pytest.fixture(scope="session")
def ray_tmpdir() -> Iterator[str]:
    # Short path: Ray's socket paths must stay under the Unix limit.
    directory = tempfile.mkdtemp(prefix="sopy-", dir="/tmp")
    os.environ["RAY_TMPDIR"] = directory
    yield directory


@pytest.fixture(scope="session")
def runtime(ray_tmpdir: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sopy_actors.runtime.RuntimeInfo]:
    try:
        info = sopy_actors.init(
            namespace=f"test-{uuid.uuid4().hex[:8]}",
            store_dir=tmp_path_factory.mktemp("store"),
            num_cpus=2,
            log_to_driver=False,
            metrics_port=0,  # other clusters on this machine may hold the default port
            # Ship the test workflows as a user ships theirs: detached hosts may have been
            # created by another job (a CLI run), whose workers cannot import `tests`.
            runtime_env={"py_modules": [str(Path(__file__).resolve().parent)], "excludes": ["__pycache__"]},
        )
    except sopy_actors.errors.RuntimeUnavailable as error:
        # Only the start of Ray itself is excused (see init(): Ray 2.60's raylet gives its
        # dashboard agent 15 s, which a starved machine can miss five times in a row).
        pytest.skip(f"a local Ray node could not start on this machine: {error}")
    yield info
    sopy_actors.shutdown()
