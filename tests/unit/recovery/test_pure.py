"""The recovery layer is pure Python: importing it loads no Ray, strands or Prometheus client."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_recovery_layer_does_not_import_ray() -> None:
    code = (
        "import sys, sopy_actors.recovery;"
        "print([m for m in ('ray', 'strands', 'prometheus_client') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
