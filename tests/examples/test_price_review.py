"""The price review example on the session's cluster: a lazy catalogue, moved only when read."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.examples.cli import ROOT, assert_readme_shows_the_graph, run_example

EXAMPLE = ROOT / "examples" / "price_review"
TARGET = "examples/price_review/workflow.py:review_sop"


def test_readme_graph_is_the_graph_the_cli_draws_and_the_workflow_checks() -> None:
    assert_readme_shows_the_graph(EXAMPLE, TARGET, "ok: 1 procedures, 4 transitions")


def _moved(out: str, event: str) -> int:
    match = re.search(rf"^{re.escape(event)}: \w+.*, ([\d,]+) bytes host <-> procedure actor$", out, re.M)
    assert match is not None, f"no line for {event} in:\n{out}"
    return int(match.group(1).replace(",", ""))


def test_events_that_do_not_read_the_catalogue_move_under_one_percent_of_it(runtime: Any) -> None:
    out = run_example(runtime, "examples/price_review/main.py").stdout
    assert "catalogue: 200,000 products in " in out
    assert re.search(r"^review \w+: catalogue section not loaded yet, loader \{'catalogue': 'catalogue-db'\}$", out, re.M)
    section = int(re.search(r"^catalogue section: ([\d,]+) bytes of JSON, stored apart", out, re.M).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert section > 10_000_000
    for event in ('NoteAdded("Toys look fine.")', 'SignedOff("dana")'):
        assert _moved(out, event) < section / 100
    for event in ('CategoryReviewed("garden")', 'PriceChanged({"sku": "SKU-000010", "new_price": 19.99})'):
        assert _moved(out, event) < section / 100  # read (and changed) in the procedure actor, not shipped
    assert re.search(r"^CategoryReviewed\(\"cars\"\): rejected \(No products in category 'cars'", out, re.M)
    findings = json.loads(re.search(r"^findings: (\{.*\})$", out, re.M).group(1))  # type: ignore[union-attr]
    assert set(findings) == {"garden:max", "garden:median", "toys:max", "toys:median"}
    assert 100 < findings["garden:median"] < 200 and findings["toys:max"] <= 300
    assert "SKU-000010 now costs 19.99; notes: ['Start with garden: supplier raised prices in March.', " in out
