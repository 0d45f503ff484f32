"""Edit, roll back, fork: `sopy-actors run examples/versioned_document/main.py`.

The editor agent edits the proposal one paragraph per event; the third edit cuts most of it and
fails review. main() walks the SOP's versions back to the last good one, rolls back to it (a new,
audited version), goes on editing, and forks that good version to explore a shorter draft. It
prints the versions, both histories, the fork's origin and both published documents.
"""

from __future__ import annotations

import json
from typing import Any

from workflow import Document, Edit, EditRequested, Published, document_sop, is_good

from sopy_actors.runtime.handle import SOPHandle

EDITS = [
    Edit(paragraph=0, instruction="replace 'six month' with 'nine month'"),
    Edit(paragraph=2, instruction="append 'A weather station on each farm records rainfall.'"),
    Edit(paragraph=1, instruction="cut to the end"),  # the bad edit: four of five sections gone
    Edit(paragraph=3, instruction="replace '14,000' with '15,500'"),  # refused while flagged
]
EDITS_AFTER_ROLLBACK = [
    Edit(paragraph=3, instruction="replace '14,000' with '15,500'"),
    Edit(paragraph=4, instruction="append 'We replace failed sensors within a week from a spares stock.'"),
]
FORK_EDITS = [  # the alternative: a short draft for the first funding round
    Edit(paragraph=1, instruction="shorten to 18 words"),
    Edit(paragraph=2, instruction="shorten to 21 words"),
    Edit(paragraph=0, instruction="replace 'nine month pilot' with 'short pilot'"),
]


def edit(handle: SOPHandle, edits: list[Edit]) -> None:
    """Send each edit and print what became of it."""
    for request in edits:
        paragraphs = handle.state().paragraphs
        heading = (
            paragraphs[request.paragraph].heading if request.paragraph < len(paragraphs) else f"paragraph {request.paragraph}"
        )
        receipt = handle.send(EditRequested(request))
        document: Document = handle.state()
        line = f"{heading}: {request.instruction}: {receipt.outcome.value}, now in {receipt.procedure}"
        if receipt.rejected:
            print(f"{line}\n    refused: {receipt.prompt}")
            continue
        print(f"{line}, {len(document.paragraphs)} sections, {document.words()} words")
        if document.edit_log[-1].problems:
            print(f"    review: {'; '.join(document.edit_log[-1].problems)}")


def show_history(title: str, handle: SOPHandle) -> None:
    print(f"--- {title}: versions of {handle.sop_id}")
    for info in handle.versions():
        print(f"v{info.version} {info.event} -> {info.procedure} ({info.kind}, {info.size} B): {info.description}")
    print(f"--- {title}: history of {handle.sop_id}")
    for entry in handle.history():
        note = f": {entry.prompt}" if entry.prompt else ""
        print(f"v{entry.version} {entry.event_type} {entry.from_procedure} -> {entry.to_procedure} ({entry.outcome}){note}")


def main() -> dict[str, Any]:
    """Edit the proposal, roll back the bad edit, fork a shorter draft; print both."""
    handle = document_sop().start()
    start: Document = handle.state()
    print(f"document {handle.sop_id}: {start.title!r}, {len(start.paragraphs)} sections, {start.words()} words")
    print("--- edits")
    edit(handle, EDITS)

    print("--- looking for the last good version")
    versions = [info.version for info in handle.versions()]
    good = None
    for version in reversed(versions):
        document: Document = handle.state(version=version)
        verdict = "good" if is_good(document) else f"bad ({len(document.paragraphs)} sections, {document.words()} words)"
        print(f"v{version}: {verdict}")
        if verdict == "good":
            good = version
            break
    if good is None:
        raise RuntimeError(f"no good version of {handle.sop_id} among {versions}")
    bad = handle.state().edit_log[-1]
    reason = f"edit {bad.number} ({bad.heading}: {bad.instruction}) failed review: {'; '.join(bad.problems)}"
    new_version = handle.rollback(good, reason=reason)
    print(f"rolled back to v{good} as v{new_version}; now in {handle.status().procedure}, {handle.state().words()} words")

    print("--- edits after the rollback")
    edit(handle, EDITS_AFTER_ROLLBACK)

    fork = handle.fork(good, sop_id=f"{handle.sop_id}-short")
    print(f"--- fork {fork.sop_id}: forked_from {json.dumps(fork.status().forked_from, sort_keys=True)}")
    edit(fork, FORK_EDITS)

    handle.send(Published("the example"))
    fork.send(Published("the example"))
    final: Document = handle.result(timeout=60)
    draft: Document = fork.result(timeout=60)
    show_history("original", handle)
    show_history("fork", fork)
    print(f"--- original, published\n{final.render()}")
    print(f"--- fork, published\n{draft.render()}")
    result = {
        "original": {"sop_id": handle.sop_id, **final.model_dump(mode="json")},
        "fork": {"sop_id": fork.sop_id, "forked_from": fork.status().forked_from, **draft.model_dump(mode="json")},
    }
    print(f"--- final states\n{json.dumps(result, indent=2)}")
    return result


if __name__ == "__main__":
    import sopy_actors

    sopy_actors.init()
    main()
