"""The distributed inventory example on the session's cluster: three SOPs converge."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.examples.cli import ROOT, assert_readme_shows_the_graph, run_example

EXAMPLE = ROOT / "examples" / "distributed_inventory"
TARGET = "examples/distributed_inventory/workflow.py:inventory_sop"


def test_readme_graph_is_the_graph_the_cli_draws_and_the_workflow_checks() -> None:
    assert_readme_shows_the_graph(EXAMPLE, TARGET, "ok: 1 procedures, 4 transitions")


def test_stores_reserving_from_shared_counts_converge_on_the_same_values(runtime: Any) -> None:
    out = run_example(runtime, "examples/distributed_inventory/main.py").stdout
    after = out.split("--- after the reservations\n", 1)[1].split("---", 1)[0]
    assert after.count("widgets  3 of 10 available, gadgets  3 of  4") == 3, after
    conflict = re.search(r"price conflict: (9\.5|9\.9) from (store-east|store-west) won", out)
    assert conflict is not None and {"9.5": "store-east", "9.9": "store-west"}[conflict.group(1)] == conflict.group(2)
    assert "E-2 for 5 widgets: rejected: Only 3 widgets left" in out
    finals = json.loads(out.split("--- converged views\n", 1)[1].split("\nfinished in")[0])
    values = [final["values"] for final in finals.values()]
    assert values[0] == values[1] == values[2]
    assert values[0]["stock:widgets"] == 10 and values[0]["price:widgets"] == float(conflict.group(1))
    assert values[0]["reserved:widgets:store-east"] == 3 and values[0]["reserved:widgets:store-west"] == 4
    assert finals["store-east"]["reservations"] == ["E-1"] and finals["store-west"]["reservations"] == ["W-1", "W-2"]
