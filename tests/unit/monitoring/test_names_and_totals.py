"""Metric names follow the house rules; totals apply each batch once and survive a reload."""

from __future__ import annotations

import re
from pathlib import Path

from sopy_actors.monitoring import FAMILIES
from sopy_actors.monitoring.totals import Batch, MonitorDB
from sopy_actors.telemetry.names import EVENTS, HANDLER_DURATION

README = Path(__file__).resolve().parents[3] / "README.md"


def test_family_names_follow_the_style() -> None:
    for family in FAMILIES:
        assert re.fullmatch(r"sopy_[a-z_]+", family.name), family.name
        assert family.name.endswith("_total") == (family.kind == "counter"), family.name
        if family.kind == "histogram":
            assert family.name.endswith("_seconds") and list(family.buckets) == sorted(family.buckets)
        assert not {"sop_id", "id", "node_id", "instance"} & set(family.labels)
    assert len({f.name for f in FAMILIES}) == len(FAMILIES)


def test_readme_table_lists_every_family_with_its_type_and_labels() -> None:
    rows = re.findall(r"^\| `(sopy_[a-z_]+)` \| (\w+) \| ([^|]*) \|", README.read_text(), flags=re.M)
    table = {name: (kind, tuple(re.findall(r"`(\w+)`", labels))) for name, kind, labels in rows}
    assert table == {f.name: (f.kind, f.labels) for f in FAMILIES}


def _batch(seq: int, reporter: str = "r1") -> Batch:
    return Batch.from_wire(
        {
            "reporter": reporter,
            "seq": seq,
            "kind": "host",
            "counters": [
                [EVENTS.name, ["S", "P", "E", "rejected"], 2],
                ["sopy_unknown_total", [], 1],
                [EVENTS.name, ["too", "few"], 1],
            ],
            "histograms": [[HANDLER_DURATION.name, ["P", "E"], [1] + [0] * len(HANDLER_DURATION.buckets), 0.001, 1]],
            "samples": [0.001],
        }
    )


def test_a_batch_is_applied_once_and_totals_reload(tmp_path: Path) -> None:
    db = MonitorDB(tmp_path / "monitor.sqlite3")
    totals = db.load()
    batch = _batch(1)
    assert batch.skipped == 2
    changed = totals.apply(batch)
    assert changed is not None
    db.save(totals, changed, "r1")
    assert totals.apply(_batch(1)) is None  # a resend after a lost acknowledgement
    changed = totals.apply(_batch(2))
    assert changed is not None
    db.save(totals, changed, "r1")
    db.close()
    reloaded = MonitorDB(tmp_path / "monitor.sqlite3").load()
    assert reloaded.counters == {(EVENTS.name, ("S", "P", "E", "rejected")): 4.0}
    assert reloaded.histograms[(HANDLER_DURATION.name, ("P", "E"))][2] == 2
    assert reloaded.seqs == {"r1": 2}
    assert reloaded.apply(_batch(2)) is None
