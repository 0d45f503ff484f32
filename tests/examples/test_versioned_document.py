"""The versioned document example on the session's cluster: a bad edit rolled back, a fork."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.examples.cli import ROOT, assert_readme_shows_the_graph, run_example

EXAMPLE = ROOT / "examples" / "versioned_document"
TARGET = "examples/versioned_document/workflow.py:document_sop"
SECTIONS = ["Summary", "Background", "Method", "Budget", "Risks"]


def section(out: str, title: str) -> list[str]:
    """The lines printed after `--- title` up to the next `---` line."""
    return out.split(f"--- {title}\n", 1)[1].split("\n---", 1)[0].splitlines()


def test_readme_graph_is_the_graph_the_cli_draws_and_the_workflow_checks() -> None:
    assert_readme_shows_the_graph(EXAMPLE, TARGET, "ok: 2 procedures, 4 transitions")


def test_the_bad_edit_is_rolled_back_and_a_fork_explores_another_draft(runtime: Any) -> None:
    out = run_example(runtime, "examples/versioned_document/main.py").stdout
    sop_id = re.search(r"^document (\w+): 'Soil moisture sensing pilot', 5 sections, 117 words$", out, re.M).group(1)  # type: ignore[union-attr]
    fork_id = f"{sop_id}-short"

    # The bad edit is caught by the review and the flagged SOP refuses further edits.
    edits = section(out, "edits")
    assert edits[2] == "Background: cut to the end: transitioned, now in EditFlagged, 1 sections, 22 words"
    assert edits[3].startswith("    review: section 'Background' is missing;") and "103 of 125 words removed" in edits[3]
    assert edits[4] == "paragraph 3: replace '14,000' with '15,500': rejected, now in EditFlagged"
    assert edits[5].startswith("    refused: The last edit failed review (")
    assert section(out, "looking for the last good version") == [
        "v4: bad (1 sections, 22 words)",
        "v3: bad (1 sections, 22 words)",
        "v2: good",
        "rolled back to v2 as v5; now in Editing, 125 words",
    ]

    # The rollback is an audited entry; the bad versions are still in the history.
    history = section(out, f"original: history of {sop_id}")
    reason = (
        "edit 3 (Background: cut to the end) failed review: section 'Background' is missing; section 'Method' is missing; "
        "section 'Budget' is missing; section 'Risks' is missing; 103 of 125 words removed"
    )
    assert f"v5 Rollback EditFlagged -> Editing (rolled_back): rolled back to version 2: {reason}" in history
    assert [line.split(" (")[0] for line in history] == [
        "v1 EditRequested Editing -> Editing",
        "v2 EditRequested Editing -> Editing",
        "v3 EditRequested Editing -> EditFlagged",
        "v4 EditRequested EditFlagged -> EditFlagged",
        "v5 Rollback EditFlagged -> Editing",
        "v6 EditRequested Editing -> Editing",
        "v7 EditRequested Editing -> Editing",
        "v8 Published Editing -> End",
    ]
    versions = section(out, f"original: versions of {sop_id}")
    assert [line.split(" (")[0] for line in versions][:6] == [
        "v0 Started -> Editing",
        "v1 EditRequested -> Editing",
        "v2 EditRequested -> Editing",
        "v3 EditRequested -> EditFlagged",
        "v4 EditRequested -> EditFlagged",
        "v5 Rollback -> Editing",
    ]

    # The fork starts from version 2 with its own history.
    assert f'--- fork {fork_id}: forked_from {{"sop_id": "{sop_id}", "version": 2}}\n' in out
    fork_versions = section(out, f"fork: versions of {fork_id}")
    assert re.fullmatch(rf"v0 Forked -> Editing \(snapshot, \d+ B\): forked from {sop_id} at version 2", fork_versions[0])
    assert [line.split(" (")[0] for line in section(out, f"fork: history of {fork_id}")] == [
        "v1 EditRequested Editing -> Editing",
        "v2 EditRequested Editing -> Editing",
        "v3 EditRequested Editing -> Editing",
        "v4 Published Editing -> End",
    ]

    # Both documents are whole; each carries its own edits on top of version 2.
    final = json.loads(out.split("--- final states\n", 1)[1].split("\n[progress]")[0].split("\nfinished in")[0])
    original, fork = final["original"], final["fork"]
    assert (original["sop_id"], fork["sop_id"], fork["forked_from"]) == (sop_id, fork_id, {"sop_id": sop_id, "version": 2})
    for document in (original, fork):
        assert [paragraph["heading"] for paragraph in document["paragraphs"]] == SECTIONS
        assert all(not entry["problems"] for entry in document["edit_log"])
    text = {paragraph["heading"]: paragraph["text"] for paragraph in original["paragraphs"]}
    assert text["Summary"].startswith("We propose a nine month pilot")
    assert text["Method"].endswith("per plot. A weather station on each farm records rainfall.")
    assert "15,500 euros" in text["Budget"]
    assert text["Risks"].endswith("We replace failed sensors within a week from a spares stock.")
    assert [entry["instruction"] for entry in original["edit_log"]] == [
        "replace 'six month' with 'nine month'",
        "append 'A weather station on each farm records rainfall.'",
        "replace '14,000' with '15,500'",
        "append 'We replace failed sensors within a week from a spares stock.'",
    ]
    draft = {paragraph["heading"]: paragraph["text"] for paragraph in fork["paragraphs"]}
    assert draft["Summary"].startswith("We propose a short pilot")
    assert draft["Background"] == (
        "Irrigation is scheduled by calendar on most farms in the region, so fields are often watered after rain."
    )
    assert draft["Method"].endswith("one half by the usual calendar.")
    assert "14,000 euros" in draft["Budget"] and draft["Risks"] == text["Risks"].split(" We replace")[0]
    assert [entry["number"] for entry in fork["edit_log"]] == [1, 2, 3, 4, 5]
    assert sum(len(p["text"].split()) for p in fork["paragraphs"]) == 92
