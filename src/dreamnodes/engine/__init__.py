"""Beyond one machine: what runs the work when it is shared across processes and machines.

`redis_limits` is the shared limiter (the `api.limiter.Limiter` interface in Redis: running
slots with a lease, the creates-per-minute sliding window, and 429 holds learned for everyone);
`scripts` holds its atomic Lua scripts. Needs the `[engine]` extra (redis); nothing else in the
runtime imports this room except `service` and `cli`, which choose it.
May import: `runlog`, `execution`, `callbacks`, `downloads`, `api`, `preparation`, `catalog`,
`errors`, `redact`.
"""
