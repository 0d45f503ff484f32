"""Lazy sections: large parts of a state kept apart from its checkpoint and loaded on first use.

`Lazy[T]` marks a field of a pydantic state (`rows: Lazy[list[Row]] = Lazy([])`). Read and
write it through `.value`. Where the runtime checkpoints the state, a section crosses as a
small *stub*, `{"__sop_lazy__": sha256, "bytes": n}`, and its JSON is a blob in the Store,
addressed by the SHA-256 of that JSON:

- a handler that never reads `.value` never fetches it, and the stub is all that goes back;
- a section read but left as it was (same JSON, same digest) is not written again;
- a section changed (or set) is written once as a new blob before the checkpoint names it, so
  a checkpoint never points at a blob that is not stored. Blobs are content-addressed:
  rewriting one is idempotent, two states with equal sections share one.

Outside a runtime that stores blobs (`collect_sections` not active), a loaded section
serialises inline as its JSON data, so `model_dump` and `sopy_actors.testing.LocalSOP` work as
for any field; a section that is not loaded serialises as its stub.

Loading verifies the blob's digest: a blob altered in the Store is refused with a StateError.

`LazyState` adds the spec's `register_loader(section, loader)`: a section filled by a loader
function the first time it is read. The state keeps the loader's *name*, never code: a name
registered with `@lazy_loader("name")` (looked up in the process), or a `module:qualname`
function reference, loaded with the same rules as the classes a checkpoint names.

Pure: no Ray. The runtime installs the blob store (`use_blob_store`) in each process.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import hashlib
import inspect
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Generic, Protocol, TypeVar, get_args

from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from pydantic_core import core_schema

from sopy_actors.core.references import reference_of, resolve_reference
from sopy_actors.errors import InputError, StateError
from sopy_actors.state.compression import deflate, inflate

__all__ = [
    "STUB_KEY",
    "BlobStore",
    "Lazy",
    "LazyState",
    "collect_sections",
    "lazy_loader",
    "section_digest",
    "store_sections",
    "use_blob_store",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

STUB_KEY = "__sop_lazy__"
"""The key that marks a section's stub in a state's JSON data."""

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_BLOB_THRESHOLD = 1024  # JSON bytes below which a blob's body is stored uncompressed


class BlobStore(Protocol):
    """Where sections live: the runtime's Store, or anything with these two calls."""

    def get(self, digest: str) -> bytes | None:
        """The blob (as `sopy_actors.state.compression.deflate` wrote it), or None if absent."""
        ...

    def put(self, blobs: dict[str, bytes]) -> None:
        """Store blobs by digest, durably, before returning (storing one again is harmless)."""
        ...


_store: BlobStore | None = None
_collecting: contextvars.ContextVar[dict[str, bytes] | None] = contextvars.ContextVar("sop_lazy_collect", default=None)
_LOADERS: dict[str, Callable[..., Any]] = {}
_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def use_blob_store(store: BlobStore | None) -> BlobStore | None:
    """Make `store` where this process reads and stores sections (None: nowhere); returns the
    one it replaces."""
    global _store
    previous, _store = _store, store
    return previous


@contextlib.contextmanager
def collect_sections() -> Iterator[dict[str, bytes]]:
    """Serialise changed sections as stubs while inside; yields the blobs to store (digest →
    blob), which the caller must `put` before it commits the state that names them."""
    blobs: dict[str, bytes] = {}
    token = _collecting.set(blobs)
    try:
        yield blobs
    finally:
        _collecting.reset(token)


def store_sections(blobs: dict[str, bytes]) -> None:
    """Put blobs that `collect_sections` gathered in this process's blob store (durably).

    Raises:
        StateError: there are blobs and this process has no blob store.
    """
    if not blobs:
        return
    if _store is None:
        raise StateError("changed lazy sections cannot be stored: this process has no blob store")
    _store.put(blobs)


def section_digest(text: bytes) -> str:
    """The address of a section: SHA-256 (hex) of its JSON text."""
    return hashlib.sha256(text).hexdigest()


def _adapter(kind: Any) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


def _json_text(kind: Any, value: Any) -> bytes:
    data = _adapter(kind).dump_python(value, mode="json")
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class Lazy(Generic[T]):
    """A section of a state that is stored apart and loaded when `.value` is first read.

    `Lazy(value)` holds a loaded value; a state decoded from a checkpoint holds stubs until
    read. Annotate the field with the section's type, `Lazy[list[Row]]`: it is validated
    when loaded and when set through the model.
    """

    __slots__ = ("_digest", "_kind", "_loaded", "_size", "_value")

    def __init__(self, value: T) -> None:
        self._value: Any = value
        self._loaded = True
        self._digest: str | None = None  # of the stored JSON this value was loaded from
        self._size = 0
        self._kind: Any = Any

    @classmethod
    def _stub(cls, digest: str, size: int, kind: Any) -> Lazy[Any]:
        section: Lazy[Any] = Lazy[Any](None)
        section._loaded, section._digest, section._size, section._kind = False, digest, size, kind
        return section

    @property
    def loaded(self) -> bool:
        """Whether the value is in memory (set, or read since the state was decoded)."""
        return self._loaded

    @property
    def digest(self) -> str | None:
        """SHA-256 of the stored JSON this section was decoded from (None for a new value)."""
        return self._digest

    @property
    def stored_bytes(self) -> int:
        """Bytes of the section's JSON when it was decoded from a stub (0 otherwise)."""
        return self._size

    @property
    def value(self) -> T:
        """The section, fetched from the blob store on first read.

        Raises:
            StateError: no blob store in this process, the blob is missing, or it does not
                match its digest.
            InputError: the stored data does not validate as the field's type.
        """
        if not self._loaded:
            self._value = self._load()
            self._loaded = True
        return self._value  # type: ignore[no-any-return]

    @value.setter
    def value(self, value: T) -> None:
        self._value = value
        self._loaded = True

    def _load(self) -> Any:
        digest = self._digest
        if _store is None:
            raise StateError(
                f"lazy section {digest} is not loaded and this process has no blob store: read it "
                "inside a handler or after sopy_actors.init()"
            )
        blob = _store.get(str(digest))
        if blob is None:
            raise StateError(f"lazy section {digest} is not in the Store (was the store replaced or pruned?)")
        text = inflate(blob)
        if section_digest(text) != digest:
            raise StateError(f"lazy section {digest}: the stored blob does not match its digest; refusing it")
        try:
            return _adapter(self._kind).validate_json(text)
        except ValidationError as error:
            raise InputError(f"lazy section {digest} does not validate as {self._kind!r}: {error}") from None

    def _serialize(self, info: core_schema.SerializationInfo) -> Any:
        blobs = _collecting.get()
        if not self._loaded:
            return {STUB_KEY: self._digest, "bytes": self._size}
        if info.mode != "json":
            return self._value
        if blobs is None:
            return _adapter(self._kind).dump_python(self._value, mode="json")
        text = _json_text(self._kind, self._value)
        digest = section_digest(text)
        if digest != self._digest:  # new or changed: store it before the checkpoint names it
            blobs[digest] = deflate(text, threshold=_BLOB_THRESHOLD)
        return {STUB_KEY: digest, "bytes": len(text)}

    def __deepcopy__(self, memo: dict[int, Any]) -> Lazy[T]:
        twin: Lazy[T] = Lazy(copy.deepcopy(self._value, memo))
        twin._loaded, twin._digest, twin._size, twin._kind = self._loaded, self._digest, self._size, self._kind
        return twin

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Lazy):
            return NotImplemented
        if not (self._loaded or other._loaded):
            return self._digest == other._digest
        return bool(self.value == other.value)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self._loaded:
            return f"Lazy({self._value!r})"
        return f"Lazy(<not loaded: {self._size} bytes, sha256 {str(self._digest)[:12]}…>)"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        arguments = get_args(source)
        kind: Any = arguments[0] if arguments else Any

        def validate(data: Any) -> Lazy[Any]:
            if isinstance(data, Lazy):
                if data._loaded and data._kind is Any and kind is not Any:
                    data._value = _adapter(kind).validate_python(data._value)
                data._kind = kind
                return data
            if isinstance(data, dict) and STUB_KEY in data:
                return cls._stub(*_stub_fields(data), kind)
            section: Lazy[Any] = cls(_adapter(kind).validate_python(data))
            section._kind = kind
            return section

        return core_schema.no_info_plain_validator_function(
            validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda section, info: section._serialize(info), info_arg=True
            ),
        )


def _stub_fields(data: dict[str, Any]) -> tuple[str, int]:
    digest, size = data.get(STUB_KEY), data.get("bytes", 0)
    if set(data) - {STUB_KEY, "bytes"} or not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ValueError(f"a lazy section's stub is {{{STUB_KEY!r}: <sha256 hex>, 'bytes': <int>}}, got {data!r}")
    if not isinstance(size, int) or size < 0:
        raise ValueError(f"a lazy section's 'bytes' must be an int >= 0, got {size!r}")
    return digest, size


# -- loaders (the spec's register_loader) --------------------------------------------------------


def lazy_loader(name: str) -> Callable[[F], F]:
    """Register a function as the loader called `name` (`@lazy_loader("sales")`), in every
    process that imports the module defining it. A loader takes no argument (as in the spec)
    or the state, to read where to load from.

    Raises:
        InputError: `name` is empty, contains ':' (kept for `module:qualname`), or another
            function holds it.
    """
    if not name or ":" in name:
        raise InputError(f"a loader name must be non-empty without ':', got {name!r}", fields=("name",))

    def register(function: F) -> F:
        held = _LOADERS.get(name)
        if held is not None and _where(held) != _where(function):  # a module imported again may re-register
            raise InputError(f"loader {name!r} is already registered to {_where(held)}", fields=("name",))
        _LOADERS[name] = function
        return function

    return register


def _where(function: Callable[..., Any]) -> str:
    return f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', '?')}"


def _takes_state(function: Callable[..., Any]) -> bool:
    """Whether a loader takes the state (one positional parameter) rather than nothing."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: called as the spec does
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty for p in parameters)


def _loader(name: str) -> Callable[..., Any]:
    function = _LOADERS.get(name)
    if function is None and ":" in name:
        function = resolve_reference(name)
    if function is None or not callable(function):
        raise StateError(
            f"no lazy loader {name!r} in this process: register it with @lazy_loader({name!r}) in a module "
            "the workflow imports, or pass a module-level function"
        )
    return function


class LazyState(BaseModel):
    """The spec's `LazyState`: `register_loader(section, loader)` fills a section from a loader
    the first time the section is read, in whichever process reads it.

    The loader is kept by name in `lazy_loaders` (section → name) until it has run, so the
    section loads after the state crossed to another process or a restart. A section typed
    `Lazy[...]` is then stored apart like any lazy section.
    """

    lazy_loaders: dict[str, str] = Field(default_factory=dict)
    """Sections still to load, and the name of each one's loader."""

    _always: ClassVar[frozenset[str]] = frozenset({"register_loader", "load_section", "lazy_loaders"})

    def register_loader(self, section: str, loader: str | Callable[..., Any]) -> None:
        """Load `section` with `loader` when it is first read.

        Args:
            section: a field of this state.
            loader: a name registered with `@lazy_loader`, or a module-level function (kept as
                its `module:qualname`); called with no argument, or with the state if it takes one.

        Raises:
            InputError: `section` is not a field, or `loader` is a lambda or nested function
                (another process could not find it by name).
        """
        if section not in type(self).model_fields or section == "lazy_loaders":
            raise InputError(f"{type(self).__name__} has no section {section!r}", fields=("section",))
        if callable(loader):  # kept by reference: a lambda or nested function is refused here
            name = reference_of(loader, what="loader")
            _LOADERS.setdefault(name, loader)
        else:
            name = loader
        self.lazy_loaders[section] = name

    def load_section(self, section: str) -> None:
        """Run `section`'s loader now if it has not run (nothing happens otherwise).

        Raises:
            StateError: the loader is unknown here, or it raised (the section is unchanged).
            InputError: what it returned does not validate as the field.
        """
        loaders = object.__getattribute__(self, "lazy_loaders")
        name = loaders.get(section)
        if name is None:
            return
        function = _loader(name)
        try:
            data = function(self) if _takes_state(function) else function()
        except StateError:
            raise
        except Exception as error:
            raise StateError(f"lazy section {section!r}: loader {name!r} raised {type(error).__name__}: {error}") from error
        try:  # validated as the field (a Lazy field becomes a loaded section)
            value = _adapter(type(self).model_fields[section].annotation).validate_python(data)
        except ValidationError as error:
            raise InputError(f"lazy section {section!r}: loader {name!r} returned data that does not fit: {error}") from None
        setattr(self, section, value)
        del loaders[section]

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and name not in LazyState._always:
            fields = type(self).model_fields
            if name in fields and name in object.__getattribute__(self, "lazy_loaders"):
                self.load_section(name)
        return super().__getattribute__(name)
