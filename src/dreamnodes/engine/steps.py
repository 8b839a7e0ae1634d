"""Where each run on the Celery engine stands: its next step, who may take it, and when it is late.

One Redis hash holds a JSON entry per unfinished run: the step owed (`create` or `poll`),
a token (a task carries the token it was sent with; a task whose token is no longer the run's
stops at once, so a duplicate delivery never runs a step twice), the running slot it holds,
and `due`: when the step must have started (or, while a worker runs it, when that worker last
vouched for it, renewed every few seconds). Every change is one compare-and-set script on the
token. `serve`'s watchdog (`dispatch.Watchdog`) sends again a step that is late or whose
worker died; Celery's own redelivery of unacknowledged tasks is the slower second net.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import redis

__all__ = ["RECEIVE", "STALL", "Step", "Steps"]

STALL = 15.0  # seconds a step may wait in the queue, or go unvouched for, before it is late
# Seconds a step's task may go unreceived by every worker (a worker marks it held at once, see
# `Steps.hold`) before it is taken for lost: a message a worker popped from the queue and died
# before reading is in no list Redis could hand to another worker.
RECEIVE = 3.0
_HASH = "dreamnodes:engine:steps"

# KEYS: hash. ARGV: run id, expected token ('' = no entry yet), new JSON ('' = delete).
# Returns 1 if the entry was the one expected (and is now replaced), else 0.
_SWAP = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
local token = ''
if current then token = cjson.decode(current)['token'] end
if token ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1
"""

# KEYS: hash. ARGV: run id, the entry as read, the new JSON. Replaces the entry only if it is
# still exactly as read (no other change since, not only the same token).
_EXACT = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


@dataclass(frozen=True)
class Step:
    """A run's next step on the engine."""

    run_id: str
    kind: str  # "create" or "poll"
    token: str
    due: float  # wall clock: late after this
    family: str  # the limits family of its running slot
    slot: str | None = None  # the running slot's token (released when the generation ends)
    limiter: str | None = None  # whose limits the slot is in (`RedisLimiter.id`)
    base_url: str | None = None  # where the run's calls go
    owner: str | None = None  # the worker process running it now, if any
    held_by: str | None = None  # the worker process whose task holds it (maybe in a countdown)
    queued: float | None = None  # wall clock: when its task was sent
    generation_id: str | None = None
    deadline: float | None = None  # when waiting ends in wait_timeout
    polls: int = 0
    hold_only: bool = False  # wait=none: the run is answered; polls only hold the slot
    answered: float | None = None  # wall clock: when the create was answered
    busy: bool = False  # its account was saturated: looked at closely until the end

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @staticmethod
    def from_json(text: str | bytes) -> Step:
        data: dict[str, Any] = json.loads(text)
        return Step(**data)


class Steps:
    """The steps of every unfinished run, in one Redis hash shared by serve and the workers."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._swap = client.register_script(_SWAP)
        self._exact = client.register_script(_EXACT)

    def begin(self, step: Step) -> bool:
        """Record a run's first step; False if the run already has one."""
        return bool(self._swap(keys=[_HASH], args=[step.run_id, "", step.to_json()]))

    def get(self, run_id: str) -> Step | None:
        text = self._redis.hget(_HASH, run_id)
        return None if text is None else Step.from_json(text)

    def all(self) -> Iterator[Step]:
        for _, text in self._redis.hscan_iter(_HASH, count=500):
            yield Step.from_json(text)

    def __len__(self) -> int:
        return int(self._redis.hlen(_HASH))

    def swap(self, old: Step, new: Step | None) -> bool:
        """Replace `old` by `new` (None: the run is done) if `old` is still the run's step."""
        args = [old.run_id, old.token, "" if new is None else new.to_json()]
        return bool(self._swap(keys=[_HASH], args=args))

    def take(self, run_id: str, token: str, owner: str) -> Step | None:
        """The step a task was sent for, now owned by `owner`; None if it was superseded."""
        step = self.get(run_id)
        if step is None or step.token != token:
            return None
        mine = replace(step, owner=owner, due=time.time() + STALL)
        return mine if self.swap(step, mine) else None

    def hold(self, run_id: str, token: str, holder: str) -> bool:
        """Mark the step as held by the worker process that received its task (before the
        task starts, e.g. while its countdown runs): if that process dies, the watchdog sends
        the step again at once instead of when it is late. False if superseded or running."""
        text = self._redis.hget(_HASH, run_id)
        if text is None:
            return False
        step = Step.from_json(text)
        if step.token != token or step.owner is not None or step.held_by == holder:
            return False
        held = replace(step, held_by=holder)
        return bool(self._exact(keys=[_HASH], args=[run_id, text, held.to_json()]))

    def vouch(self, step: Step) -> Step | None:
        """Renew a step being run (its worker lives); None if it was superseded."""
        renewed = replace(step, due=time.time() + STALL)
        return renewed if self.swap(step, renewed) else None

    def next(self, step: Step, **changes: Any) -> Step | None:
        """Hand the run on to its next step under a new token (None if superseded)."""
        following = replace(
            step, token=new_token(), owner=None, held_by=None, queued=time.time(), **changes
        )
        return following if self.swap(step, following) else None

    def resend(self, step: Step) -> Step | None:
        """The same step under a new token, for the watchdog to send again."""
        return self.next(step, due=time.time() + STALL)


def new_token() -> str:
    return secrets.token_hex(8)
