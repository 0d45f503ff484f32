"""SOPy's `sopy.utils`: the `Log` helper workflow code calls, and its `LogLevel`.

`Log` writes one line per message, "YYYY-mm-dd HH:MM:SS [LEVEL] message", to standard output
(ERROR to standard error) when the level is at least the minimum (INFO by default). Lines are
coloured only when the stream is a terminal. The library itself never calls `Log`: it logs
through `logging`. Runs in whichever process calls it (a handler's lines appear in that
worker's output on the actor runtime).
"""

from __future__ import annotations

import datetime
import enum
import sys
from typing import ClassVar, TextIO

__all__ = ["Log", "LogLevel"]

_RESET = "\033[0m"
_COLOURS = {
    "VERBOSE": "\033[90m",
    "DEBUG": "\033[36m",
    "INFO": "\033[32m",
    "WARNING": "\033[33m",
    "ERROR": "\033[31m",
}


class LogLevel(enum.IntEnum):
    """Severity of a `Log` line; lines below `Log`'s minimum level are dropped."""

    VERBOSE = 0
    DEBUG = 1
    INFO = 2
    WARNING = 3
    ERROR = 4


class Log:
    """Static logger for workflow code: `Log.info("Directory read")`."""

    min_level: ClassVar[LogLevel] = LogLevel.INFO

    @staticmethod
    def set_min_level(level: LogLevel) -> None:
        """Drop lines below `level` from now on (process-wide)."""
        Log.min_level = LogLevel(level)

    @staticmethod
    def verbose(message: str, include_timestamp: bool = True) -> None:
        """Write `message` at VERBOSE level."""
        _write(LogLevel.VERBOSE, message, include_timestamp)

    @staticmethod
    def debug(message: str, include_timestamp: bool = True) -> None:
        """Write `message` at DEBUG level."""
        _write(LogLevel.DEBUG, message, include_timestamp)

    @staticmethod
    def info(message: str, include_timestamp: bool = True) -> None:
        """Write `message` at INFO level."""
        _write(LogLevel.INFO, message, include_timestamp)

    @staticmethod
    def warning(message: str, include_timestamp: bool = True) -> None:
        """Write `message` at WARNING level."""
        _write(LogLevel.WARNING, message, include_timestamp)

    @staticmethod
    def error(message: str, include_timestamp: bool = True) -> None:
        """Write `message` at ERROR level, to standard error."""
        _write(LogLevel.ERROR, message, include_timestamp)


def _write(level: LogLevel, message: str, include_timestamp: bool) -> None:
    if level < Log.min_level:
        return
    stream: TextIO = sys.stderr if level is LogLevel.ERROR else sys.stdout
    tag = f"[{level.name}]"
    if stream.isatty():
        tag = f"{_COLOURS[level.name]}{tag}{_RESET}"
    stamp = f"{datetime.datetime.now():%Y-%m-%d %H:%M:%S} " if include_timestamp else ""
    stream.write(f"{stamp}{tag} {message}\n")
    stream.flush()
