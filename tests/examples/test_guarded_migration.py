"""The guarded migration example runs through `sopy-actors run` on the session's cluster."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.examples.cli import run_example

FILES = ["a.txt", "b.txt", "c.txt"]


def test_guarded_migration_refuses_off_procedure_calls_and_rolls_back_a_real_failure(runtime: Any) -> None:
    result = run_example(runtime, "examples/guarded_migration/main.py")
    out = result.stdout
    summary = json.loads(out.split("--- summary ", 1)[1].splitlines()[0])
    work = Path(re.search(r"--- working under (\S+)", out).group(1))  # type: ignore[union-attr]

    clean = summary["clean"]
    assert clean["procedure"] == "End" and clean["failed"] == []
    assert clean["rejected"] == ["migrate", "delete_files"]
    assert clean["files"] == {"source": [], "backup": FILES, "dest": FILES}
    assert "Do not migrate " in out and "config.ini has no backup and was not migrated" in out
    # The refused deletion never ran: the file outside the backup is still there.
    assert (work / "clean" / "config.ini").exists()
    for name in FILES:
        assert (work / "clean" / "dest" / name).read_text() == (work / "clean" / "backup" / name).read_text()
    assert "v3: MigrationRequested BackUpCopy -> BackUpCopy (rejected)" in out
    assert "SourceCleared ClearSource -> End (ended)" in out

    failing = summary["failing"]
    assert failing["procedure"] == "End" and failing["failed"] == ["migrate"]
    assert failing["migrated"] == [] and failing["failure"].endswith("b.txt: the copy into the destination failed")
    assert failing["files"]["source"] == FILES
    assert not (work / "failing" / "dest" / "a.txt").exists()  # the migrated copy was dropped
    assert "MigrationFailed Migrate -> RollBack (transitioned)" in out
    assert "FileRestored RollBack -> End (ended)" in out
    assert re.search(r"--- tokens: [1-9]\d* in, [1-9]\d* out", out)
