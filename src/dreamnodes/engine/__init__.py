"""Beyond one machine: runs done by Celery workers, the account's limits shared in Redis.

`celery_app` is the Celery app (`celery -A dreamnodes.engine.celery_app worker`), `tasks` its
two tasks, `work` what a worker does for one step of a run (a create, or one look), `steps`
where each run stands (tokens, due times) and `dispatch` the `serve` side (record, take a slot,
queue, hear the end, the watchdog); `workers` is the health and queue depth `serve` shows.
`redis_limits` is the shared limiter (the `api.limiter.Limiter` interface in Redis: running
slots with a lease, the creates-per-minute sliding window, and 429 holds learned for
everyone); `scripts` holds its atomic Lua scripts. Needs the `[engine]` extra (celery, redis);
nothing else in the runtime imports this room except `service` and `cli`, which choose it.
May import: `runlog`, `execution`, `callbacks`, `downloads`, `api`, `preparation`, `catalog`,
`errors`, `redact`.
"""
