"""WorkflowTemplate: file validation with lines, safe substitution, parameters, generated configs."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sopy_actors.errors import DefinitionError, InputError
from sopy_actors.testing import LocalSOP
from sopy_actors.workflows import WorkflowTemplate, fill_template
from tests.unit.workflows import flows

TEMPLATE = Path(__file__).resolve().parent / "analysis.yaml"


@pytest.mark.parametrize(
    "placeholder",
    ["{0.__class__}", "{x[0]}", "{a.__globals__}", "{source.__class__.__init__.__globals__}", "{source!r}",
     "{source:>99999}", "{source:{source}}", "{}", "{0}", "{source[__class__]}"],
)
def test_every_injection_attempt_in_a_prompt_template_is_refused(placeholder: str) -> None:
    with pytest.raises(InputError, match="is refused: only plain parameter names are substituted"):
        fill_template(f"Collect {placeholder} now", {"source": "x", "x": "y", "a": "b"})


def test_plain_names_are_substituted_as_text_and_braces_escape() -> None:
    assert fill_template("{source} {{literal}} {n}", {"source": "{0.__class__}", "n": 3}) == "{0.__class__} {literal} 3"
    with pytest.raises(InputError, match=r"placeholder \{missing\} names no parameter \(parameters: source\)"):
        fill_template("{missing}", {"source": "s"})
    with pytest.raises(InputError, match="malformed template"):
        fill_template("unclosed {source", {"source": "s"})


def test_a_template_file_runs_in_process_with_its_prompts_filled() -> None:
    workflow = WorkflowTemplate.from_file(TEMPLATE).instantiate({"source": "s.csv", "threshold": 1})
    assert list(workflow.steps) == ["Validation", "Processing", "Analysis", "Review", "Reporting"]
    assert str(workflow.init_proc.prompt) == "Load the rows from s.csv and check that none is negative."
    run = LocalSOP(workflow)
    for event in (flows.RowsLoaded(payload=[2, 3]), flows.ProcessRequested(payload=None), flows.AnalysisRequested(payload=1)):
        run.send(event)
    assert type(run.procedure).__name__ == "Review"  # two rows above 1: "two or more anomalies"
    run.send(flows.ReviewDone(payload="ok"))
    assert run.send(flows.ReportRequested(payload="T")).outcome.value == "ended"
    assert run.state.log[0] == "source=s.csv"


def test_parameters_are_checked_against_the_declared_ones() -> None:
    template = WorkflowTemplate.from_file(TEMPLATE)
    with pytest.raises(InputError) as raised:
        template.instantiate({"colour": "red", "threshold": [1]})  # type: ignore[dict-item]
    message = str(raised.value)
    assert "unknown parameter(s) colour (declared: source, threshold)" in message
    assert "parameter 'source' is required (where the rows come from)" in message
    assert "parameter 'threshold' is a list" in message
    assert set(raised.value.fields) == {"colour", "source", "threshold"}


def test_every_problem_of_a_template_file_names_its_line_and_field(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "name: broken\n"                                  # 1
        "registry: tests.unit.workflows.flows\n"          # 2
        "parameters: {source: s}\n"                       # 3
        "steps:\n"                                        # 4
        "  - type: validation\n"                          # 5
        "    prompt_template: 'Load {source.__class__}'\n"  # 6
        "    handlers: {rows_loaded: nowhere}\n"          # 7
        "  - type: teleport\n"                            # 8
        "    prompt_template: 'Go to {destination}'\n"    # 9
        "    handlers: {beamed: end}\n"                   # 10
        "    colour: red\n"                               # 11
    )
    with pytest.raises(DefinitionError) as raised:
        WorkflowTemplate.from_file(broken)
    assert raised.value.problems == (f"{broken}:11: steps[1].colour: Extra inputs are not permitted",)
    broken.write_text(broken.read_text().replace("    colour: red\n", ""))
    with pytest.raises(DefinitionError) as raised:
        WorkflowTemplate.from_file(broken)
    assert raised.value.problems == (
        f"{broken}:6: steps[0].prompt_template: placeholder {{source.__class__}} is refused: only plain parameter names "
        "are substituted (no attribute access '.', indexing '[]', positional fields, conversions '!' or format specs "
        "':'); write {name}",
        f"{broken}:8: steps[1].type: unknown step type 'teleport' (registered: analysis, processing, reporting, review, "
        "validation)",
        f"{broken}:9: steps[1].prompt_template: placeholder {{destination}} is not a declared parameter (declared: source)",
        f"{broken}:7: steps[0].handlers.rows_loaded: unknown target 'nowhere': a step name (Validation, Teleport), the "
        "type of one step, or next, end, stay",
        f"{broken}:10: steps[1].handlers.beamed: unknown event 'beamed' (registered: analysis_requested, "
        "process_requested, report_requested, review_done, rows_loaded)",
    )


def test_a_json_template_is_the_same_workflow_as_its_yaml(tmp_path: Path) -> None:
    import yaml  # type: ignore[import-untyped]

    as_json = tmp_path / "analysis.json"
    as_json.write_text(json.dumps(yaml.safe_load(TEMPLATE.read_text()), indent=2))
    parameters = {"source": "s"}
    from_yaml = WorkflowTemplate.from_file(TEMPLATE).definition(parameters)
    assert WorkflowTemplate.from_file(as_json).definition(parameters).digest() == from_yaml.digest()


# -- generated configs ------------------------------------------------------------------------

TYPES = ["validation", "processing", "analysis", "review", "reporting"]
EVENT_OF = {
    "validation": "rows_loaded", "processing": "process_requested", "analysis": "analysis_requested",
    "review": "review_done", "reporting": "report_requested",
}
words = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8)


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    """A chain of 1..5 distinct step types, each moving to the next (the last to End)."""
    kinds = draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=5, unique=True))
    parameters = draw(st.lists(words, max_size=3, unique=True))
    steps = []
    for kind in kinds:
        used = draw(st.lists(st.sampled_from(parameters), max_size=2)) if parameters else []
        text = draw(words) + "".join(f" {{{name}}}" for name in used)
        steps.append({"type": kind, "prompt_template": text, "handlers": {EVENT_OF[kind]: "next"}})
    return {
        "name": draw(words),
        "registry": "tests.unit.workflows.flows",
        "parameters": {name: {"default": "v"} for name in parameters},
        "steps": steps,
    }


@given(valid_configs())
def test_valid_generated_configs_build_and_walk_to_end(config: dict[str, Any]) -> None:
    workflow = WorkflowTemplate(config).instantiate({}, state=flows.Data(rows=[1]))
    graph = workflow.graph()
    assert graph.validate().ok
    assert [node.name for node in graph.nodes][-1] == "End"
    assert len(graph.nodes) == len(config["steps"]) + 1


BREAKS = {
    "type": lambda step: {**step, "type": "no_such_type"},
    "handlers": lambda step: {**step, "handlers": {"no_such_event": "next"}},
    "prompt_template": lambda step: {**step, "prompt_template": "{undeclared_name}"},
    "agent": lambda step: {**step, "agent": "no_such_agent"},
    "extra": lambda step: {**step, "surprise": 1},
}


@given(valid_configs(), st.sampled_from(sorted(BREAKS)), st.data())
def test_invalid_generated_configs_give_errors_that_name_the_field(
    config: dict[str, Any], field: str, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(config["steps"]) - 1))
    config["steps"][index] = BREAKS[field](config["steps"][index])
    with pytest.raises(DefinitionError) as raised:
        WorkflowTemplate(config, source="generated.yaml")
    expected = {"extra": "surprise"}.get(field, field)
    named = [problem for problem in raised.value.problems if problem.startswith(f"generated.yaml: steps[{index}].{expected}")]
    assert named, raised.value
