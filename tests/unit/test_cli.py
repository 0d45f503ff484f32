"""The `sopy-actors` command: `graph` and `check`, run in process through `main([...])`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sopy_actors.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "guarded_migration"
EXAMPLE_TARGET = f"{EXAMPLE / 'workflow.py'}:ReadFiles"

FLOW_SOURCE = '''
from __future__ import annotations

from pydantic import BaseModel

from sopy_actors import SOP, End, Event, Procedure, cond, handler, make_prompt


class Draft(BaseModel):
    words: int = 0


class Written(Event[int]):
    """Words were written."""


class Approved(Event[bool]):
    """The editor decided."""


class Writing(Procedure[Draft]):
    prompt = make_prompt("Write the draft.")

    @handler
    def on_written(self, state: Draft, event: Written) -> Procedure[Draft]:
        state.words += event.payload
        if cond(state.words >= 500, "the draft has 500 words"):
            return Editing()
        return self


class Editing(Procedure[Draft]):
    prompt = make_prompt("Edit the draft.")

    @handler
    def on_approved(self, state: Draft, event: Approved) -> Procedure[Draft]:
        if cond(event.payload, "the editor approves"):
            return End()
        return Writing(prompt="Rewrite the draft.")
{extra}

def make_entry() -> Writing:
    return Writing()


sop = SOP(Draft(), Writing())
not_a_procedure = 42
'''

ORPHAN_SOURCE = """

class Orphan(Procedure[Draft]):
    prompt = make_prompt("Nobody comes here.")

    @handler
    def on_written(self, state: Draft, event: Written) -> Procedure[Draft]:
        return helper()


def helper() -> Procedure[Draft]:
    return End()


class Stuck(Procedure[Draft]):
    @handler
    def on_written(self, state: Draft, event: Written) -> Procedure[Draft]:
        return self


class Reviewing(Procedure[Draft]):
    @handler
    def on_approved(self, state: Draft, event: Approved) -> Procedure[Draft]:
        return Stuck() if event.payload else End()
"""


@pytest.fixture(autouse=True)
def isolated_imports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Undo what loading a user's module does to sys.path and sys.modules."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def write_flow(directory: Path, extra: str = "", name: str = "flow.py") -> Path:
    path = directory / name
    path.write_text(FLOW_SOURCE.replace("{extra}", extra))
    return path


def readme_mermaid() -> str:
    readme = (EXAMPLE / "README.md").read_text()
    match = re.search(r"```mermaid\n(.*?)```", readme, re.DOTALL)
    assert match is not None, "the example README has no mermaid block"
    return match.group(1)


def test_graph_draws_the_example_exactly_as_its_readme_shows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["graph", EXAMPLE_TARGET, "--format", "mermaid"])

    assert status == 0
    assert capsys.readouterr().out == readme_mermaid()


def test_graph_of_the_example_sop_object_equals_the_graph_of_its_entry_class(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["graph", EXAMPLE_TARGET, "--objective", "migrating files"])
    from_class = capsys.readouterr().out
    main(["graph", f"{EXAMPLE / 'workflow.py'}:sop", "--objective", "migrating files"])

    assert capsys.readouterr().out == from_class
    assert from_class.startswith(
        "Here is the standard operating procedure (SOP) for migrating files:\n"
        "Procedure ReadFiles:\n"
        "    Instruction: List the files in the source directory. If the source directory is "
        "empty, then finish the procedure. Then proceed to BackUpCopy.\n"
        "    Action: FilesRead\n\nProcedure BackUpCopy:\n"
    )


def test_check_passes_on_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check", EXAMPLE_TARGET])

    assert status == 0
    assert capsys.readouterr().out == "ok: 5 procedures, 17 transitions\n"


def test_graph_prints_the_sop_prompt_of_a_module_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_flow(tmp_path)

    status = main(["graph", f"{path}:Writing", "--objective", "writing an article"])

    assert status == 0
    assert capsys.readouterr().out == (
        "Here is the standard operating procedure (SOP) for writing an article:\n"
        "Procedure Writing:\n"
        "    Instruction: Write the draft. If the draft has 500 words, then go to Editing.\n"
        "    Action: Written\n"
        "\n"
        "Procedure Editing:\n"
        "    Instruction: Edit the draft. If the editor approves, then finish the procedure. "
        "Then proceed to Writing#2.\n"
        "    Action: Approved\n"
        "\n"
        "Procedure Writing#2:\n"
        "    Instruction: Rewrite the draft. If the draft has 500 words, then go to Editing.\n"
        "    Action: Written\n"
    )


def test_graph_prints_sopys_generated_prompt_with_style_sopy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_flow(tmp_path)

    status = main(["graph", f"{path}:Writing", "--objective", "writing an article", "--style", "sopy"])

    assert status == 0
    out = capsys.readouterr().out
    assert out.startswith("Here is the standard operating procedure (SOP) for writing an article:\nProcedure Writing:\n")
    assert "\n\n" not in out  # SOPy joins procedures with a single newline


def test_graph_prints_mermaid_for_a_module_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_flow(tmp_path)

    assert main(["graph", f"{path}:Writing", "--format", "mermaid"]) == 0
    assert capsys.readouterr().out == textwrap.dedent(
        """\
        stateDiagram-v2
            state "Writing#2" as Writing_2
            [*] --> Writing
            Writing --> Editing: Written [the draft has 500 words]
            Writing --> Writing: Written
            Editing --> [*]: Approved [the editor approves]
            Editing --> Writing_2: Approved
            Writing_2 --> Editing: Written [the draft has 500 words]
            Writing_2 --> Writing_2: Written
        """
    )


def test_graph_prints_json_with_nodes_edges_and_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_flow(tmp_path)

    assert main(["graph", f"{path}:make_entry", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)

    assert data["entry"] == "Writing"
    assert [node["id"] for node in data["nodes"]] == ["Writing", "Editing", "End", "Writing#2"]
    assert data["nodes"][0] == {
        "id": "Writing",
        "class": "flow.Writing",
        "prompt": "Write the draft.",
    }
    assert data["edges"][2] == {
        "from": "Editing",
        "to": "End",
        "events": ["Approved"],
        "condition": "the editor approves",
        "handler": "on_approved",
    }
    assert data["problems"] == {"errors": [], "warnings": []}


def test_graph_loads_a_dotted_module_name_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    package = tmp_path / "drafts"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write_flow(package, name="article_flow.py")
    monkeypatch.chdir(tmp_path)

    assert main(["graph", "drafts.article_flow:sop", "--format", "mermaid"]) == 0
    assert capsys.readouterr().out.splitlines()[2] == "    [*] --> Writing"


def test_check_exits_1_and_prints_each_error_on_its_own_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_flow(tmp_path, extra=ORPHAN_SOURCE)

    status = main(["check", f"{path}:Reviewing"])

    assert status == 1
    # Writing and Editing belong to the module's own SOP (`sop = SOP(Draft(), Writing())`).
    assert capsys.readouterr().out.splitlines() == [
        "error: procedure Orphan is unreachable from the entry Reviewing: no reachable handler "
        "returns it",
        "error: procedure Stuck has no path to End: no chain of transitions from it reaches a "
        "return of End()",
    ]


@pytest.mark.parametrize(
    ("entry", "summary"),
    [
        ("examples/hierarchical/workflow.py:MasterWorkflow", "ok: 2 procedures, 4 transitions"),
        ("examples/hierarchical/workflow.py:StartDataProcessing", "ok: 2 procedures, 2 transitions"),
        ("examples/flagship/workflow.py:Staging", "ok: 2 procedures, 4 transitions"),
    ],
)
def test_check_leaves_the_procedures_of_the_modules_other_sops_alone(
    entry: str, summary: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A master and the sub-SOPs it starts (`init_proc=`) share a module: each is its own SOP.
    assert main(["check", str(REPO / entry)]) == 0
    assert capsys.readouterr().out == summary + "\n"


def test_check_prints_warnings_after_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_flow(tmp_path, extra=ORPHAN_SOURCE)
    line = path.read_text().splitlines().index("        return helper()") + 1

    status = main(["check", f"{path}:Orphan"])

    assert status == 1
    # Writing and Editing belong to the module's own SOP (`sop = SOP(Draft(), Writing())`).
    assert capsys.readouterr().out.splitlines() == [
        "error: procedure Stuck is unreachable from the entry Orphan: no reachable handler "
        "returns it",
        "error: procedure Reviewing is unreachable from the entry Orphan: no reachable handler "
        "returns it",
        f"warning: {path}:{line}: handler Orphan.on_written returns helper(), which cannot be "
        "resolved statically; its transition is left out of the graph (return a procedure "
        "instance such as Next(), self, End() or a str)",
    ]


def test_check_exits_0_and_prints_the_warnings_when_there_are_only_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "solo.py"
    path.write_text(
        textwrap.dedent(
            """\
            from sopy_actors import End, Event, Procedure, handler

            class Go(Event[int]):
                pass

            class Solo(Procedure):
                @handler
                def on_go(self, state, event: Go):
                    return pick(event)

            def pick(event):
                return End()
            """
        )
    )

    status = main(["check", f"{path}:Solo"])

    assert status == 0
    assert capsys.readouterr().out.splitlines() == [
        f"warning: {path}:9: handler Solo.on_go returns pick(event), which cannot be resolved "
        "statically; its transition is left out of the graph (return a procedure instance such "
        "as Next(), self, End() or a str)",
        "ok: 1 procedures, 0 transitions",
    ]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("flow.py", "expected MODULE:ENTRY, got 'flow.py'"),
        ("missing.py:Writing", "no such file: missing.py"),
        ("no_such_module_anywhere:Entry", "no module named 'no_such_module_anywhere'"),
        ("{flow}:Missing", "{flow} has no attribute 'Missing'"),
        ("{flow}:not_a_procedure", "{flow}:not_a_procedure is a int; expected a Procedure"),
        ("{flow}:Draft", "{flow}:Draft is the class Draft; expected a Procedure subclass"),
        ("{flow}:End", "{flow}:End is End, which cannot be an entry procedure"),
        ("{broken}:Anything", "importing {broken} failed: ZeroDivisionError: division by zero"),
    ],
)
def test_bad_module_entry_exits_2_with_a_clear_message(
    target: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    flow = write_flow(tmp_path)
    broken = tmp_path / "broken.py"
    broken.write_text("1 / 0\n")
    names = {"flow": str(flow), "broken": str(broken)}

    status = main(["check", target.format(**names)])

    assert status == 2
    output = capsys.readouterr()
    assert output.out == ""
    assert output.err.startswith(f"sopy-actors: error: {message.format(**names)}")


def test_entry_class_that_needs_arguments_is_refused_with_a_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "needs_args.py"
    path.write_text(
        textwrap.dedent(
            """\
            from sopy_actors import Procedure

            class Configured(Procedure):
                def __init__(self, limit: int) -> None:
                    super().__init__()
            """
        )
    )

    assert main(["graph", f"{path}:Configured"]) == 2
    assert capsys.readouterr().err == (
        f"sopy-actors: error: {path}:Configured() cannot be created with no arguments "
        "(TypeError: Configured.__init__() missing 1 required positional argument: 'limit'); "
        "name a module-level instance, an SOP or a function returning one instead\n"
    )


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])

    assert exit_info.value.code == 0
    assert capsys.readouterr().out == "sopy-actors 0.1.0\n"


def test_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["graph", EXAMPLE_TARGET, "--format", "dot"])

    assert exit_info.value.code == 2
    assert "invalid choice: 'dot'" in capsys.readouterr().err


def test_console_script_checks_the_example_without_importing_ray() -> None:
    script = Path(sys.executable).with_name("sopy-actors")
    checked = subprocess.run(
        [str(script), "check", "examples/guarded_migration/workflow.py:ReadFiles"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, sopy_actors.cli\n"
            "sopy_actors.cli.main(['check', 'examples/guarded_migration/workflow.py:sop'])\n"
            "print('ray' in sys.modules)",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert (checked.returncode, checked.stdout, checked.stderr) == (
        0,
        "ok: 5 procedures, 17 transitions\n",
        "",
    )
    assert probe.stdout.splitlines() == ["ok: 5 procedures, 17 transitions", "False"]
