"""Talking to the providers' APIs: one client, its retry policy and limiter, the answers read.

`client` sends with auth, caps, retries and `Retry-After`; `retry` is the per-run policy;
`limits` keeps one key within the account's running cap and creates a minute; `lost_creates`
finds the generation a create made when its answer was lost (never paying twice); `answers`
normalises what comes back onto one output shape.
May import: `preparation`, `catalog`, `errors`, `redact`.
"""
