"""What `ship_main_module` ships, by how the driver was started (no Ray cluster is started)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# Prints the runtime_env init() would pass to ray.init, and how references name a class of
# the running file. Written to a file and started in different ways below.
PROBE = """
import json

from sopy_actors.core.references import reference_of
from sopy_actors.runtime.main_module import ship_main_module


class Drafting:
    pass


given = {"env_vars": {"A": "1"}, "py_modules": ["/somewhere/lib"]}
shipped = ship_main_module(given)
try:
    reference = reference_of(Drafting)
except ValueError as error:
    reference = f"refused: {error}"
print(json.dumps({"env": shipped, "given": given, "reference": reference, "module": __name__}))
"""


def _start(tmp_path: Path, *command: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, *command], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_plain_script_is_shipped_as_its_own_module_and_named_by_it(tmp_path: Path) -> None:
    (tmp_path / "my-flow.py").write_text(PROBE)
    result = _start(tmp_path, "my-flow.py")
    env = result["env"]
    assert isinstance(env, dict)
    first, copy = env["py_modules"]
    assert first == "/somewhere/lib" and env["env_vars"] == {"A": "1"}
    assert Path(copy).name == "_sopy_main_my_flow.py"
    assert result["given"] == {"env_vars": {"A": "1"}, "py_modules": ["/somewhere/lib"]}  # not modified
    assert result["reference"] == "_sopy_main_my_flow:Drafting"


@pytest.mark.parametrize("launcher", ["module", "console script"])
def test_a_module_or_console_script_main_is_not_shipped(tmp_path: Path, launcher: str) -> None:
    # `python -m sopy_actors.cli run FILE.py` and the `sopy-actors` console script (a file
    # without .py) import FILE under its own name and ship its directory themselves.
    if launcher == "module":
        (tmp_path / "launched.py").write_text(PROBE)
        result = _start(tmp_path, "-m", "launched")
    else:
        (tmp_path / "sopy-launcher").write_text(PROBE)
        result = _start(tmp_path, "sopy-launcher")
    assert result["env"] == {"env_vars": {"A": "1"}, "py_modules": ["/somewhere/lib"]}
    assert result["module"] == "__main__"
    assert str(result["reference"]).startswith("refused: class Drafting is defined in __main__")
