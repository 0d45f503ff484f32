"""Tools written as SOPy writes them, and the SOPs that guard them (importable by Ray workers).

- `read_dir` / `cp`: a backup workflow in the shape of SOPy's file_system_operator example.
  `eCopyRequest` has its own constructor, `(toolUseId, source, dest)`, so the guard builds it
  SOPy's way: `eCopyRequest(toolUseId=..., **tool_input)`.
- `DatabaseConnection`: SOPy tutorial 7's stateful tools, `@tool` methods of an object that
  the agent is given as `tools=[db.connect, db.query]`.

Every tool appends its name to `calls.log` in its directory, so a test can see which tools
really ran. `LocalOwner` lets the guard send events to an SOP run in this process.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from sopy_actors import SOP, End, Event, Procedure, handler, make_prompt, tool
from sopy_actors.runtime.messages import Receipt
from sopy_actors.testing import LocalSOP


def _log(directory: str | Path, name: str) -> None:
    with (Path(directory) / "calls.log").open("a") as log:
        log.write(name + "\n")


def calls(directory: Path) -> list[str]:
    """The tools that ran with `directory` as their log directory, in order."""
    log = directory / "calls.log"
    return log.read_text().split() if log.exists() else []


# -- a backup workflow with SOPy-style tool events ----------------------------------------------


class BackupState(BaseModel):
    source: str
    backup: str
    listed: list[str] = Field(default_factory=list)
    copied: list[str] = Field(default_factory=list)


class eReadDirectory(Event[tuple[str, list[str] | None]]):
    """A directory was listed: (path, file names), or (path, None) when it could not be read."""


class eCopyRequest(Event[tuple[str, str]]):
    """The agent asks to copy a file: (source, dest); built from the tool call, as in SOPy."""

    def __init__(self, toolUseId: str, source: str, dest: str) -> None:
        super().__init__(toolUseId=toolUseId, payload=(source, dest))


class eFileCopied(Event[tuple[str, str] | None]):
    """A copy finished: (source, dest), or None when it failed."""


@tool(eReadDirectory)
def read_dir(path: str) -> tuple[str, list[str] | None]:
    """List the files of a directory.

    Args:
        path: the directory.
    """
    _log(path, "read_dir")
    directory = Path(path)
    names = sorted(p.name for p in directory.iterdir() if p.is_file() and p.name != "calls.log")
    return path, names


@tool(eFileCopied, eCopyRequest)
def cp(source: str, dest: str) -> tuple[str, str] | None:
    """Copy a file.

    Args:
        source: the file to copy.
        dest: where the copy goes.
    """
    _log(Path(source).parent, "cp")
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, dest)
    return source, dest


class ReadDir(Procedure[BackupState]):
    prompt = make_prompt("Read the directory to be backed up")

    @handler
    def on_directory(self, state: BackupState, event: eReadDirectory) -> Procedure[BackupState] | str:
        path, names = event.payload
        if names is None:
            return f"Failed to read directory {path}. Please check the path and try again."
        state.listed = [f"{path}/{name}" for name in names]
        return BackUpCopy()

    @handler
    def on_copy_request(self, state: BackupState, event: eCopyRequest) -> str:
        return f"Read {state.source} before copying {event.payload[0]}."


class BackUpCopy(Procedure[BackupState]):
    prompt = make_prompt("Copy every file into the backup directory")

    @handler
    def on_copy_request(self, state: BackupState, event: eCopyRequest) -> Procedure[BackupState] | str:
        dest = event.payload[1]
        if not dest.startswith(state.backup + "/"):
            return f"Destination {dest} is not in the backup directory {state.backup}."
        return self

    @handler
    def on_copied(self, state: BackupState, event: eFileCopied) -> Procedure[BackupState]:
        if event.payload is not None:
            state.copied.append(event.payload[0])
        return End() if sorted(state.copied) == sorted(state.listed) else self


def backup_sop(source: Path, backup: Path) -> SOP[BackupState]:
    """The backup workflow for one directory."""
    return SOP(state=BackupState(source=str(source), backup=str(backup)), init_proc=ReadDir(), retry_limits=5)


# -- SOPy tutorial 7: stateful tools ------------------------------------------------------------


class QueryState(BaseModel):
    rows: list[str] = Field(default_factory=list)


class ConnectionResult(Event[str]):
    """The connection string the database is now connected to."""


class QueryRequested(Event[str]):
    """The agent asks to run a query (its SQL); built from the tool call, as in SOPy."""

    def __init__(self, toolUseId: str, sql: str) -> None:
        super().__init__(toolUseId=toolUseId, payload=sql)


class QueryResult(Event[list[str]]):
    """The rows a query returned."""


class DatabaseConnection:
    """A stateful tool object: `connect` must come before `query`, which counts its queries.

    Args:
        directory: where its calls are logged.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.connection: str | None = None
        self.queries = 0

    @tool(ConnectionResult)
    def connect(self, connection_string: str) -> str:
        """Connect to the database.

        Args:
            connection_string: where the database is.
        """
        _log(self.directory, "connect")
        self.connection = connection_string
        return connection_string

    @tool(QueryResult, QueryRequested)
    def query(self, sql: str) -> list[str]:
        """Run a query on the connected database.

        Args:
            sql: the query.
        """
        _log(self.directory, "query")
        if self.connection is None:
            raise RuntimeError("not connected")
        self.queries += 1
        return [f"{self.connection} #{self.queries}: {sql}"]


class Connecting(Procedure[QueryState]):
    prompt = make_prompt("Connect to the database")

    @handler
    def on_connected(self, state: QueryState, event: ConnectionResult) -> Procedure[QueryState]:
        return Querying()

    @handler
    def on_query(self, state: QueryState, event: QueryRequested) -> str:
        return f"Connect before running {event.payload}."


class Querying(Procedure[QueryState]):
    prompt = make_prompt("Run the report query")

    @handler
    def on_query(self, state: QueryState, event: QueryRequested) -> Procedure[QueryState] | str:
        if not event.payload.startswith("SELECT"):
            return f"Only SELECT queries are allowed, not {event.payload}."
        return self

    @handler
    def on_rows(self, state: QueryState, event: QueryResult) -> Procedure[QueryState]:
        state.rows = event.payload
        return End()


def query_sop() -> SOP[QueryState]:
    """The report-query workflow."""
    return SOP(state=QueryState(), init_proc=Connecting(), retry_limits=5)


# -- an SOP in this process, as the guard's owner ----------------------------------------------


class LocalOwner:
    """Stands in for an SOPHandle as the guard's owner: an SOP run in this process.

    Answers each event with the Receipt the SOP host gives (procedure, recovery prompt and the
    current procedure's instruction).

    Args:
        sop: the SOP to run.
    """

    def __init__(self, sop: SOP[Any]) -> None:
        self.run = LocalSOP(sop)
        self.sop_id = self.run.sop_id
        self.events: list[Event[Any]] = []

    async def send_async(self, event: Event[Any]) -> Receipt:
        """Apply the event; what the SOP did, as a Receipt."""
        self.events.append(event)
        transition = self.run.send(event)
        return Receipt(
            outcome=transition.outcome,
            procedure=self.run.procedure_name,
            version=self.run.version,
            prompt=transition.prompt,
            instruction=str(self.run.procedure.prompt),
        )
