"""SOPy's file_system_operator example (tutorial 8), re-implemented from its described behaviour.

Read a directory, back every file up, copy every file to the destination, then delete the
backups and the originals; a copy that fails twice aborts, and Abort deletes what was copied.
Procedure attributes are sets, as in SOPy's example. Kept free of strands and Ray: the tools are
in `file_system_tools`.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from sopy_actors.sopy import SOP, End, Event, Procedure, Prompt, handler, make_prompt
from sopy_actors.sopy.prompt import cond
from sopy_actors.sopy.utils import Log

OBJECTIVE = "Migrate files from source to destination with backup safety"


class FSInfo(BaseModel):
    src_path: str = Field(..., description="The directory the files are migrated from.")
    dst_path: str = Field(..., description="The directory the files are migrated to.")
    backup_path: str = Field(..., description="The directory the files are backed up to first.")
    path_read: set[str] = Field(default_factory=set, description="The files read from the source directory.")
    path_copied: set[str] = Field(default_factory=set, description="The files copied to the destination.")
    path_backuped: set[str] = Field(default_factory=set, description="The source files already backed up.")
    files_in_backup: set[str] = Field(default_factory=set, description="The backup copies made.")
    files_in_migration: set[str] = Field(default_factory=set, description="The migrated copies made.")


class eReadDirectory(Event[tuple[str, list[str] | None]]):
    """A directory was listed: (path, names), or (path, None) when it is not a directory."""


class eFileDeleteRequest(Event[str]):
    """The agent asks to delete a file (a tool use event: built from the tool's input)."""

    def __init__(self, toolUseId: str, path: str) -> None:
        super().__init__(toolUseId=toolUseId, payload=path)


class eFileDeleted(Event[str | None]):
    """A file was deleted (its path), or None when the deletion failed."""


class eCopyRequest(Event[tuple[str, str]]):
    """The agent asks to copy a file (a tool use event: built from the tool's input)."""

    def __init__(self, toolUseId: str, source: str, dest: str) -> None:
        super().__init__(toolUseId=toolUseId, payload=(source, dest))


class eFileCopied(Event[tuple[str, str] | None]):
    """A copy finished: (source, destination), or None when it failed."""


class ReadDir(Procedure[FSInfo]):
    prompt = make_prompt("Read the directory to be migrated")

    @handler
    def handle_eReadDirectory(self, sigma: FSInfo, event: eReadDirectory):
        path, names = event.payload
        if names is None:
            return f"Failed to read directory {path}. Please check the path and try again."
        sigma.path_read |= {f"{path}/{name}" for name in names}
        sigma.src_path = path
        Log.debug(f"Directory read {path} with files: {' | '.join(sorted(sigma.path_read))}")
        return BackUpCopy(prompt=make_prompt("For each file in the directory, copy it to the given backup location."))


class Copy(Procedure[FSInfo]):
    """Both copy rounds: two failed copies abort; each request is checked before it runs."""

    def __init__(self, prompt: Prompt) -> None:
        self.prompt = prompt
        self.copied: set[str] = set()
        self.srcs: set[str] = set()
        self.kv: dict[str, str] = {}
        self.retry = 2

    @handler
    def handle_eCopyRequest(self, sigma: FSInfo, event: eCopyRequest):
        if cond(self.retry == 0, "retry limit is reached"):
            return Abort()
        src, dst = event.payload
        assert src.startswith(sigma.src_path), f"Source {src} is not from the source path {sigma.src_path}."
        assert src in sigma.path_read, f"Source {src} not in read paths."
        assert dst not in self.copied, f"File {dst} already exists in this backup operation for {self.kv.get(dst)}."
        assert src not in self.srcs, f"File {src} already copied in this backup operation."
        return self


class BackUpCopy(Copy):
    @handler
    def handle_eFileCopied(self, sigma: FSInfo, event: eFileCopied):
        if event.payload is None:
            self.retry -= 1
            return self
        src, dst = event.payload
        assert dst.startswith(sigma.backup_path), (
            f"Destination {dst} is not from the backup path {sigma.backup_path}. "
            "You should copy to the backup first before copying to elsewhere."
        )
        self.copied.add(src)
        self.kv[dst] = src
        sigma.path_backuped.add(src)
        sigma.files_in_backup.add(dst)
        if cond(sigma.path_read == sigma.path_backuped, "all files copied to backup location"):
            return MigrateCopy(prompt=make_prompt("For each file in the directory, copy it to the migrate location."))
        return self


class MigrateCopy(Copy):
    @handler
    def handle_eFileCopied(self, sigma: FSInfo, event: eFileCopied):
        if event.payload is None:
            self.retry -= 1
            return self
        src, dst = event.payload
        self.copied.add(src)
        self.kv[dst] = src
        sigma.files_in_migration.add(dst)
        if cond(sigma.path_read == self.copied, "all files copied to the migration location"):
            return Clear()
        return self


class Clear(Procedure[FSInfo]):
    prompt = make_prompt(
        "Delete the backup files and the original files (not the original directory) and finish the procedure."
    )

    def __init__(self) -> None:
        self.deleted: set[str] = set()

    @handler
    def handle_eFileDeleteRequest(self, sigma: FSInfo, event: eFileDeleteRequest):
        dst = event.payload
        assert dst not in self.deleted, f"File {dst} already deleted in this backup operation."
        assert dst in sigma.files_in_backup or dst in sigma.path_read, f"File {dst} not in backup files. Cannot delete."
        return self

    @handler
    def handle_eFileDeleted(self, sigma: FSInfo, event: eFileDeleted):
        dst = event.payload
        if dst is None:
            return f"Failed to delete file {dst}. Please try again."
        sigma.files_in_backup.discard(dst)
        sigma.path_read.discard(dst)
        if cond(len(sigma.files_in_backup) == 0 and len(sigma.path_read) == 0, "all files deleted from backup location"):
            return End()
        return self


class Abort(Procedure[FSInfo]):
    prompt = make_prompt("Delete all copied backup files and migrated files (if any), and abort the procedure")

    def __init__(self) -> None:
        self.deleted_backup: set[str] = set()
        self.deleted_migration: set[str] = set()

    @handler
    def handle_eFileDeleteRequest(self, sigma: FSInfo, event: eFileDeleteRequest):
        dst = event.payload
        if dst in sigma.files_in_backup:
            assert dst not in self.deleted_backup, f"File {dst} already deleted in the backup path."
        elif dst in sigma.files_in_migration:
            assert dst not in self.deleted_migration, f"File {dst} already deleted in the migration path."
        else:
            return f"File {dst} is not from the backup or migration path. Cannot delete."
        return self

    @handler
    def handle_eFileDeleted(self, sigma: FSInfo, event: eFileDeleted):
        dst = event.payload
        if dst is None:
            return f"Failed to delete file {dst}. Please try again."
        if dst in sigma.files_in_backup:
            self.deleted_backup.add(dst)
        elif dst in sigma.files_in_migration:
            self.deleted_migration.add(dst)
        else:
            return f"File {dst} is not from the backup or migration path. Cannot delete."
        if cond(
            self.deleted_backup == sigma.files_in_backup and self.deleted_migration == sigma.files_in_migration,
            "backups and partially migrated files are deleted",
        ):
            return End()
        return self


class FileSystemOperator(SOP[FSInfo]):
    """The example's SOP: a subclass of SOP built from the three paths."""

    def __init__(self, src_path: str, dst_path: str, backup_path: str) -> None:
        super().__init__(state=FSInfo(src_path=src_path, dst_path=dst_path, backup_path=backup_path), init_proc=ReadDir())
