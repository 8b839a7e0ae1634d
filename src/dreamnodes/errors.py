"""The one error type every part of dreamnodes raises, and what a host sees of it."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any, Literal

ErrorCode = Literal[
    "invalid_input",
    "template_error",
    "auth_failed",
    "insufficient_credits",
    "not_found",
    "rate_limited",
    "provider_error",
    "network_error",
    "timeout",
    "generation_failed",
    "wait_timeout",
    "unknown_outcome",  # the request may or may not have taken effect; nothing was resent
    "internal_error",  # a bug in dreamnodes, not a problem with the input or the provider
]

# Input problems exit 2 on the command line; everything else exits 1.
INPUT_CODES: frozenset[str] = frozenset({"invalid_input", "template_error"})


@dataclass(frozen=True)
class Attempt:
    """One HTTP attempt: its number, the status it got (None if no answer) and its duration."""

    number: int
    status: int | None
    seconds: float
    error: str | None = None


@dataclass
class DreamError(Exception):
    """A failed node run: what went wrong, on which field, and whether retrying may help."""

    code: ErrorCode
    message: str
    field: str | None = None
    status: int | None = None
    retryable: bool = False
    attempts: list[Attempt] = dataclasses.field(default_factory=list)
    generation_id: str | None = None
    failure_reason: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        # Messages about one field already start with its name.
        return f"{self.code}: {self.message}"

    @property
    def exit_code(self) -> int:
        # 2 says "bad input, nothing was sent": not true once a generation was made.
        return 2 if self.code in INPUT_CODES and self.generation_id is None else 1

    def to_dict(self) -> dict[str, Any]:
        """The JSON a host or the command line shows: empty parts left out."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        for key in ("field", "status", "generation_id", "failure_reason"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["retryable"] = self.retryable
        out["attempts"] = [asdict(a) for a in self.attempts]
        return out
