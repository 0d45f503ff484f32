"""Run the hierarchical example on a local Ray cluster: `sopy-actors run examples/hierarchical/main.py`."""

from __future__ import annotations

import json

from workflow import (
    MasterWorkflow,
    StartDataProcessing,
    StartReportGeneration,
    SubWorkflowNeeded,
    SubWorkflowRequest,
    master_sop,
)

from sopy_actors import attach
from sopy_actors.core.graph import ProcedureGraph, make_prompt_from_procedure


def main() -> dict[str, object]:
    """Start the master SOP, request both sub-workflows, print graphs, history and the result."""
    for entry in (MasterWorkflow(), StartDataProcessing(), StartReportGeneration()):
        print(f"--- graph of {type(entry).__name__}\n{ProcedureGraph.build(entry).to_mermaid()}")
    print(f"--- SOP prompt of the master\n{make_prompt_from_procedure(MasterWorkflow(), 'a hierarchical workflow')}")
    master = master_sop().start()
    rows = [3, -1, 4, -1, 5]
    for workflow_type in ("data_processing", "report_generation"):
        receipt = master.send(SubWorkflowNeeded(payload=SubWorkflowRequest(workflow_type=workflow_type, data=rows)))
        print(f"master <- {workflow_type}: {receipt.outcome.value}, now in {receipt.procedure}")
    final = master.result(timeout=300)
    print("--- transitions")
    for sop_id in (master.sop_id, *master.status().children):
        handle = attach(sop_id)
        status = handle.status()
        for entry in handle.history():
            print(
                f"{status.name} v{entry.version}: {entry.event_type} "
                f"{entry.from_procedure} -> {entry.to_procedure} ({entry.outcome})"
            )
    print("--- final state")
    result = final.model_dump(mode="json")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    import sopy_actors

    sopy_actors.init()
    main()
