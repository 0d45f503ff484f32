"""In a Ray worker, data may make the process import the job's code or trusted modules, no others.

The job's code in a worker is what Ray puts on its path for the job: the runtime_env
working_dir and py_modules, and, for a job without a working_dir (this session's: it ships
`tests/` as py_modules, tests/conftest.py), its driver's current and script directories. A
module named by data anywhere else is refused before any of its code runs.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import ray

from sopy_actors.core.events import event_from_wire, event_to_wire
from sopy_actors.core.references import TRUSTED_MODULES_ENV, resolve_reference
from sopy_actors.errors import InputError, error_from_wire
from tests.support import docflow as d
from tests.support.processes import run_driver

pytestmark = pytest.mark.usefixtures("runtime")

# Importing the module leaves a file next to it: `<module>.ran`.
SIDE_EFFECT = """
import pathlib
pathlib.Path(__file__).with_suffix(".ran").write_text("imported")

class Thing:
    pass
"""


@ray.remote(num_cpus=0)
class Loader:
    """A fresh worker process of the job, loading what data names."""

    def __init__(self, extra_path: str | None = None) -> None:
        if extra_path is not None:  # importable here, but not the job's code
            sys.path.insert(0, extra_path)

    def loaded(self, module: str) -> bool:
        return module in sys.modules

    def load(self, what: str, name: str) -> str:
        """The file of the module `name` names (a reference or an event type), or why it was refused."""
        try:
            if what == "event type":
                loaded: Any = type(event_from_wire({"type": name, "data": {"payload": 1}}))
            else:
                loaded = resolve_reference(name)
        except InputError as error:
            return f"refused: {error}"
        return str(sys.modules[loaded.__module__].__file__)


def _planted(directory: Path) -> str:
    name = f"sidefx_{uuid.uuid4().hex[:8]}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.py").write_text(SIDE_EFFECT)
    return name


def test_a_worker_imports_modules_of_its_jobs_code_that_data_names() -> None:
    # The session's driver runs from the repository, without a working_dir: Ray puts its
    # current directory on the workers' path for the job (a local cluster shares the disk).
    loader = Loader.remote()  # type: ignore[attr-defined]
    assert not ray.get(loader.loaded.remote("tests.unit.core.test_codec"))
    file = ray.get(loader.load.remote("reference", "tests.unit.core.test_codec:Notes"))
    assert file == str(Path(__file__).resolve().parents[1] / "unit" / "core" / "test_codec.py")


# A driver of its own local cluster, with a working_dir (so Ray adds none of the driver's
# directories to the workers' path), set up as `sopy_actors.init()` sets it up: the driver and
# a worker task each load what the references name.
DRIVER = """
import json
import sys

import ray

from sopy_actors.runtime.main_module import ship_main_module


def load(references, outside):
    from sopy_actors.core.references import resolve_reference
    from sopy_actors.errors import InputError

    sys.path.insert(0, outside)  # importable there, but not the job's code
    files = {}
    for reference in references:
        try:
            files[reference] = sys.modules[resolve_reference(reference).__module__].__file__
        except InputError as error:
            files[reference] = f"refused: {error}"
    return files


arguments = json.loads(sys.argv[1])
runtime_env = ship_main_module(arguments["runtime_env"])
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)
try:
    worker = ray.get(ray.remote(load).remote(arguments["references"], arguments["outside"]), timeout=600)
    sys.path[:0] = arguments["driver_path"]  # where the driver itself imports its code from
    print(json.dumps({"worker": worker, "driver": load(arguments["references"], arguments["outside"])}))
finally:
    ray.shutdown()
"""


def _run_driver(directory: Path, arguments: dict[str, Any], timeout: float) -> dict[str, dict[str, str]]:
    """Run DRIVER in `directory` (see `run_driver`); the JSON it prints last."""
    (directory / "driver.py").write_text(DRIVER)
    done = run_driver([sys.executable, "driver.py", json.dumps(arguments)], cwd=directory, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    files: dict[str, dict[str, str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return files


def test_the_runtime_env_working_dir_and_py_modules_are_the_jobs_code_in_workers_and_driver(tmp_path: Path) -> None:
    package = f"flows_{uuid.uuid4().hex[:8]}"
    (tmp_path / "lib" / package).mkdir(parents=True)
    (tmp_path / "lib" / package / "__init__.py").write_text("")
    in_working_dir = _planted(tmp_path / "wd")
    in_py_modules = f"{package}.{_planted(tmp_path / 'lib' / package)}"
    outside = _planted(tmp_path / "outside")
    (tmp_path / "run").mkdir()  # the driver's current and script directory
    loaded = _run_driver(tmp_path / "run", {
        "runtime_env": {"working_dir": str(tmp_path / "wd"), "py_modules": [str(tmp_path / "lib" / package)]},
        "references": [f"{name}:Thing" for name in (in_working_dir, in_py_modules, outside)],
        "outside": str(tmp_path / "outside"),
        "driver_path": [str(tmp_path / "wd"), str(tmp_path / "lib")],
    }, timeout=600)
    worker, driver = loaded["worker"], loaded["driver"]
    for name in (in_working_dir, in_py_modules):
        assert "/runtime_resources/" in worker[f"{name}:Thing"], worker  # the copies Ray unpacked
        assert worker[f"{name}:Thing"].endswith(f"{name.replace('.', '/')}.py")
    assert driver[f"{in_working_dir}:Thing"] == str(tmp_path / "wd" / f"{in_working_dir}.py")
    assert driver[f"{in_py_modules}:Thing"] == str(tmp_path / "lib" / package / f"{in_py_modules.partition('.')[2]}.py")
    refusal = f"refused: Cannot load {outside}:Thing: refusing to import module {outside} named by data"
    assert worker[f"{outside}:Thing"].startswith(refusal) and driver[f"{outside}:Thing"].startswith(refusal)
    assert not (tmp_path / "outside" / f"{outside}.ran").exists()


@pytest.mark.parametrize("what", ["reference", "event type"])
def test_a_worker_refuses_a_module_outside_the_jobs_code_without_importing_it(tmp_path: Path, what: str) -> None:
    name = _planted(tmp_path)
    loader = Loader.remote(str(tmp_path))  # type: ignore[attr-defined]
    refusal = ray.get(loader.load.remote(what, f"{name}:Thing"))
    assert refusal.startswith("refused: ")
    assert f"refusing to import module {name} named by data: {tmp_path / name}.py is not part of the job's code" in refusal
    assert not ray.get(loader.loaded.remote(name))
    assert not (tmp_path / f"{name}.ran").exists()


def test_a_worker_imports_a_module_trusted_by_its_runtime_env(tmp_path: Path) -> None:
    name = _planted(tmp_path)
    trusting = Loader.options(runtime_env={"env_vars": {TRUSTED_MODULES_ENV: name}})  # type: ignore[attr-defined]
    loader = trusting.remote(str(tmp_path))
    assert ray.get(loader.load.remote("reference", f"{name}:Thing")) == str(tmp_path / f"{name}.py")
    assert (tmp_path / f"{name}.ran").read_text() == "imported"


def test_an_event_type_naming_an_installed_module_is_refused_by_the_procedure_actor(runtime: Any) -> None:
    # `this` prints the Zen of Python when imported: on the workers' path, but not the job's code.
    handle = d.make_sop().start()
    wire = event_to_wire(d.DraftWritten(payload=d.Draft(text="x")))
    wire["type"] = "this:Zen"
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    reply: Any = ray.get(host.send.remote(handle.sop_id, wire, None, None))
    error = error_from_wire(reply["error"])
    assert isinstance(error, InputError) and error.fields == ("type",)
    assert "Unknown event type 'this:Zen': refusing to import module this named by data" in str(error)
    assert f"{TRUSTED_MODULES_ENV}=this" in str(error)
    assert handle.status().version == 0

