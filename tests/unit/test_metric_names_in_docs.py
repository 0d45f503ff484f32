"""Metric names quoted in docs are real families, with real labels: docs cannot drift from names.py.

What counts as a metric name: a token `sopy_[a-z0-9_]+` not inside a longer name or a dotted
path, whose last word is a unit or the last word of a real family's name (`_total`, `_seconds`,
`_ratio`, `_up`, ...), or a histogram's `_bucket` / `_sum` / `_count` series. Python names that
start with `sopy_` (`sopy_actors`, `sopy_error`, `sopy_main_<flow>`) end otherwise. Labels quoted
right after the name (`{kind}`, `{outcome="rejected"}`) must be the family's labels.

Where: docstrings and comments of every module in `sopy_actors` (standalone string statements,
so attribute docstrings count too), `README.md`, and every `.md` and `.json` under `cluster/`
(the guide's PromQL queries and the Grafana dashboard's).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

from sopy_actors.telemetry.names import FAMILIES, family

ROOT = Path(__file__).resolve().parents[2]

_UNITS = frozenset(
    {"total", "seconds", "milliseconds", "ms", "bytes", "ratio", "percent", "count", "info", "bucket", "sum"}
    | {f.name.rsplit("_", 1)[1] for f in FAMILIES}
)
_HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
_TOKEN = re.compile(r"(?<![\w.])(sopy_[a-z0-9_]*[a-z0-9])(?![\w(])(\{[^}]*\})?")


def _problems(text: str) -> Iterator[tuple[int, str]]:
    """(offset in `text`, what is wrong) for every metric name in `text` that is not a family's."""
    for match in _TOKEN.finditer(text):
        token, braces = match.group(1), match.group(2)
        base = token
        extra_labels: tuple[str, ...] = ()
        for suffix in _HISTOGRAM_SERIES:
            known = family(token.removesuffix(suffix))
            if token.endswith(suffix) and known is not None and known.kind == "histogram":
                base, extra_labels = known.name, (("le",) if suffix == "_bucket" else ())
        if base.rsplit("_", 1)[1] not in _UNITS:
            continue  # a Python name, not a metric
        known = family(base)
        if known is None:
            yield match.start(), f"{token} is not a metric family"
            continue
        if braces:
            unquoted = re.sub(r'"[^"]*"', '""', braces[1:-1])
            labels = {m.group(1) for part in unquoted.split(",") if (m := re.match(r"\s*([A-Za-z_]\w*)", part))}
            if unknown := labels - {*known.labels, *extra_labels}:
                yield match.start(), f"{token} has no label {', '.join(sorted(unknown))} (labels: {known.labels})"


def _python_docs(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every standalone string statement and every comment of a module."""
    source = path.read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            yield node.lineno, node.value.value
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def _documents() -> Iterator[tuple[Path, int, str]]:
    for path in sorted((ROOT / "sopy_actors").rglob("*.py")):
        for line, text in _python_docs(path):
            yield path, line, text
    for path in [ROOT / "README.md", *sorted((ROOT / "cluster").glob("*.md")), *sorted((ROOT / "cluster").glob("*.json"))]:
        yield path, 1, path.read_text()


def test_every_metric_name_in_docstrings_comments_and_docs_is_a_family() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line + text.count(chr(10), 0, offset)}: {problem}"
        for path, line, text in _documents()
        for offset, problem in _problems(text)
    ]
    assert not found, "\n".join(found)


def test_the_rule_recognises_every_family_and_catches_wrong_names() -> None:
    for known in FAMILIES:
        assert list(_problems(f"`{known.name}{{{','.join(known.labels)}}}`")) == []
    assert list(_problems("sopy_actors.telemetry, sopy_error, sopy_main_flow, sopy_actors_total()")) == []
    assert list(_problems("rate(sopy_handler_duration_seconds_bucket{le='1.0'}[5m])")) == []
    wrong = [
        "sopy_agent_errors_total",
        "sopy_handler_latency_seconds",
        "sopy_agent_call_duration_ms",
        "sopy_events_total_bucket",
        "sopy_agent_tokens_total{kind=input|output}",
    ]
    for text in wrong:
        assert len(list(_problems(f"see `{text}`."))) == len(list(_problems(f"counted in {text}."))) == 1, text
