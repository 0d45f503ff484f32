"""The flagship team's tools: a real SQLite database and real files.

The data tools read the database through a read-only connection (the model writes the SQL).
The report and publication tools are guarded: `@tool(ResultEvent, UseEvent)` makes each call an
event of the SOP the agent works for, and the tool runs only if the SOP accepts it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from workflow import (
    PublishRequested,
    ReportDraftRequested,
    ReportPublished,
    ReportStaged,
    ReportWritten,
    StageRequested,
)

from sopy_actors import tool

__all__ = ["count_by_region", "latest_day", "negative_amounts", "publish_report", "query_sales", "stage_report", "write_report"]

REGIONS = ("north", "south", "east", "west")


def _read(db: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(sql, args)]


@tool
def query_sales(db: str, sql: str) -> str:
    """Run a read-only SQL query on the sales database (table sales: region, product, amount, day).

    Args:
        db: the database file.
        sql: one SELECT statement.
    """
    return json.dumps(_read(db, sql))


@tool
def count_by_region(db: str) -> str:
    """Count the orders of each region and name the regions with none.

    Args:
        db: the database file.
    """
    counts = {row["region"]: row["orders"] for row in _read(db, "SELECT region, COUNT(*) AS orders FROM sales GROUP BY region")}
    missing = [region for region in REGIONS if region not in counts]
    return json.dumps({"orders": counts, "regions_without_orders": missing})


@tool
def negative_amounts(db: str) -> str:
    """Find orders with a negative amount.

    Args:
        db: the database file.
    """
    return json.dumps(_read(db, "SELECT rowid AS id, region, product, amount FROM sales WHERE amount < 0"))


@tool
def latest_day(db: str) -> str:
    """The most recent day with an order.

    Args:
        db: the database file.
    """
    return json.dumps(_read(db, "SELECT MAX(day) AS latest_day, COUNT(DISTINCT day) AS days FROM sales")[0])


@tool(ReportWritten, ReportDraftRequested)
def write_report(path: str, markdown: str) -> str:
    """Write the report file (markdown).

    Args:
        path: the report file.
        markdown: the report.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(markdown)
    return path


@tool(ReportStaged, StageRequested)
def stage_report(path: str) -> str:
    """Copy a report into the staging directory next to its reports directory.

    Args:
        path: the report file.
    """
    staging = Path(path).parent.parent / "staging"
    staging.mkdir(exist_ok=True)
    return str(shutil.copyfile(path, staging / Path(path).name))


@tool(ReportPublished, PublishRequested)
def publish_report(path: str) -> str:
    """Publish a staged report (copies it into the published directory).

    Args:
        path: the staged report file.
    """
    published = Path(path).parent.parent / "published"
    published.mkdir(exist_ok=True)
    return str(shutil.copyfile(path, published / Path(path).name))
