"""Dynamic workflows: SOPs built at run time (`WorkflowBuilder`) or from files (`WorkflowTemplate`).

A workflow's procedures are generated classes; they reach other processes as their definition
(plain data keyed by its content hash), never as importable classes, and checkpoints carry that
definition, so a workflow resumes after a restart like any SOP. Importing this package registers
the decoder that rebuilds them (`generate.decode_step`). Modules: `definition` (the data),
`generate` (classes from data), `graph` (the graph of a workflow), `builder`, `template`,
`substitution` (plain-name prompt templates). Pure Python: no Ray import.
"""

from __future__ import annotations

from sopy_actors.workflows.builder import Workflow, WorkflowBuilder
from sopy_actors.workflows.definition import Condition, StepSpec, TransitionSpec, WorkflowDefinition
from sopy_actors.workflows.generate import decode_step
from sopy_actors.workflows.substitution import fill_template, placeholders
from sopy_actors.workflows.template import WorkflowRegistry, WorkflowTemplate

__all__ = [
    "Condition",
    "StepSpec",
    "TransitionSpec",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowDefinition",
    "WorkflowRegistry",
    "WorkflowTemplate",
    "decode_step",
    "fill_template",
    "placeholders",
]
