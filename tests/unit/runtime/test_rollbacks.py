"""Which rollbacks are allowed and the commit one makes (no Ray)."""

from __future__ import annotations

import pytest

from sopy_actors.errors import InputError
from sopy_actors.runtime.rollbacks import check_rollback, rollback_commit, rollback_event_id
from tests.support.records import record


def test_a_rollback_goes_to_a_version_the_running_sop_had() -> None:
    running = record("s1", 4)
    check_rollback(running, 0)
    check_rollback(running, 4)
    for version in (5, -1, True, "2"):
        with pytest.raises(InputError, match=r"does not exist: give one of 0\.\.4") as refused:
            check_rollback(running, version)
        assert refused.value.fields == ("version",)
    with pytest.raises(InputError, match="cannot roll back an SOP that is done; fork version 2 instead"):
        check_rollback(record("s1", 4, phase="done"), 2)


def test_a_rollback_is_a_new_version_with_the_old_content_and_its_own_log_entry() -> None:
    current = record("s1", 4, retries=2, last_prompt="try again")
    old = {
        "procedure": {"type": "m:Review", "name": "Review", "options": {"timeout": 60}},
        "state": {"type": "m:Doc", "data": {"text": "v1"}},
    }
    commit = rollback_commit(current, old, version=1, reason="bad edit", event_id=rollback_event_id(current, None), now=1000.0)
    rolled, entry = commit.record, commit.entry
    assert (rolled.version, rolled.procedure, rolled.state) == (5, old["procedure"], old["state"])
    assert (rolled.retries, rolled.last_prompt, rolled.entered_version) == (0, None, 5)
    assert entry is not None and entry.event_id == "s1~rollback~5" and entry.version == 5
    assert (entry.event_type, entry.outcome, entry.prompt) == ("Rollback", "rolled_back", "rolled back to version 1: bad edit")
    assert (entry.from_procedure, entry.to_procedure) == ("Drafting", "Review")
    (timer,) = commit.timers  # the procedure entered anew: its timeout armed from now
    assert timer.due == 1060.0 and timer.sop_id == "s1"
    assert rollback_event_id(current, "op-7") == "s1~rollback~op-7"  # a caller's id, kept across retries


def test_a_rollback_to_a_pruned_version_is_refused_naming_the_version() -> None:
    with pytest.raises(InputError, match="version 1 was pruned by the SOP's version retention") as refused:
        rollback_commit(record("s1", 4), None, version=1, reason="r", event_id="s1~rollback~5", now=0.0)
    assert refused.value.fields == ("version",)
