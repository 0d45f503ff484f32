"""Lazy sections without Ray: stubs, what is stored and when, digests, loaders, bad input."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from sopy_actors.core.codec import decode_state, encode_state
from sopy_actors.errors import InputError, StateError
from sopy_actors.state.compression import deflate
from sopy_actors.state.lazy import (
    STUB_KEY,
    Lazy,
    LazyState,
    collect_sections,
    lazy_loader,
    section_digest,
    store_sections,
    use_blob_store,
)


class Row(BaseModel):
    sku: str
    count: int


class Inventory(BaseModel):
    name: str = "depot"
    rows: Lazy[list[Row]] = Lazy([])


class MemoryBlobs:
    """A blob store in a dict that counts its calls."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.gets = 0
        self.puts = 0

    def get(self, digest: str) -> bytes | None:
        self.gets += 1
        return self.blobs.get(digest)

    def put(self, blobs: dict[str, bytes]) -> None:
        self.puts += 1
        self.blobs.update(blobs)


@pytest.fixture
def blobs() -> Iterator[MemoryBlobs]:
    store = MemoryBlobs()
    previous = use_blob_store(store)  # the session's runtime may have installed its own
    yield store
    use_blob_store(previous)


@pytest.fixture
def no_blob_store() -> Iterator[None]:
    previous = use_blob_store(None)
    yield
    use_blob_store(previous)


def _checkpoint(state: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The state as the runtime checkpoints it, and the blobs it stores first."""
    with collect_sections() as sections:
        data = encode_state(state)
    store_sections(sections)
    return data, sections


def _rows(n: int) -> list[Row]:
    return [Row(sku=f"sku-{i}", count=i) for i in range(n)]


def test_a_checkpoint_carries_a_stub_and_the_section_is_stored_once(blobs: MemoryBlobs) -> None:
    data, stored = _checkpoint(Inventory(rows=_rows(1000)))
    stub = data["data"]["rows"]
    assert set(stub) == {STUB_KEY, "bytes"} and stub["bytes"] > 20_000
    assert list(stored) == [stub[STUB_KEY]] and blobs.puts == 1
    assert len(str(data)) < 300


def test_an_untouched_section_is_neither_fetched_nor_stored_again(blobs: MemoryBlobs) -> None:
    data, _ = _checkpoint(Inventory(rows=_rows(100)))
    state = decode_state(data)
    state.name = "renamed"
    again, stored = _checkpoint(state)
    assert stored == {} and blobs.gets == 0
    assert again["data"]["rows"] == data["data"]["rows"]
    assert not state.rows.loaded


def test_a_section_read_but_not_changed_is_not_stored_again(blobs: MemoryBlobs) -> None:
    data, _ = _checkpoint(Inventory(rows=_rows(100)))
    state = decode_state(data)
    assert state.rows.value[7] == Row(sku="sku-7", count=7)
    again, stored = _checkpoint(state)
    assert stored == {} and blobs.gets == 1
    assert again["data"]["rows"] == data["data"]["rows"]


def test_a_changed_section_is_stored_under_its_new_digest(blobs: MemoryBlobs) -> None:
    data, _ = _checkpoint(Inventory(rows=_rows(10)))
    state = decode_state(data)
    state.rows.value.append(Row(sku="new", count=1))
    again, stored = _checkpoint(state)
    assert list(stored) == [again["data"]["rows"][STUB_KEY]] != [data["data"]["rows"][STUB_KEY]]
    assert decode_state(again).rows.value[-1].sku == "new"


@pytest.mark.usefixtures("no_blob_store")
def test_outside_the_runtime_a_loaded_section_dumps_inline_and_validates_back() -> None:
    state = Inventory(rows=_rows(3))
    dumped = state.model_dump(mode="json")
    assert dumped["rows"] == [{"sku": f"sku-{i}", "count": i} for i in range(3)]
    assert Inventory.model_validate(dumped) == state
    assert decode_state(encode_state(state)).rows.value == _rows(3)


def test_copies_are_independent_and_equal_until_changed(blobs: MemoryBlobs) -> None:
    state = decode_state(_checkpoint(Inventory(rows=_rows(5)))[0])
    twin = copy.deepcopy(state)
    assert twin == state and blobs.gets == 0  # compared by digest while neither is loaded
    twin.rows.value.append(Row(sku="x", count=0))
    assert twin != state and len(state.rows.value) == 5


def test_a_value_that_does_not_fit_the_type_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="rows"):
        Inventory.model_validate({"rows": [{"sku": "a"}]})


@pytest.mark.parametrize(
    "stub",
    [{STUB_KEY: "not-hex"}, {STUB_KEY: "a" * 64, "bytes": -1}, {STUB_KEY: "a" * 64, "extra": 1}],
)
def test_a_malformed_stub_is_refused(stub: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="lazy section"):
        Inventory.model_validate({"rows": stub})


def test_a_missing_blob_and_a_tampered_blob_are_clear_errors(blobs: MemoryBlobs) -> None:
    data, stored = _checkpoint(Inventory(rows=_rows(3)))
    digest = next(iter(stored))
    blobs.blobs[digest] = deflate(b'[{"sku":"evil","count":1}]')
    with pytest.raises(StateError, match="does not match its digest"):
        _ = decode_state(data).rows.value
    del blobs.blobs[digest]
    with pytest.raises(StateError, match="not in the Store"):
        _ = decode_state(data).rows.value


def test_stored_data_that_no_longer_fits_the_type_is_an_input_error(blobs: MemoryBlobs) -> None:
    text = b'[{"sku":"a"}]'
    blobs.blobs[section_digest(text)] = deflate(text)
    state = Inventory.model_validate({"rows": {STUB_KEY: section_digest(text), "bytes": len(text)}})
    with pytest.raises(InputError, match="does not validate"):
        _ = state.rows.value


@pytest.mark.usefixtures("no_blob_store")
def test_without_a_blob_store_reading_a_stub_says_so() -> None:
    state = Inventory.model_validate({"rows": {STUB_KEY: "b" * 64, "bytes": 10}})
    with pytest.raises(StateError, match="no blob store"):
        _ = state.rows.value
    with collect_sections() as sections:
        encode_state(Inventory(rows=_rows(2)))
    with pytest.raises(StateError, match="no blob store"):
        store_sections(sections)


# -- loaders (the spec's register_loader) --------------------------------------------------------

LOADS: list[str] = []


@lazy_loader("catalogue")
def load_catalogue() -> list[dict[str, Any]]:
    LOADS.append("catalogue")
    return [{"sku": "a", "count": 1}, {"sku": "b", "count": 2}]


def load_notes() -> list[str]:
    LOADS.append("notes")
    return ["first", "second"]


def load_broken() -> list[str]:
    raise ConnectionError("warehouse API down")


class Report(LazyState):
    rows: Lazy[list[Row]] = Lazy([])
    notes: list[str] = Field(default_factory=list)


def test_a_named_loader_fills_its_section_on_first_read_only() -> None:
    LOADS.clear()
    report = Report()
    report.register_loader("rows", "catalogue")
    assert LOADS == []
    assert [row.sku for row in report.rows.value] == ["a", "b"]
    assert report.rows.value[1].count == 2 and LOADS == ["catalogue"] and report.lazy_loaders == {}


def test_a_function_loader_is_kept_by_reference_and_runs_after_crossing_processes() -> None:
    LOADS.clear()
    report = Report()
    report.register_loader("notes", load_notes)
    data = encode_state(report)
    assert data["data"]["lazy_loaders"] == {"notes": f"{__name__}:load_notes"}
    assert LOADS == []
    assert decode_state(data).notes == ["first", "second"] and LOADS == ["notes"]


def test_a_loader_that_raises_is_a_state_error_and_changes_nothing() -> None:
    report = Report(notes=["kept"])
    report.register_loader("notes", load_broken)
    with pytest.raises(StateError, match=r"loader .*load_broken.* raised ConnectionError: warehouse API down"):
        _ = report.notes
    assert report.lazy_loaders == {"notes": f"{__name__}:load_broken"}
    assert report.__dict__["notes"] == ["kept"]


def test_unknown_loaders_lambdas_and_sections_are_refused() -> None:
    report = Report()
    report.register_loader("rows", "nobody-registered-this")
    with pytest.raises(StateError, match="no lazy loader 'nobody-registered-this'"):
        _ = report.rows
    with pytest.raises(InputError, match="lambda"):
        Report().register_loader("notes", lambda: ["x"])
    with pytest.raises(InputError, match="no section 'missing'"):
        Report().register_loader("missing", "catalogue")
    with pytest.raises(InputError, match="already registered"):
        lazy_loader("catalogue")(load_notes)
    with pytest.raises(InputError, match="name"):
        lazy_loader("a:b")


class Sourced(LazyState):
    source: str = "north"
    notes: list[str] = Field(default_factory=list)


def load_from_source(state: Sourced) -> list[str]:
    return [f"from {state.source}"]


def test_a_loader_that_takes_the_state_reads_where_to_load_from() -> None:
    sourced = Sourced(source="south")
    sourced.register_loader("notes", load_from_source)
    assert sourced.notes == ["from south"]
