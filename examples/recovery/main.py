"""The recovery ladder on real services: `sopy-actors run examples/recovery/main.py`.

Starts two summary services on 127.0.0.1 (the primary answers 503 twice, serves one request and
dies; the backup serves two and dies), runs the digest SOP over four documents, and prints each
recovery step, the circuits, the pause for a person and how it is resolved. With
RECOVERY_EXAMPLE_LEAVE_WAITING=1 it leaves the SOP waiting and prints the `sopy-actors resolve`
command that finishes it (see README.md).
"""

from __future__ import annotations

import json
import os
import time

from services import SummaryService
from workflow import HandSummary, Summarise, SummaryWritten, digest_sop

from sopy_actors.agents import circuits
from sopy_actors.runtime.handle import SOPHandle

DOCUMENTS = [
    "Tides rise and fall twice a day because the moon and the sun pull on the oceans",
    "Spring tides come at new and full moon when the sun and the moon pull together",
    "Neap tides come at the quarter moons when their pulls are at right angles",
    "Tidal ranges differ along coasts because of the shape of the sea floor and bays",
]


def _settled(handle: SOPHandle, text: str, timeout: float = 120.0) -> str:
    """Wait until `text` is summarised or the SOP waits for a person; which one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = handle.status()
        if status.phase in ("waiting_for_human", "done", "failed"):
            return status.phase
        if text in handle.state_data()["summaries"]:
            return "summarised"
        time.sleep(0.1)
    raise TimeoutError(f"{text!r} was neither summarised nor handed to a person in {timeout} s")


def main() -> dict[str, object]:
    primary = SummaryService("primary", fail_first=2, die_after=3)
    backup = SummaryService("backup", die_after=2)
    try:
        handle = digest_sop(primary.url, backup.url, DOCUMENTS).start()
        print(f"digest {handle.sop_id}: primary {primary.url}, backup {backup.url}")
        for text in DOCUMENTS:
            receipt = handle.send(Summarise(text))
            print(f"--- sent {text[:40]!r}: {receipt.outcome}")
            settled = _settled(handle, text)
            print(f"    now {settled}, in {handle.status().procedure}")
            if settled != "summarised":
                break  # it takes no events while it waits for a person
    finally:
        primary.stop()
        backup.stop()
    print("--- circuits")
    for target, circuit in sorted(circuits().items()):
        print(f"{target}: {circuit.state}")
    print("--- recovery history")
    for entry in handle.history():
        if entry.outcome == "recovering":
            print(f"v{entry.version} {entry.from_procedure} -> {entry.to_procedure}: {entry.prompt}")
    status = handle.status()
    assert status.waiting is not None, f"expected the SOP to wait for a person, it is {status.phase}"
    print(f"--- waiting for a person: {status.waiting['reason']} (choices: {', '.join(status.waiting['choices'])})")
    failed = status.waiting["event"]["data"]["payload"]  # the document whose summary failed
    written = SummaryWritten(HandSummary(text=failed, summary="written by hand"))
    answer = json.dumps({"type": "workflow:SummaryWritten", "data": {"payload": written.payload.model_dump()}})
    print(f"resolve it with:\n  sopy-actors resolve {handle.sop_id} --action '{answer}' --note 'services down, written by hand'")
    if os.environ.get("RECOVERY_EXAMPLE_LEAVE_WAITING"):
        return {"sop_id": handle.sop_id, "phase": status.phase}
    handle.resolve(written, note="services down, written by hand", by="example")
    final = handle.result(timeout=60).model_dump(mode="json")
    print("--- recovery steps")
    for entry in handle.status().recovery:
        by = f" by {entry['by']}: {entry['note']}" if entry.get("by") else ""
        print(f"{entry['strategy']} #{entry['attempt']} ({entry['cause']['error']['type']}): {entry['outcome']}{by}")
    print(f"--- final state\n{json.dumps(final, indent=2)}")
    return final

