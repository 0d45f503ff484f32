"""State helpers below the runtime: hybrid logical clocks, distributed state with last-writer-wins
merging, lazy sections stored apart from checkpoints, compressed JSON (zstd or zlib, never pickle).

Pure Python (no Ray): the actor runtime's shared-state service (`sopy_actors.runtime.shared_state`)
uses these to sync distributed states between SOPs on any nodes.
"""

from __future__ import annotations

from sopy_actors.core.lifecycle import SharedChange, SharedEntry, SharedStateChanged
from sopy_actors.state.compression import CompressedState, available_codec, compress_json, decompress_json
from sopy_actors.state.distributed import DistributedState, lww_merge, merge_state_data
from sopy_actors.state.hlc import HybridClock, Stamp
from sopy_actors.state.lazy import Lazy, LazyState, lazy_loader

__all__ = [
    "CompressedState",
    "DistributedState",
    "HybridClock",
    "Lazy",
    "LazyState",
    "SharedChange",
    "SharedEntry",
    "SharedStateChanged",
    "Stamp",
    "available_codec",
    "compress_json",
    "decompress_json",
    "lazy_loader",
    "lww_merge",
    "merge_state_data",
]
