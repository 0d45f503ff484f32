"""Compressed JSON and the spec's CompressedState: round trips, the header, no pickle."""

from __future__ import annotations

import base64
import pickle
import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field

from sopy_actors.core.codec import decode_state, encode_state
from sopy_actors.errors import InputError, StateError
from sopy_actors.state.compression import (
    CompressedState,
    available_codec,
    codec_of,
    compress_json,
    decompress_json,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@given(json_values, st.sampled_from([0, 64, 10**6]))
def test_any_json_value_round_trips(value: Any, threshold: int) -> None:
    assert decompress_json(compress_json(value, threshold=threshold)) == value


def test_small_values_are_stored_raw_and_large_ones_compressed_by_the_available_codec() -> None:
    assert codec_of(compress_json({"a": 1})) == "raw"
    big = {"rows": [{"sku": f"SKU-{i % 50}", "status": "reserved"} for i in range(2000)]}
    blob = compress_json(big)
    assert codec_of(blob) == available_codec()
    assert len(blob) * 10 < len(compress_json(big, codec="raw"))


def test_zlib_is_read_back_whatever_the_default_codec_is() -> None:
    value = {"text": "x" * 5000}
    assert decompress_json(compress_json(value, codec="zlib")) == value


def test_zstd_round_trips_when_installed() -> None:
    pytest.importorskip("zstandard")
    value = {"text": "y" * 5000}
    blob = compress_json(value, codec="zstd")
    assert codec_of(blob) == "zstd" and decompress_json(blob) == value


def test_non_json_data_is_refused_with_a_state_error() -> None:
    with pytest.raises(StateError, match="only JSON data"):
        compress_json({"when": object()})


def test_a_pickle_is_not_accepted_as_a_blob() -> None:
    with pytest.raises(InputError, match="bad header"):
        decompress_json(pickle.dumps({"a": 1}))
    with pytest.raises(InputError, match="bad header"):
        decompress_json(zlib.compress(pickle.dumps({"a": 1})))


def test_a_corrupt_body_and_a_compression_bomb_are_input_errors() -> None:
    blob = compress_json({"text": "z" * 100_000})
    with pytest.raises(InputError, match="corrupt"):
        decompress_json(blob[:5] + b"garbage" + blob[12:])
    with pytest.raises(InputError, match="inflates past 1000 bytes"):
        decompress_json(compress_json({"text": "z" * 100_000}, codec="zlib"), max_bytes=1000)


class Archive(CompressedState):
    owner: str = "ops"
    rows: list[dict[str, Any]] = Field(default_factory=list)


def _archive() -> Archive:
    return Archive(rows=[{"id": i, "sku": f"SKU-{i % 7}", "qty": i % 5} for i in range(300)])


def test_compress_drops_the_fields_and_decompress_brings_them_back() -> None:
    state = _archive()
    state.compress()
    assert state.is_compressed and 0 < state.compressed_size < len(_archive().model_dump_json())
    with pytest.raises(AttributeError, match="compressed: call decompress"):
        _ = state.rows
    state.compress()  # twice is once
    state.decompress()
    assert not state.is_compressed and state == _archive()
    state.decompress()
    assert state == _archive()


def test_a_compressed_state_crosses_processes_as_json_and_stays_compressed() -> None:
    state = _archive()
    state.compress()
    wire = encode_state(state)
    assert set(wire["data"]) == {"sop_compressed"}
    base64.b64decode(wire["data"]["sop_compressed"], validate=True)
    back = decode_state(wire)
    assert isinstance(back, Archive) and back.is_compressed
    back.decompress()
    assert back == _archive()


def test_an_uncompressed_state_is_an_ordinary_model() -> None:
    assert encode_state(_archive())["data"]["owner"] == "ops"
    assert Archive.model_validate(_archive().model_dump()) == _archive()
