"""Run the adaptive workflow: `sopy-actors run examples/adaptive_workflow/main.py`."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from workflow import DATA, Context, Readings, create_adaptive_workflow, events_for

from sopy_actors.errors import DefinitionError

CONTEXTS = {
    "full": Context(),
    "quick": Context(requires_data_validation=False, analysis_enabled=False),
}


def run(label: str, context: Context, run_dir: Path) -> dict[str, object]:
    """Build the workflow for `context`, run it to End on the actor runtime, print what it did."""
    workflow = create_adaptive_workflow(Readings(source=str(DATA)), context)
    print(f"=== {label}: {context.model_dump()}")
    print(f"steps: {', '.join(workflow.steps)} (definition {workflow.definition.digest()})")
    print(workflow.graph().to_mermaid())
    handle = workflow.start()
    report = str(run_dir / f"report-{label}.md")
    while handle.status().phase == "waiting":
        step = handle.status().procedure
        receipt = handle.send(events_for(step, report))
        print(f"{step} -> {receipt.outcome.value}, now in {receipt.procedure}")
    final = handle.result(timeout=120)
    print("steps done: " + "; ".join(final.steps))
    print(f"--- {Path(final.report).name}\n{Path(final.report).read_text()}")
    return {"steps": final.steps, "outliers": final.outliers, "mean": final.mean}


def main() -> dict[str, object]:
    """Two contexts, two workflows; then a context the builder refuses."""
    run_dir = Path(tempfile.mkdtemp(prefix="sopy-adaptive-"))
    results = {label: run(label, context, run_dir) for label, context in CONTEXTS.items()}
    print("=== refused: processing left out, but ValidateData returns ProcessData()")
    try:
        create_adaptive_workflow(Readings(source=str(DATA)), Context(requires_processing=False))
    except DefinitionError as error:
        print(error)
    print("--- results\n" + json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    import sopy_actors

    sopy_actors.init()
    main()
