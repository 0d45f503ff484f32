"""Compressed JSON for states and checkpoints (zstd when `zstandard` is installed, else zlib);
and the spec's `CompressedState`, without pickle.

A blob is a 5-byte header then the body: `b"SOPJ"` and one codec byte (`r` raw JSON below the
size threshold, `z` zlib, `s` zstd), so a reader always knows how to open it and a process
without zstd fails with a clear error instead of garbage. Only JSON goes in: decompressing
runs no code and builds nothing but dicts, lists, strings, numbers, booleans and None.

Why never pickle (the spec's `CompressedState` pickles then gzips): unpickling runs
whatever the bytes tell it to (`__reduce__` names any callable with any arguments), so anyone
who can write a checkpoint, a Store row, a shared-state file or a message on the Ray network
gets code execution in every process that opens it — the hosts, the procedure actors, the CLI.
Pickle also binds the data to the exact classes and versions that wrote it, so an upgraded
workflow cannot read its own old checkpoints. JSON has neither problem and compresses as well.

Pure: no Ray, no I/O.
"""

from __future__ import annotations

import base64
import importlib
import json
import zlib
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, PrivateAttr, model_serializer, model_validator
from pydantic_core import PydanticSerializationError

from sopy_actors.errors import InputError, StateError

_zstd: Any
try:  # optional (pip install zstandard); imported by name: it ships no type stubs
    _zstd = importlib.import_module("zstandard")
except ImportError:  # pragma: no cover - depends on the environment
    _zstd = None

__all__ = [
    "DEFAULT_THRESHOLD",
    "MAX_DECOMPRESSED_BYTES",
    "Codec",
    "CompressedState",
    "available_codec",
    "codec_of",
    "compress_json",
    "decompress_json",
    "deflate",
    "inflate",
]

Codec = Literal["raw", "zlib", "zstd"]

DEFAULT_THRESHOLD = 1024
"""JSON shorter than this many bytes is stored raw: compressing it saves little and costs time."""

MAX_DECOMPRESSED_BYTES = 512 * 1024 * 1024
"""Refuse blobs that inflate past this (a compression bomb), unless the caller allows more."""

_MAGIC = b"SOPJ"
_CODE: dict[Codec, bytes] = {"raw": b"r", "zlib": b"z", "zstd": b"s"}
_CODEC = {code: name for name, code in _CODE.items()}
_ZLIB_LEVEL = 6
_ZSTD_LEVEL = 3


def available_codec() -> Codec:
    """The codec `compress_json` uses by default: "zstd" if `zstandard` imports, else "zlib"."""
    return "zstd" if _zstd is not None else "zlib"


def _dumps(value: Any) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as error:
        raise StateError(f"only JSON data can be compressed: {error}") from None


def compress_json(value: Any, *, threshold: int = DEFAULT_THRESHOLD, codec: Codec | None = None) -> bytes:
    """`value` as compact JSON, compressed when it is at least `threshold` bytes long.

    Args:
        value: JSON data (dicts with str keys, lists, str, int, float, bool, None).
        threshold: JSON bytes below which the body is stored raw.
        codec: force "zlib", "zstd" or "raw"; default `available_codec()`.

    Raises:
        StateError: `value` is not JSON data (e.g. it holds a datetime or a set).
        InputError: codec "zstd" was asked for but `zstandard` is not installed.
    """
    return deflate(_dumps(value), threshold=threshold, codec=codec)


def deflate(body: bytes, *, threshold: int = DEFAULT_THRESHOLD, codec: Codec | None = None) -> bytes:
    """JSON text already encoded (UTF-8) as a blob: `compress_json` for callers that hold the
    text (to hash it, say); same arguments and errors."""
    chosen: Codec = codec or available_codec()
    if len(body) < threshold and codec is None:
        chosen = "raw"
    if chosen == "zstd":
        if _zstd is None:
            raise InputError("codec 'zstd' needs the zstandard package (pip install zstandard)", fields=("codec",))
        body = _zstd.ZstdCompressor(level=_ZSTD_LEVEL).compress(body)
    elif chosen == "zlib":
        body = zlib.compress(body, _ZLIB_LEVEL)
    elif chosen != "raw":
        raise InputError(f"unknown codec {chosen!r}: use 'zstd', 'zlib' or 'raw'", fields=("codec",))
    return _MAGIC + _CODE[chosen] + body


def codec_of(blob: bytes) -> Codec:
    """The codec a blob's header names.

    Raises:
        InputError: the bytes are not a blob of `compress_json`.
    """
    if len(blob) < len(_MAGIC) + 1 or not blob.startswith(_MAGIC) or blob[4:5] not in _CODEC:
        raise InputError("not a sopy compressed JSON blob (bad header)", fields=("blob",))
    return _CODEC[blob[4:5]]


def decompress_json(blob: bytes, *, max_bytes: int = MAX_DECOMPRESSED_BYTES) -> Any:
    """The JSON value in a blob of `compress_json`.

    Raises:
        InputError: bad header, corrupt body, a zstd blob without `zstandard` installed, or a
            body that inflates past `max_bytes`.
    """
    body = inflate(blob, max_bytes=max_bytes)
    try:
        return json.loads(body)
    except ValueError as error:  # JSON or UTF-8 errors
        raise InputError(f"corrupt JSON blob: {type(error).__name__}: {error}", fields=("blob",)) from None


def inflate(blob: bytes, *, max_bytes: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """The JSON text (UTF-8 bytes) in a blob of `compress_json` or `deflate`, not parsed.

    Raises:
        InputError: as `decompress_json`, but the text is not checked to be JSON.
    """
    codec = codec_of(blob)
    body = blob[5:]
    try:
        if codec == "zlib":
            inflater = zlib.decompressobj()
            body = inflater.decompress(body, max_bytes)
            if inflater.unconsumed_tail:
                raise InputError(f"compressed JSON inflates past {max_bytes} bytes", fields=("blob",))
        elif codec == "zstd":
            if _zstd is None:
                raise InputError("this blob is zstd-compressed: install zstandard to read it", fields=("blob",))
            body = _zstd.ZstdDecompressor().decompress(body, max_output_size=max_bytes)
            if len(body) > max_bytes:
                raise InputError(f"compressed JSON inflates past {max_bytes} bytes", fields=("blob",))
        elif len(body) > max_bytes:
            raise InputError(f"JSON blob is over {max_bytes} bytes", fields=("blob",))
    except InputError:
        raise
    except Exception as error:  # zlib.error, zstd.ZstdError
        raise InputError(f"corrupt {codec} JSON blob: {type(error).__name__}: {error}", fields=("blob",)) from None
    return bytes(body)


_PACKED = "sop_compressed"


class CompressedState(BaseModel):
    """The spec's `CompressedState`: `compress()` packs the fields into one compressed blob and
    drops them; `decompress()` brings them back. JSON plus zstd/zlib, never pickle (see the
    module docstring for why the spec's pickle+gzip version is a security hole).

    While compressed, reading a field raises AttributeError (as the spec's `delattr` does), and
    the state's JSON form is `{"sop_compressed": "<base64 blob>"}`: a compressed state still
    crosses processes and checkpoints, and comes back compressed.

    Subclass it with your fields: `class Archive(CompressedState): rows: list[Row] = []`.
    """

    _compressed_data: bytes = PrivateAttr(default=b"")
    _is_compressed: bool = PrivateAttr(default=False)

    sop_threshold: ClassVar[int] = DEFAULT_THRESHOLD
    """Bytes of JSON below which `compress()` stores the fields raw (still dropped from the model)."""

    @property
    def is_compressed(self) -> bool:
        """Whether the fields are packed (read them after `decompress()`)."""
        return self._is_compressed

    @property
    def compressed_size(self) -> int:
        """Bytes of the packed blob (0 when not compressed)."""
        return len(self._compressed_data)

    def compress(self) -> None:
        """Pack every field into one compressed JSON blob and drop them from the model.

        Raises:
            StateError: a field has no JSON form; nothing changed.
        """
        if self._is_compressed:
            return
        try:
            data = self.model_dump(mode="json")
        except PydanticSerializationError as error:
            raise StateError(f"state {type(self).__name__} cannot be compressed as JSON: {error}") from None
        self._compressed_data = compress_json(data, threshold=self.sop_threshold)
        self._is_compressed = True
        for name in type(self).model_fields:
            self.__dict__.pop(name, None)

    def decompress(self) -> None:
        """Restore the fields packed by `compress()` (validated as the model's fields again)."""
        if not self._is_compressed:
            return
        restored = type(self).model_validate(decompress_json(self._compressed_data))
        self.__dict__.update(restored.__dict__)
        self._is_compressed = False
        self._compressed_data = b""

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: name the reason for a packed field.
        if name in type(self).model_fields and self.__pydantic_private__ and self._is_compressed:
            raise AttributeError(f"{type(self).__name__}.{name} is compressed: call decompress() first")
        return super().__getattr__(name)  # type: ignore[misc]

    @model_serializer(mode="wrap")
    def _serialize(self, handler: Any) -> Any:
        if self._is_compressed:
            return {_PACKED: base64.b64encode(self._compressed_data).decode("ascii")}
        return handler(self)

    @model_validator(mode="wrap")
    @classmethod
    def _validate(cls, data: Any, handler: Any) -> Any:
        if isinstance(data, dict) and set(data) == {_PACKED}:
            try:
                blob = base64.b64decode(str(data[_PACKED]), validate=True)
            except ValueError as error:
                raise ValueError(f"{_PACKED} is not base64: {error}") from None
            state = handler(decompress_json(blob))
            state.compress()
            return state
        return handler(data)
