"""Guarded file migration: back up every file before migrating it; roll back on failure.

The SOP governs whoever does the file operations (here an agent's tools, `tools.py`): each
operation is asked for before it runs (`BackupRequested`, `MigrationRequested`,
`DeletionRequested`, `RestoreRequested`) and reported after (`BackupCopied`, `FileMigrated`,
...), and the current procedure accepts it, moves the SOP on, or rejects it with a recovery
prompt. A migration asked for before every file is backed up is refused, and so is a deletion
of a file that has no backup: the tool never runs.

    ReadFiles -> BackUpCopy (once per file) -> Migrate (once per file) -> ClearSource -> End
                                                 \\-> RollBack (once per migrated file) -> End

Core only: this module imports no Ray and no agent code. Draw and check it with
`sopy-actors graph examples/guarded_migration/workflow.py:ReadFiles --format mermaid` and
`sopy-actors check examples/guarded_migration/workflow.py:ReadFiles`.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from sopy_actors import SOP, End, Event, Procedure, cond, handler, make_prompt

__all__ = [
    "BackUpCopy",
    "BackupCopied",
    "BackupRequested",
    "ClearSource",
    "DeletionRequested",
    "FileCopy",
    "FileList",
    "FileMigrated",
    "FileRestored",
    "FilesRead",
    "Migrate",
    "MigrationFailed",
    "MigrationFailure",
    "MigrationRequested",
    "MigrationState",
    "ReadFiles",
    "Restore",
    "RestoreRequested",
    "RollBack",
    "SourceCleared",
    "SourceClearing",
    "Step",
    "migration_sop",
    "sop",
]


class MigrationState(BaseModel):
    """What the migration knows and has done so far."""

    source_dir: str
    dest_dir: str
    backup_dir: str
    files: list[str] = Field(default_factory=list)
    backed_up: list[str] = Field(default_factory=list)
    migrated: list[str] = Field(default_factory=list)
    source_cleared: bool = False
    failure: str | None = None


Step = Procedure[MigrationState]
"""What a handler returns to move on (or a str to reject the event)."""


class FileList(BaseModel):
    """The files found in a directory."""

    files: list[str]


class FileCopy(BaseModel):
    """One file copied from one directory to another."""

    path: str
    to_dir: str


class SourceClearing(BaseModel):
    """The files removed from the source directory."""

    removed: list[str]


class Restore(BaseModel):
    """Put one file back from the backup directory and drop its migrated copy."""

    path: str
    backup_dir: str
    dest_dir: str


class MigrationFailure(BaseModel):
    """A file operation that failed."""

    path: str
    reason: str


class BackupRequested(Event[FileCopy]):
    """A file is about to be copied into the backup directory."""


class MigrationRequested(Event[FileCopy]):
    """A file is about to be copied into the destination directory."""


class DeletionRequested(Event[list[str]]):
    """Files are about to be deleted."""


class RestoreRequested(Event[Restore]):
    """A file is about to be restored from the backup directory."""


class FilesRead(Event[FileList]):
    """The source directory was listed."""


class BackupCopied(Event[FileCopy]):
    """A file was copied into the backup directory."""


class FileMigrated(Event[FileCopy]):
    """A file was moved into the destination directory."""


class SourceCleared(Event[SourceClearing]):
    """The migrated files were deleted from the source directory."""


class FileRestored(Event[FileCopy]):
    """A migrated file was put back from the backup directory."""


class MigrationFailed(Event[MigrationFailure]):
    """A copy, move or delete failed."""


class ReadFiles(Procedure[MigrationState]):
    """Entry: find out what there is to migrate."""

    prompt = make_prompt("List the files in the source directory.")

    @handler
    def on_files_read(self, state: MigrationState, event: FilesRead) -> Step:
        state.files = list(event.payload.files)
        if cond(not state.files, "the source directory is empty"):
            return End(prompt=make_prompt("There is nothing to migrate."))
        return BackUpCopy()


class BackUpCopy(Procedure[MigrationState]):
    """Copy every file to the backup directory; nothing moves before that."""

    prompt = make_prompt("Copy each file from the source directory to the backup directory.")

    @handler
    def on_backup_requested(self, state: MigrationState, event: BackupRequested) -> Step | str:
        if event.payload.path not in state.files:
            return f"{event.payload.path} was not read from {state.source_dir}; back up only those files."
        if event.payload.to_dir != state.backup_dir:
            return f"Back up into {state.backup_dir}, not {event.payload.to_dir}."
        return self

    @handler
    def on_backup_copied(self, state: MigrationState, event: BackupCopied) -> Step | str:
        path = event.payload.path
        if path not in state.files:
            return f"{path} was not read from {state.source_dir}; back up only those files."
        if path not in state.backed_up:
            state.backed_up.append(path)
        if cond(set(state.backed_up) == set(state.files), "every file is backed up"):
            return Migrate()
        return self

    @handler
    def on_early_migration(self, state: MigrationState, event: MigrationRequested | FileMigrated) -> str:
        missing = sorted(set(state.files) - set(state.backed_up))
        return f"Do not migrate {event.payload.path} yet: first back up {', '.join(missing)}."

    @handler
    def on_early_deletion(self, state: MigrationState, event: DeletionRequested) -> str:
        return "Delete nothing before every file is backed up and migrated."

    @handler
    def on_failure(self, state: MigrationState, event: MigrationFailed) -> Step:
        state.failure = f"{event.payload.path}: {event.payload.reason}"
        return End(prompt=make_prompt("The backup failed; nothing was migrated."))


class Migrate(Procedure[MigrationState]):
    """Move every backed-up file to the destination directory."""

    prompt = make_prompt("Move each file from the source directory to the destination directory.")

    @handler
    def on_migration_requested(self, state: MigrationState, event: MigrationRequested) -> Step | str:
        if event.payload.path not in state.backed_up:
            return f"{event.payload.path} has no backup; only migrate the files in {state.backup_dir}."
        if event.payload.to_dir != state.dest_dir:
            return f"Migrate into {state.dest_dir}, not {event.payload.to_dir}."
        return self

    @handler
    def on_early_deletion(self, state: MigrationState, event: DeletionRequested) -> str:
        pending = sorted(set(state.files) - set(state.migrated))
        return f"Delete nothing yet: first migrate {', '.join(pending)}."

    @handler
    def on_file_migrated(self, state: MigrationState, event: FileMigrated) -> Step | str:
        path = event.payload.path
        if not cond(path in state.backed_up, "the file is backed up"):
            return f"{path} has no backup; only migrate the files in {state.backup_dir}."
        if path not in state.migrated:
            state.migrated.append(path)
        if cond(set(state.migrated) == set(state.files), "every file is migrated"):
            return ClearSource()
        return self

    @handler
    def on_failure(self, state: MigrationState, event: MigrationFailed) -> Step:
        state.failure = f"{event.payload.path}: {event.payload.reason}"
        if cond(not state.migrated, "no file was migrated yet"):
            return End(prompt=make_prompt("The migration failed before any file was moved."))
        return RollBack()


class ClearSource(Procedure[MigrationState]):
    """Delete the originals once every file is in the destination."""

    prompt = make_prompt("Delete the migrated files from the source directory.")

    @handler
    def on_deletion_requested(self, state: MigrationState, event: DeletionRequested) -> Step | str:
        unsafe = [path for path in event.payload if path not in state.migrated]
        if unsafe:
            return (
                f"{', '.join(unsafe)} has no backup and was not migrated; delete only "
                f"{', '.join(state.migrated)}."
            )
        return self

    @handler
    def on_source_cleared(self, state: MigrationState, event: SourceCleared) -> Step | str:
        if cond(set(event.payload.removed) != set(state.files), "a file was not removed"):
            return "Remove every migrated file from the source directory, then report again."
        state.source_cleared = True
        return End(prompt=make_prompt("The files are migrated and the source directory is clear."))

    @handler
    def on_failure(self, state: MigrationState, event: MigrationFailed) -> Step:
        state.failure = f"{event.payload.path}: {event.payload.reason}"
        return RollBack()


class RollBack(Procedure[MigrationState]):
    """Undo the migration file by file, from the backup."""

    prompt = make_prompt(
        "Restore each migrated file from the backup directory into the source directory."
    )

    @handler
    def on_restore_requested(self, state: MigrationState, event: RestoreRequested) -> Step | str:
        if event.payload.path not in state.migrated:
            return f"{event.payload.path} was not migrated; restore only {', '.join(state.migrated)}."
        return self

    @handler
    def on_file_restored(self, state: MigrationState, event: FileRestored) -> Step | str:
        path = event.payload.path
        if path not in state.migrated:
            return f"{path} was not migrated; restore only {', '.join(state.migrated)}."
        state.migrated.remove(path)
        if cond(not state.migrated, "every migrated file is restored"):
            return End(prompt=make_prompt("The migration was rolled back."))
        return self


def migration_sop(source_dir: str, dest_dir: str, backup_dir: str) -> SOP[MigrationState]:
    """The migration SOP for three directories, entering at ReadFiles."""
    state = MigrationState(source_dir=source_dir, dest_dir=dest_dir, backup_dir=backup_dir)
    return SOP(state, ReadFiles(), retry_limits=3)


sop = migration_sop("data/source", "data/dest", "data/backup")
