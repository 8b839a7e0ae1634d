"""What the run log holds: a run's record, its id, and the key of a loop item's unit of work."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from dreamnodes.api.lost_creates import VOLATILE
from dreamnodes.runlog.owner import alive

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


@dataclass(frozen=True)
class RunRecord:
    """One recorded execution of a node, as stored (secrets already removed)."""

    id: str
    node: str
    provider: str
    status: str  # "running" | "succeeded" | "failed"
    started_at: str
    finished_at: str | None
    params: dict[str, Any]
    context: dict[str, Any] | None
    request: dict[str, Any] | None
    attempts: list[dict[str, Any]]
    output: dict[str, Any] | None
    error: dict[str, Any] | None
    generation_id: str | None
    resume_key: str | None  # the unit of work the run does (see dreamnodes.runlog.reservations)
    options: dict[str, Any]
    owner: str | None = None  # the process running it, while it runs
    lease_until: float | None = None

    @property
    def abandoned(self) -> bool:
        """Marked running, but the process that ran it is gone (killed, or lost its host)."""
        return self.status == "running" and not alive(self.owner, self.lease_until, time.time())

    @property
    def shown_status(self) -> str:
        """The status a user should see: a dead process's run is `abandoned`, not running."""
        return "abandoned" if self.abandoned else self.status

    @property
    def seconds(self) -> float | None:
        """How long the run took, or None while it is running."""
        if self.finished_at is None:
            return None
        return (parse_time(self.finished_at) - parse_time(self.started_at)).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.shown_status}


def resume_key(
    node: str, provider: str, base_url: str, index: int, request: Mapping[str, Any]
) -> str:
    """The same item of the same loop against the same service gives the same key.

    `callback_url` is left out wherever it appears: it carries a per-run token, and a
    resumed loop must still find what the first run created.
    """
    canonical = json.dumps(
        {
            "node": node,
            "provider": provider,
            "base_url": base_url.rstrip("/"),
            "index": index,
            "request": _without_volatile(request),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _without_volatile(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _without_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list | tuple):
        return [_without_volatile(v) for v in value]
    return value


def new_run_id() -> str:
    """ "r_" + 48 bits of milliseconds + 32 random bits in Crockford base32: sorts by time."""
    number = (time.time_ns() // 1_000_000) << 32 | secrets.randbits(32)
    digits = []
    for _ in range(16):
        digits.append(_CROCKFORD[number & 31])
        number >>= 5
    return "r_" + "".join(reversed(digits))


def generation_of(part: Mapping[str, Any] | None) -> str | None:
    if not part:
        return None
    # A normalised generation has an id and a state; other outputs' ids are not generations.
    value = part.get("generation_id") or (part.get("id") if "state" in part else None)
    return value if isinstance(value, str) and value else None


def from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


# The runs columns a RunRecord is read from, in `record_from_row`'s order.
COLUMNS = (
    "id, node, provider, status, started_at, finished_at, params, context, request,"
    " output, error, generation_id, resume_key, options, owner, lease_until"
)


def record_from_row(row: tuple[Any, ...], attempts: list[dict[str, Any]]) -> RunRecord:
    (run_id, node, provider, status, started, finished, params, context, request) = row[:9]
    (output, error, generation_id, key, options, owner, lease_until) = row[9:]
    return RunRecord(
        id=run_id,
        node=node,
        provider=provider,
        status=status,
        started_at=started,
        finished_at=finished,
        params=json.loads(params),
        context=from_json(context),
        request=from_json(request),
        attempts=attempts,
        output=from_json(output),
        error=from_json(error),
        generation_id=generation_id,
        resume_key=key,
        options=json.loads(options),
        owner=owner,
        lease_until=lease_until,
    )
