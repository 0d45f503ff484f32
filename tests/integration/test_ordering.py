"""Many SOPs, several senders: each sender's events are applied in the order it sent them."""

from __future__ import annotations

import pytest
import ray

from sopy_actors import SOPHandle
from tests.support import ledger

pytestmark = pytest.mark.usefixtures("runtime")

SOPS = 200
PER_SENDER = 7
SENDERS = ("driver", "sender-a", "sender-b")


def submit_all(handles: list[SOPHandle], sender: str) -> int:
    """Pipeline every event of this sender (no waiting in between), then wait for all."""
    futures = [
        handle.submit(ledger.EntryAdded(payload=ledger.EntryData(sender=sender, index=i)))
        for i in range(PER_SENDER)
        for handle in handles
    ]
    return sum(1 for future in futures if future.result(timeout=900))


@ray.remote(num_cpus=0)
class Sender:
    def run(self, handles: list[SOPHandle], sender: str) -> int:
        return submit_all(handles, sender)


def test_events_from_several_senders_keep_each_senders_order_across_200_sops() -> None:
    expected = PER_SENDER * len(SENDERS)
    handles = [ledger.make_sop(expected).start() for _ in range(SOPS)]
    remote = [Sender.remote().run.remote(handles, name) for name in SENDERS[1:]]
    assert submit_all(handles, SENDERS[0]) == SOPS * PER_SENDER
    assert ray.get(remote, timeout=900) == [SOPS * PER_SENDER] * 2
    for handle in handles:
        final = handle.result(timeout=300)
        assert final.entries == {name: list(range(PER_SENDER)) for name in SENDERS}
        assert handle.status().version == expected
