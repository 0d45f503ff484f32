"""A workflow defined in the script that is run (`python flow.py`) works on Ray as it is.

Each script starts its own small local cluster in a private RAY_TMPDIR (so it cannot join
another cluster on this machine) and stops it on exit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.processes import run_driver

# State, events and two procedures, all at the top level of the script: their module is
# __main__ in the driver. `{entry}` is the code that connects and runs the workflow; the
# store directory is written in, as workers see other command-line arguments.
WORKFLOW = '''
from __future__ import annotations

import json
import sys

from pydantic import BaseModel

import sopy_actors
from sopy_actors import SOP, End, Event, Procedure, handler


class Doc(BaseModel):
    text: str = ""
    reviews: int = 0


class Draft(BaseModel):
    text: str


class DraftWritten(Event[Draft]):
    pass


class Approved(Event[str]):
    pass


class Drafting(Procedure[Doc]):
    @handler
    def on_draft(self, state: Doc, event: DraftWritten) -> Procedure[Doc]:
        state.text = event.payload.text
        return Reviewing()


class Reviewing(Procedure[Doc]):
    @handler
    def on_approved(self, state: Doc, event: Approved) -> Procedure[Doc]:
        state.reviews += 1
        return End()


def run() -> None:
    sopy_actors.init(
        namespace="plain-script", store_dir={store_dir}, num_cpus=2, hosts=1,
        monitoring=False, log_to_driver=False,
    )
    try:
        handle = SOP(state=Doc(), init_proc=Drafting()).start()
        outcomes = [
            handle.send(DraftWritten(payload=Draft(text="hello")), timeout=300).outcome.value,
            handle.send(Approved(payload="looks good"), timeout=300).outcome.value,
        ]
        final = handle.result(timeout=300)
        print(json.dumps({
            "outcomes": outcomes,
            "state": final.model_dump(),
            "state_is_this_scripts_class": type(final) is Doc,
            "procedure": handle.status().procedure,
            "modules": sorted(name for name in sys.modules if name.startswith("_sopy_main_")),
        }))
    finally:
        sopy_actors.shutdown()

{entry}
'''

GUARDED = 'if __name__ == "__main__":\n    run()\n'
UNGUARDED = "run()\n"


def _run_script(directory: Path, entry: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """`python my-flow.py` as a user runs it (see `run_driver`)."""
    script = directory / "my-flow.py"
    store_dir = repr(str(directory / "store"))
    script.write_text(WORKFLOW.replace("{store_dir}", store_dir).replace("{entry}", entry))
    pythonpath = {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return run_driver([sys.executable, str(script)], cwd=directory, timeout=timeout, env=pythonpath)


def test_a_workflow_defined_in_a_plain_script_runs_on_ray(tmp_path: Path) -> None:
    done = _run_script(tmp_path, GUARDED, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "outcomes": ["transitioned", "ended"],
        "state": {"text": "hello", "reviews": 1},
        # The driver resolves the shipped module to its own __main__: no second import.
        "state_is_this_scripts_class": True,
        "procedure": "End",
        "modules": [],
    }


def test_a_script_without_a_main_guard_fails_with_what_to_write(tmp_path: Path) -> None:
    done = _run_script(tmp_path, UNGUARDED, timeout=300)
    assert done.returncode != 0
    assert "sopy_actors.init() was called in a Ray worker process" in done.stderr, done.stderr[-3000:]
    assert 'under `if __name__ == "__main__":`' in done.stderr
