"""Run the templated analysis: `sopy-actors run examples/templated_analysis/main.py`.

(`sopy-actors run examples/templated_analysis/analysis.yaml --param data_type=temperature` runs
the same template straight from the file, driven by the registry's driver.)
"""

from __future__ import annotations

import json
from pathlib import Path

from steps import registry

from sopy_actors.workflows import WorkflowTemplate

TEMPLATE = Path(__file__).resolve().parent / "analysis.yaml"


def run(parameters: dict[str, str]) -> dict[str, object]:
    """Instantiate the template with `parameters`, run it to End, print what it did."""
    workflow = WorkflowTemplate.from_file(TEMPLATE).instantiate(parameters)
    print(f"=== {workflow.name} with {json.dumps(parameters)} (definition {workflow.definition.digest()})")
    print(workflow.graph().to_mermaid())
    handle = workflow.start()
    assert registry.driver_function is not None
    registry.driver_function(handle, workflow)
    final = handle.result(timeout=300)
    print("--- transitions")
    for entry in handle.history():
        print(f"v{entry.version}: {entry.event_type} {entry.from_procedure} -> {entry.to_procedure} ({entry.outcome})")
    print("--- work\n" + "\n".join(final.work))
    print(f"--- {Path(final.report).name}\n{Path(final.report).read_text()}")
    result = final.model_dump(mode="json")
    print("--- final state\n" + json.dumps({k: v for k, v in result.items() if k != "work"}, indent=2))
    return result


def main() -> None:
    """Temperature with the IQR rule (outliers: reviewed), then humidity with z-scores (none)."""
    run({"data_type": "temperature"})
    run({"data_type": "humidity", "algorithm": "zscore"})


if __name__ == "__main__":
    import sopy_actors

    sopy_actors.init()
    main()
