"""A file migration SOP with the shape of SOPy's file_system_operator example, in sopy_actors.

Written from the behaviour described in the SOPy spec (section 6.1), not from SOPy's code: read a
directory, back every file up, copy every file to the destination, then delete the backups and
the originals; a copy that keeps failing aborts and deletes what was copied. The tests render its
SOP prompt in SOPy's style. Event names follow SOPy's tutorials (`eReadDirectory`, ...).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from sopy_actors import End, Event, Procedure, Prompt, cond, handler, make_prompt

OBJECTIVE = "Migrate files from source to destination with backup safety"


class FSInfo(BaseModel):
    src_path: str = Field(description="the directory the files are migrated from")
    dst_path: str = Field(description="the directory the files are migrated to")
    backup_path: str = Field(description="the directory the files are backed up to first")
    path_read: set[str] = Field(default_factory=set, description="the files read from the source directory")
    path_backuped: set[str] = Field(default_factory=set, description="the source files already backed up")
    files_in_backup: set[str] = Field(default_factory=set, description="the backup copies made")
    files_in_migration: set[str] = Field(default_factory=set, description="the migrated copies made")


class eReadDirectory(Event[tuple[str, list[str] | None]]):
    """A directory was listed: (path, file names), or (path, None) when it could not be read."""


class eCopyRequest(Event[tuple[str, str]]):
    """The agent asked to copy a file: (source, destination)."""


class eFileCopied(Event[tuple[str, str] | None]):
    """A copy finished: (source, destination), or None when it failed."""


class eFileDeleteRequest(Event[str]):
    """The agent asked to delete a file (its path)."""


class eFileDeleted(Event[str | None]):
    """A file was deleted (its path), or None when the deletion failed."""


class ReadDir(Procedure[FSInfo]):
    prompt = make_prompt("Read the directory to be migrated")

    @handler
    def on_directory_read(self, state: FSInfo, event: eReadDirectory) -> Procedure[FSInfo] | str:
        path, names = event.payload
        if names is None:
            return f"Failed to read directory {path}. Please check the path and try again."
        state.path_read |= {f"{path}/{name}" for name in names}
        state.src_path = path
        return BackUpCopy(prompt=make_prompt("For each file in the directory, copy it to the given backup location."))


class Copy(Procedure[FSInfo]):
    """The shared base of both copy rounds: counts failures and checks each request."""

    def __init__(self, *, prompt: Prompt) -> None:
        super().__init__(prompt=prompt)
        self.copied: dict[str, str] = {}  # destination -> source
        self.retry = 2

    @handler
    def on_copy_request(self, state: FSInfo, event: eCopyRequest) -> Procedure[FSInfo]:
        if cond(self.retry == 0, "retry limit is reached"):
            return Abort()
        source, destination = event.payload
        assert source.startswith(state.src_path), f"Source {source} is not from the source path {state.src_path}."
        assert source in state.path_read, f"Source {source} not in read paths."
        assert destination not in self.copied, f"File {destination} was already copied from {self.copied.get(destination)}."
        return self


class BackUpCopy(Copy):
    @handler
    def on_file_copied(self, state: FSInfo, event: eFileCopied) -> Procedure[FSInfo]:
        if event.payload is None:
            self.retry -= 1
            return self
        source, destination = event.payload
        assert destination.startswith(state.backup_path), (
            f"Destination {destination} is not in the backup path {state.backup_path}. Back up first."
        )
        self.copied[destination] = source
        state.path_backuped.add(source)
        state.files_in_backup.add(destination)
        if cond(state.path_read == state.path_backuped, "all files copied to backup location"):
            return MigrateCopy(prompt=make_prompt("For each file in the directory, copy it to the migrate location."))
        return self


class MigrateCopy(Copy):
    @handler
    def on_file_copied(self, state: FSInfo, event: eFileCopied) -> Procedure[FSInfo]:
        if event.payload is None:
            self.retry -= 1
            return self
        source, destination = event.payload
        self.copied[destination] = source
        state.files_in_migration.add(destination)
        if cond(state.path_read == set(self.copied.values()), "all files copied to the migration location"):
            return Clear()
        return self


class Clear(Procedure[FSInfo]):
    prompt = make_prompt(
        "Delete the backup files and the original files (not the original directory) and finish the procedure."
    )

    def __init__(self) -> None:
        super().__init__()
        self.deleted: set[str] = set()

    @handler
    def on_delete_request(self, state: FSInfo, event: eFileDeleteRequest) -> Procedure[FSInfo]:
        path = event.payload
        assert path not in self.deleted, f"File {path} is already deleted."
        assert path in state.files_in_backup or path in state.path_read, f"File {path} not in backup files. Cannot delete."
        return self

    @handler
    def on_file_deleted(self, state: FSInfo, event: eFileDeleted) -> Procedure[FSInfo] | str:
        path = event.payload
        if path is None:
            return "Failed to delete the file. Please try again."
        self.deleted.add(path)
        state.files_in_backup.discard(path)
        state.path_read.discard(path)
        if cond(not state.files_in_backup and not state.path_read, "all files deleted from backup location"):
            return End()
        return self


class Abort(Procedure[FSInfo]):
    prompt = make_prompt("Delete all copied backup files and migrated files (if any), and abort the procedure")

    def __init__(self) -> None:
        super().__init__()
        self.deleted_backup: set[str] = set()
        self.deleted_migration: set[str] = set()

    @handler
    def on_delete_request(self, state: FSInfo, event: eFileDeleteRequest) -> Procedure[FSInfo] | str:
        path = event.payload
        if path.startswith(state.backup_path):
            assert path not in self.deleted_backup, f"Backup {path} is already deleted."
        elif path.startswith(state.dst_path):
            assert path not in self.deleted_migration, f"Migrated file {path} is already deleted."
        else:
            return f"File {path} is not from the backup or migration path. Cannot delete."
        return self

    @handler
    def on_file_deleted(self, state: FSInfo, event: eFileDeleted) -> Procedure[FSInfo] | str:
        path = event.payload
        if path is None:
            return "Failed to delete the file. Please try again."
        if path.startswith(state.backup_path):
            self.deleted_backup.add(path)
        elif path.startswith(state.dst_path):
            self.deleted_migration.add(path)
        else:
            return f"File {path} is not from the backup or migration path. Cannot delete."
        if cond(
            self.deleted_backup == state.files_in_backup and self.deleted_migration == state.files_in_migration,
            "backups and partially migrated files are deleted",
        ):
            return End()
        return self
