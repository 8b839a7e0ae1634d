"""The run log: every run recorded, each create done exactly once, loops that resume.

`store` is the SQLite run log (secrets scrubbed, owner-only); `reservations`, `owner` and
`heartbeat` are the durable units of work, their owners and leases; `recorded` runs a node
through the exactly-once protocol and writes what happened; `loops` runs a node over an array.
May import: `execution` and everything below it.
"""
