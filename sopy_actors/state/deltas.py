"""JSON deltas: what changed between two JSON documents, and applying it (pure, no I/O).

Used for compact state versions: a version is stored as the delta against the one before.
"""

from __future__ import annotations

import marshal
from typing import Any

from sopy_actors.errors import StateError

__all__ = ["apply_delta", "json_delta"]


def json_delta(old: Any, new: Any) -> Any:
    """A delta that `apply_delta(old, delta)` turns into `new` (both JSON data).

    Dicts are diffed key by key (`{"key": ["=", value]}` set, `["-"]` removed, `["~", delta]`
    changed inside); a list or string that only grew at its end is `["+", tail]`; a list of the
    same length with at most half its items changed is `["*", {index: change}]`; anything else
    is replaced whole. Pure.
    """
    return _diff(old, new)[1]


def _same(old: Any, new: Any) -> bool:
    """Equal as JSON (Python's == takes True for 1 and 1.0 for 1).

    Compared in C: == first, then, for containers, their marshal bytes (which tell 1, 1.0 and
    True apart). Marshal format 0: later formats write back-references to objects that occur
    twice (a key the JSON decoder shared, say), so equal data gave unequal bytes. Bytes still
    differ for equal dicts in another key order: then the caller diffs inside, and the delta is
    only less compact — never wrong.
    """
    if old is new:
        return True
    if type(old) is not type(new) or old != new:
        return False
    if isinstance(old, dict | list):
        return marshal.dumps(old, 0) == marshal.dumps(new, 0)
    return True


def _diff(old: Any, new: Any) -> tuple[str, Any]:
    """("~", delta) for a change inside old, or ("=", new) for a replacement."""
    if isinstance(old, dict) and isinstance(new, dict):
        delta: dict[str, Any] = {}
        for key, value in new.items():
            if key not in old:
                delta[key] = ["=", value]
            elif not _same(old[key], value):
                op, body = _diff(old[key], value)
                delta[key] = [op, body]
        for key in old.keys() - new.keys():
            delta[key] = ["-"]
        return "~", delta
    if (
        type(old) is type(new)
        and isinstance(old, list | str)
        and len(new) > len(old) > 0
        and _same(new[: len(old)], old)
    ):
        return "+", new[len(old) :]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        changed = {str(i): list(_diff(a, b)) for i, (a, b) in enumerate(zip(old, new, strict=True)) if not _same(a, b)}
        if len(changed) * 2 <= len(new):  # a few items changed in place: only those
            return "*", changed
    return "=", new


def apply_delta(old: Any, delta: Any) -> Any:
    """`old` with `json_delta`'s delta applied (old is not changed). Pure."""
    if not isinstance(delta, dict) or not isinstance(old, dict):
        raise StateError("a version delta must apply to an object")
    result = dict(old)
    for key, change in delta.items():
        op = change[0]
        if op == "-":
            result.pop(key, None)
        elif op == "=":
            result[key] = change[1]
        elif op == "+":
            result[key] = result[key] + change[1]
        elif op == "~":
            result[key] = apply_delta(result[key], change[1])
        elif op == "*":
            result[key] = _apply_items(result[key], change[1])
        else:
            raise StateError(f"unknown version delta operation {op!r}")
    return result


def _apply_items(old: list[Any], changes: dict[str, Any]) -> list[Any]:
    items = list(old)
    for index, (op, body) in changes.items():
        at = int(index)
        if op == "=":
            items[at] = body
        elif op == "+":
            items[at] = items[at] + body
        elif op == "~":
            items[at] = apply_delta(items[at], body)
        else:
            items[at] = _apply_items(items[at], body)
    return items
