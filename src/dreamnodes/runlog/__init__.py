"""The run log: every run recorded, each create done exactly once, loops that resume.

`store` is the run log (secrets scrubbed): an owner-only SQLite file, or PostgreSQL, through
SQLAlchemy (`database`), its schema Alembic's (`schema`, `migrations/`); `reservations`, `owner` and
`heartbeat` are the durable units of work, their owners and leases; `recorded` runs a node
through the exactly-once protocol and writes what happened; `loops` runs a node over an array.
May import: `execution` and everything below it.
"""
