"""README snippets run, so the docs cannot drift from the code."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_snippets_run() -> None:
    snippets = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert snippets
    for number, snippet in enumerate(snippets):
        module = types.ModuleType(f"readme_snippet_{number}")
        sys.modules[module.__name__] = module
        try:
            exec(compile(snippet, str(README), "exec"), module.__dict__)
        finally:
            del sys.modules[module.__name__]


def test_readme_has_the_test_command_ci_runs() -> None:
    text = README.read_text()
    block = text.split("<!-- test-command -->")[1].split("<!-- /test-command -->")[0]
    assert "pytest" in block and "pip install -e '.[test]'" in block
    assert "ruff check" in block and "mypy" in block  # the checks run before the tests
