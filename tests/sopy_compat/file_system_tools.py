"""The file_system_operator example's three tools, over a real directory tree.

SOPy's example simulates a file system in memory; here the tools work on real files, so that an
agent running in its own actor process and the test see the same files. Each tool returns what
SOPy's does: `read_dir` -> (path, names) or (path, None), `cp` -> (source, dest) or None,
`delete` -> path or None. Called as plain functions they only do the work (no events).
"""

from __future__ import annotations

import os
import shutil

from sopy_actors.sopy.interface.strands import tool
from tests.sopy_compat.file_system import eCopyRequest, eFileCopied, eFileDeleted, eFileDeleteRequest, eReadDirectory


@tool(eReadDirectory)
def read_dir(path: str) -> tuple[str, list[str] | None]:
    """Read the contents of `path` and return a list of file names. If `path` is not a directory, return None.

    Args:
        path: the directory to list.
    """
    if not os.path.isdir(path):
        return path, None
    return path, sorted(os.listdir(path))


@tool(eFileCopied, eCopyRequest)
def cp(source: str, dest: str) -> tuple[str, str] | None:
    """Copy a file from `source` to `dest`. If `source` does not exist, return None.

    Args:
        source: the file to copy.
        dest: the path of the copy.
    """
    if not os.path.isfile(source) or os.path.exists(dest) or not os.path.isdir(os.path.dirname(dest)):
        return None
    shutil.copyfile(source, dest)
    return source, dest


@tool(eFileDeleted, eFileDeleteRequest)
def delete(path: str) -> str | None:
    """Delete the file at `path`. If `path` does not exist, return None.

    Args:
        path: the file to delete.
    """
    if not os.path.isfile(path):
        return None
    os.remove(path)
    return path
