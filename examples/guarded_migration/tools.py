"""The migration agent's tools: real file operations, each guarded by the migration SOP.

`@tool(ResultEvent, UseEvent)`: before a tool runs, its call goes to the SOP as the use event
(the tool runs only if the SOP accepts it); after it ran, its result goes as the result event.
Paths are absolute; the SOP's state says which directories are which.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from workflow import (
    BackupCopied,
    BackupRequested,
    DeletionRequested,
    FileCopy,
    FileList,
    FileMigrated,
    FileRestored,
    FilesRead,
    MigrationFailed,
    MigrationFailure,
    MigrationRequested,
    RestoreRequested,
    SourceCleared,
    SourceClearing,
)

from sopy_actors import tool

__all__ = ["ALL_TOOLS", "back_up", "delete_files", "list_files", "migrate", "report_failure", "restore"]


@tool(FilesRead)
def list_files(directory: str) -> FileList:
    """List the files in a directory.

    Args:
        directory: the directory to list.
    """
    return FileList(files=sorted(str(p) for p in Path(directory).iterdir() if p.is_file()))


@tool(BackupCopied, BackupRequested)
def back_up(path: str, to_dir: str) -> FileCopy:
    """Copy a file into the backup directory.

    Args:
        path: the file to back up.
        to_dir: the backup directory.
    """
    shutil.copyfile(path, Path(to_dir) / Path(path).name)
    return FileCopy(path=path, to_dir=to_dir)


@tool(FileMigrated, MigrationRequested)
def migrate(path: str, to_dir: str) -> FileCopy:
    """Copy a file into the destination directory.

    Args:
        path: the file to migrate.
        to_dir: the destination directory.
    """
    shutil.copyfile(path, Path(to_dir) / Path(path).name)
    return FileCopy(path=path, to_dir=to_dir)


@tool(SourceCleared, DeletionRequested)
def delete_files(paths: list[str]) -> SourceClearing:
    """Delete files.

    Args:
        paths: the files to delete.
    """
    for path in paths:
        Path(path).unlink()
    return SourceClearing(removed=paths)


@tool(FileRestored, RestoreRequested)
def restore(path: str, backup_dir: str, dest_dir: str) -> FileCopy:
    """Put a file back from the backup directory and delete its migrated copy.

    Args:
        path: the original path of the file.
        backup_dir: the backup directory.
        dest_dir: the destination directory it was migrated to.
    """
    name = Path(path).name
    shutil.copyfile(Path(backup_dir) / name, path)
    (Path(dest_dir) / name).unlink(missing_ok=True)
    return FileCopy(path=path, to_dir=str(Path(path).parent))


@tool(MigrationFailed)
def report_failure(path: str, reason: str) -> MigrationFailure:
    """Report that an operation on a file failed.

    Args:
        path: the file.
        reason: what went wrong.
    """
    return MigrationFailure(path=path, reason=reason)


ALL_TOOLS = [list_files, back_up, migrate, delete_files, restore, report_failure]
