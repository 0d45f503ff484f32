"""Ship the script a driver runs (`python FILE.py`) to the cluster as an importable module.

Other Ray processes load workflow classes, tools and probe functions by `module:qualname`,
and a class defined in the script that is run has the module `__main__`, which names a
different module in every process. So `sopy_actors.init()` copies the script into a temporary
directory as `_sopy_main_<stem>.py`, where `<stem>` is the file name without `.py`, each
character that is not an ASCII letter, digit or `_` replaced by `_` (`my-flow.py` becomes
`_sopy_main_my_flow`). That name is always an identifier, cannot collide with a module users
write or install, and survives edits to the script, so SOPs stored by an earlier run of it stay
readable. The copy goes to Ray as a single-file `py_modules` entry: Ray zips the file alone and
puts its directory on the workers' path (`ray/_private/runtime_env/py_modules.py`; a directory
entry would instead become a package named after the directory). References then name that
module (`sopy_actors.core.references.register_main_module`).

Workers import the script as a module, so its `if __name__ == "__main__":` block does not run
there; `init()` in a worker process means the script's entry code is unguarded, and is refused.

The local `working_dir` and `py_modules` paths of the runtime_env are the job's code in the
driver too: they are registered as code directories, whose modules the driver may import when
data names them (`sopy_actors.core.references.load_module`).
Runs in the driver, before `ray.init`.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import ray

from sopy_actors.core.references import register_code_directories, register_main_module
from sopy_actors.errors import InputError

__all__ = ["ship_main_module"]

_PREFIX = "_sopy_main_"
_PACKAGE = Path(__file__).resolve().parents[1]


def ship_main_module(runtime_env: dict[str, Any] | None) -> dict[str, Any] | None:
    """The runtime_env for `ray.init`: the user's, plus the driver's script when it is one.

    Registers the runtime_env's local `working_dir` and `py_modules` paths as this driver's
    code directories (`register_code_directories`). Ships only a plain script (`python
    FILE.py`: `__main__` has a `.py` file and no module spec) outside this package. Nothing is
    shipped for interactive sessions (no file),
    `python -m module` (its code has a module name already) or console scripts such as
    `sopy-actors` and `pytest` (files without `.py`). `sopy-actors run FILE.py` runs as
    `sopy-actors` or `python -m sopy_actors.cli`: it imports FILE under its own module name and
    ships FILE's directory itself. Nothing is shipped (or registered) either when Ray is
    already connected in this process: its job's runtime_env is fixed then.

    Args:
        runtime_env: the runtime_env passed to `sopy_actors.init()`; it is not modified.

    Returns:
        `runtime_env` with the script copy appended to its `py_modules`, or `runtime_env`
        itself when there is nothing to ship.

    Raises:
        InputError: called in a Ray worker process (an unguarded script being imported there),
            or `runtime_env["py_modules"]` is not a list.
    """
    if ray._private.worker.global_worker.mode == ray._private.worker.WORKER_MODE:
        shipped = next((name for name in sys.modules if name.startswith(_PREFIX)), None)
        raise InputError(
            "sopy_actors.init() was called in a Ray worker process"
            + (f" while it imported the driver's script (as module {shipped})" if shipped else "")
            + ": workers import the script to load its classes, so put the script's entry code "
            "(init(), starting SOPs, ...) under `if __name__ == \"__main__\":`"
        )
    if ray.is_initialized():
        return runtime_env
    register_code_directories(_local_code(runtime_env))
    script = _main_script()
    if script is None:
        return runtime_env
    modules = (runtime_env or {}).get("py_modules", [])
    if not isinstance(modules, list):
        raise InputError(
            f"runtime_env['py_modules'] must be a list, got {type(modules).__name__}",
            fields=("runtime_env",),
        )
    name = _PREFIX + re.sub(r"[^0-9A-Za-z_]", "_", script.stem)
    directory = Path(tempfile.mkdtemp(prefix="sopy-main-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)  # ray.init has uploaded it by then
    copy = directory / f"{name}.py"
    shutil.copyfile(script, copy)
    register_main_module(name)
    return {**(runtime_env or {}), "py_modules": [*modules, str(copy)]}


def _local_code(runtime_env: dict[str, Any] | None) -> list[Path]:
    """The local directories and files of a runtime_env's `working_dir` and `py_modules` (no URIs)."""
    env = runtime_env or {}
    modules = env.get("py_modules")
    entries = [env.get("working_dir"), *(modules if isinstance(modules, list) else [])]
    return [Path(entry) for entry in entries if isinstance(entry, str | os.PathLike) and Path(entry).exists()]


def _main_script() -> Path | None:
    """The file of `__main__` when this process was started as `python FILE.py`, else None."""
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    if not isinstance(file, str) or getattr(main, "__spec__", None) is not None:
        return None
    path = Path(file).resolve()
    if path.suffix != ".py" or not path.is_file() or _PACKAGE in path.parents:
        return None
    return path
