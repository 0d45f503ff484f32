"""Assertions shared by the compatibility tests."""

from __future__ import annotations

import re
from typing import Any

import pytest

from sopy_actors.sopy.core.sop import SOPRetryExceptionHook


def rejected(prompt: str) -> Any:
    """`pytest.raises` for a rejection whose recovery prompt is exactly `prompt`."""
    return pytest.raises(SOPRetryExceptionHook, match=f"^{re.escape(prompt)}$")
