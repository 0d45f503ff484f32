"""Versions (time travel) without Ray: the delta encoding round-trips, the store keeps every
version compactly and prunes by its retention rule in whole keyframe chains."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sopy_actors.runtime.commits import Commit
from sopy_actors.runtime.records import SOPRecord
from sopy_actors.runtime.store import SQLiteStore
from sopy_actors.runtime.versions import KEYFRAME_EVERY, VersionRetention
from sopy_actors.state.deltas import apply_delta, json_delta
from tests.support.records import entry, record

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=4), json_values, max_size=5)


@given(json_objects, json_objects)
def test_a_delta_applied_to_the_old_value_gives_the_new_one_exactly(old: dict[str, Any], new: dict[str, Any]) -> None:
    restored = apply_delta(old, json_delta(old, new))
    assert restored == new
    assert json.dumps(restored, sort_keys=True) == json.dumps(new, sort_keys=True)  # True stays True, 1.0 stays 1.0


def test_a_delta_carries_only_what_changed_and_appends_as_tails() -> None:
    old = {"doc": {"title": "A", "paragraphs": ["p1", "p2"], "body": "Hello"}, "n": 1}
    new = {"doc": {"title": "A", "paragraphs": ["p1", "p2", "p3"], "body": "Hello world"}}
    delta = json_delta(old, new)
    assert delta == {"doc": ["~", {"paragraphs": ["+", ["p3"]], "body": ["+", " world"]}], "n": ["-"]}


def test_equal_parts_are_left_out_of_a_delta_whatever_objects_they_share() -> None:
    # The JSON decoder shares a key met twice in a document; a fresh copy shares nothing.
    shared = json.loads('{"procedure": {"options": {"n": 1, "t": 0.5}, "type": "P"}, "state": {"type": "S", "n": [1]}}')
    fresh = {"procedure": {"options": {"n": 1, "t": 0.5}, "type": "P"}, "state": {"type": "S", "n": [1, 2]}}
    assert json_delta(shared, fresh) == {"state": ["~", {"n": ["+", [2]]}]}
    assert json_delta({"a": {"x": 1}}, {"a": {"x": 1.0}}) == {"a": ["~", {"x": ["=", 1.0]}]}  # 1 and 1.0 differ in JSON


def _doc(version: int, text: str) -> SOPRecord:
    return record("doc", version).model_copy(update={"state": {"type": "m:Doc", "data": {"text": text}}})


def _commit_versions(store: SQLiteStore, count: int, *, retention: dict[str, Any] | None = None) -> list[SOPRecord]:
    records = [_doc(0, "x" * 2000).model_copy(update={"version_retention": retention})]
    store.create(records[0])
    for version in range(1, count + 1):
        text = records[-1].state["data"]["text"] + f" edit {version}."
        new = _doc(version, text).model_copy(update={"version_retention": retention})
        assert store.write([Commit(record=new, entry=entry("doc", version, f"e{version}")).rows(records[-1])]) == [None]
        records.append(new)
    return records


def test_every_version_reads_back_and_deltas_are_small(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    records = _commit_versions(store, 40)
    infos = store.versions("doc")
    assert [info.version for info in infos] == list(range(41))
    for rec in records:
        assert store.version("doc", rec.version) == {"procedure": rec.procedure, "state": rec.state}
    assert {info.kind for info in infos if info.version % KEYFRAME_EVERY == 0} == {"snapshot"}
    deltas = [info.size for info in infos if info.kind == "delta"]
    assert deltas and max(deltas) < 100  # a ~2 KB state, an edit of a few bytes
    assert infos[0].event == "Started" and infos[1].event == "DraftWritten"
    assert store.version("doc", 41) is None and store.version("other", 0) is None


def test_keep_last_n_prunes_whole_chains_and_keeps_at_least_n(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    _commit_versions(store, 50, retention={"last": 5})
    kept = [info.version for info in store.versions("doc")]
    assert kept[-1] == 50 and len(kept) >= 5
    assert kept[0] == 32  # the chain of version 46 (the fifth newest) starts at snapshot 32
    assert store.version("doc", 10) is None
    assert store.version("doc", kept[0]) is not None


def test_keep_newer_than_prunes_old_chains(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    records = _commit_versions(store, 20)
    old = time.time() - 3600  # rewrite the times as an hour old: then commit past a keyframe
    store._db.execute("UPDATE versions SET at = ?", (old,))
    retention = {"newer_than": 60.0}
    previous = records[-1]
    for version in range(21, 33):
        new = _doc(version, previous.state["data"]["text"] + "!").model_copy(update={"version_retention": retention})
        store.write([Commit(record=new, entry=entry("doc", version, f"e{version}")).rows(previous)])
        previous = new
    assert [info.version for info in store.versions("doc")] == list(range(16, 33))  # 21 is in chain 16
    assert store.version("doc", 5) is None


def test_a_retention_takes_one_rule() -> None:
    assert VersionRetention().keeps_all
    with pytest.raises(ValueError, match="not both"):
        VersionRetention(last=3, newer_than=10.0)
    with pytest.raises(ValueError):
        VersionRetention(last=0)
