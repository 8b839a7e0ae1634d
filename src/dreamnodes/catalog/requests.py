"""The shapes every room speaks: one call to a provider, and the answer it got."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dreamnodes.errors import Attempt


@dataclass(frozen=True)
class ApiRequest:
    """One call to a provider; `billable` marks a create, which is never sent twice for one run."""

    method: str
    path: str  # already built and encoded, relative to base_url
    query: Mapping[str, Any] | None = None
    json: Any | None = None
    headers: Mapping[str, str] | None = None  # extra per-request headers (e.g. X-Webhook-URL)
    billable: bool = False


@dataclass(frozen=True)
class ApiResponse:
    status: int
    json: Any
    headers: Mapping[str, str]
    attempts: tuple[Attempt, ...] = ()  # what it took to get this answer (for the run log)
