"""Alembic's entry point: run the migrations on the connection `dreamnodes.runlog.schema` gives.

Without one (Alembic's own command line, with ``sqlalchemy.url`` set), it connects itself.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine


def _run(connection: Connection) -> None:
    context.configure(connection=connection)
    with context.begin_transaction():  # nothing of its own inside the store's transaction
        context.run_migrations()


def main() -> None:
    given = context.config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("give Alembic a connection (attributes) or sqlalchemy.url")
    with create_engine(url).connect() as connection:
        _run(connection)


main()
