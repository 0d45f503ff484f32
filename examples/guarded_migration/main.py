"""An agent migrates real files under the backup-first SOP: `sopy-actors run examples/guarded_migration/main.py`.

Two runs, each `with sop: agent("Execute the workflow")` in SOPy's style (the agent runs in its
own actor; every tool call is first sent to the SOP, on its host, and runs only if accepted):
1. a clean migration whose script also tries two off-procedure calls, which the SOP refuses
   before the tools run: migrating before the backup, and deleting a file that has no backup;
2. a migration that really fails half-way (the destination holds a directory where a file
   should go), which the agent reports, and the SOP makes it roll back from the backup.

Offline, the agent plays a script (`ScriptedModel`); with SOPY_MODEL set (for example
`openai:gpt-4o-mini`) the same runs use that model, guided by the SOP prompt.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tools import ALL_TOOLS
from workflow import ReadFiles, migration_sop

from sopy_actors import ScriptedModel, StrandsAgent
from sopy_actors.core.graph import ProcedureGraph, make_prompt_from_procedure

FILES = {"a.txt": "alpha\n", "b.txt": "bravo\n", "c.txt": "charlie\n"}


def make_tree(root: Path, *, conflict: str | None = None) -> dict[str, str]:
    """Source files, empty backup and destination directories, and a file outside all three."""
    dirs = {name: str(root / name) for name in ("source", "backup", "dest")}
    for directory in dirs.values():
        Path(directory).mkdir(parents=True)
    for name, text in FILES.items():
        (root / "source" / name).write_text(text)
    (root / "config.ini").write_text("[keep]\nthis file is not part of the migration\n")
    if conflict is not None:  # a directory where the migrated file should go: the copy fails
        (root / "dest" / conflict).mkdir()
    return dirs


def clean_script(dirs: dict[str, str]) -> list[Any]:
    """Read, try to migrate too early, back up, migrate, try to delete too much, clear."""
    source = [str(Path(dirs["source"]) / name) for name in FILES]
    return [
        {"tool": "list_files", "input": {"directory": dirs["source"]}},
        {"tool": "migrate", "input": {"path": source[0], "to_dir": dirs["dest"]}},  # before backup
        *({"tool": "back_up", "input": {"path": p, "to_dir": dirs["backup"]}} for p in source),
        *({"tool": "migrate", "input": {"path": p, "to_dir": dirs["dest"]}} for p in source),
        {"tool": "delete_files", "input": {"paths": [*source, str(Path(dirs["source"]).parent / "config.ini")]}},
        {"tool": "delete_files", "input": {"paths": source}},
        "Migration complete: {result}",
    ]


def failing_script(dirs: dict[str, str]) -> list[Any]:
    """Back up, migrate a.txt, fail on b.txt, report it, restore a.txt."""
    a, b = (str(Path(dirs["source"]) / name) for name in ("a.txt", "b.txt"))
    return [
        {"tool": "list_files", "input": {"directory": dirs["source"]}},
        *({"tool": "back_up", "input": {"path": str(Path(dirs["source"]) / n), "to_dir": dirs["backup"]}} for n in FILES),
        {"tool": "migrate", "input": {"path": a, "to_dir": dirs["dest"]}},
        {"tool": "migrate", "input": {"path": b, "to_dir": dirs["dest"]}},  # fails for real
        {"tool": "report_failure", "input": {"path": b, "reason": "the copy into the destination failed"}},
        {"tool": "restore", "input": {"path": a, "backup_dir": dirs["backup"], "dest_dir": dirs["dest"]}},
        "Rolled back: {result}",
    ]


def system_prompt(dirs: dict[str, str]) -> str:
    """The SOP prompt plus the directories, for a real model (the script ignores it)."""
    sop_prompt = make_prompt_from_procedure(ReadFiles(), "migrating files with a backup first")
    return (
        f"{sop_prompt}\n\nSource directory: {dirs['source']}\nBackup directory: {dirs['backup']}\n"
        f"Destination directory: {dirs['dest']}\nUse absolute paths and one file per call. If a tool "
        "fails, report it with report_failure, then follow the procedure."
    )


def listing(root: Path) -> dict[str, list[str]]:
    """The files in each directory of a run."""
    return {d: sorted(p.name for p in (root / d).iterdir()) for d in ("source", "backup", "dest")}


def run(title: str, root: Path, dirs: dict[str, str], steps: list[Any]) -> dict[str, Any]:
    """Drive one migration SOP with the agent and print what happened."""
    print(f"=== {title}")
    model = None if os.environ.get("SOPY_MODEL") else ScriptedModel(steps)
    agent = StrandsAgent(tools=ALL_TOOLS, system_prompt=system_prompt(dirs), model=model, name="migrator")
    sop = migration_sop(dirs["source"], dirs["dest"], dirs["backup"])
    with sop as handle:  # tool calls of agents called in this block go to this SOP
        result = agent("Execute the workflow")
    print("--- tool calls")
    for call in result.tool_calls:
        shown = ", ".join(f"{k}={Path(v).name if isinstance(v, str) else v}" for k, v in call.input.items())
        print(f"{call.status:>8}  {call.name}({shown})" + (f"\n          {call.message}" if call.status != "ok" else ""))
    print("--- SOP transitions")
    for entry in handle.history():
        print(f"v{entry.version}: {entry.event_type} {entry.from_procedure} -> {entry.to_procedure} ({entry.outcome})")
    state = handle.state()
    print(f"--- agent said: {result.text}")
    print(f"--- tokens: {result.usage.input_tokens} in, {result.usage.output_tokens} out")
    print(f"--- files: {json.dumps(listing(root))}")
    return {
        "procedure": handle.status().procedure,
        "rejected": [call.name for call in result.rejected_tool_calls],
        "failed": [call.name for call in result.tool_calls if call.status == "error"],
        "migrated": [Path(p).name for p in state.migrated],
        "failure": state.failure,
        "files": listing(root),
    }


def main() -> dict[str, Any]:
    """Print the graph, run both migrations, print a JSON summary."""
    print(f"--- graph\n{ProcedureGraph.build(ReadFiles()).to_mermaid()}")
    work = Path(tempfile.mkdtemp(prefix="sopy-migration-"))
    print(f"--- working under {work}")
    clean_root, failing_root = work / "clean", work / "failing"
    clean_dirs, failing_dirs = make_tree(clean_root), make_tree(failing_root, conflict="b.txt")
    summary = {
        "clean": run("clean migration", clean_root, clean_dirs, clean_script(clean_dirs)),
        "failing": run("failing migration", failing_root, failing_dirs, failing_script(failing_dirs)),
    }
    print(f"--- summary {json.dumps(summary)}")
    return summary


if __name__ == "__main__":
    import sopy_actors

    sopy_actors.init()
    main()
