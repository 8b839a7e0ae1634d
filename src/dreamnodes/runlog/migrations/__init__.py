"""The run log's schema migrations, run by Alembic (`dreamnodes.runlog.schema` drives them).

`env.py` runs the revisions in `versions/` on the connection the store hands over (inside its
transaction, under its lock). A revision is never edited once released: a change to the schema
is a new revision file (copy the last one, set `revision` and `down_revision`) and a new entry
at the end of `schema.REVISIONS`. Revisions 0001 and 0002 are the schema versions 1 and 2 of
the SQLite run log from before Alembic (its PRAGMA user_version), so such a file is adopted.
"""
