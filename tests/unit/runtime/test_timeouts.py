"""Timeouts given to blocking calls are checked before anything waits (no Ray)."""

from __future__ import annotations

import math

import pytest

from sopy_actors.errors import InputError
from sopy_actors.runtime.rayutil import checked_timeout


@pytest.mark.parametrize("timeout", [None, 0, 0.5, 30])
def test_none_and_finite_seconds_of_at_least_zero_are_timeouts(timeout: float | None) -> None:
    assert checked_timeout(timeout) == timeout


@pytest.mark.parametrize("timeout", [math.nan, math.inf, -1, "5", True])
def test_anything_else_is_refused_naming_the_field(timeout: object) -> None:
    with pytest.raises(InputError, match="timeout must be None or a finite number") as raised:
        checked_timeout(timeout)  # type: ignore[arg-type]
    assert raised.value.fields == ("timeout",)
