"""SQL text for the run log, made once per statement.

`sql("UPDATE runs SET ... WHERE id = :id")` is SQLAlchemy's `text()`, kept so that each
statement is built (and its compiled form cached) once. SQLAlchemy is imported on first use,
not when the run log is imported: `dreamnodes nodes` never loads it.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import TextClause


@cache
def sql(statement: str) -> TextClause:
    """The statement as a reusable SQLAlchemy text construct (named parameters, `:name`)."""
    from sqlalchemy import text

    return text(statement)
