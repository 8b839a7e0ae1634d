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
    "not_run",  # a loop item never started: the loop stopped after another item failed
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


@dataclass(frozen=True)
class FieldError:
    """One field's problem, as a form shows it beside the field."""

    field: str
    message: str


@dataclass
class DreamError(Exception):
    """A failed node run: what went wrong, on which field, and whether retrying may help.

    ``errors`` lists every field's problem when input was refused (a form shows them all at
    once); the first is also ``field`` and ``message``.
    """

    code: ErrorCode
    message: str
    field: str | None = None
    status: int | None = None
    retryable: bool = False
    attempts: list[Attempt] = dataclasses.field(default_factory=list)
    generation_id: str | None = None
    failure_reason: str | None = None
    errors: list[FieldError] = dataclasses.field(default_factory=list)

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
        if self.errors:
            out["errors"] = [asdict(e) for e in self.errors]
        out["retryable"] = self.retryable
        out["attempts"] = [asdict(a) for a in self.attempts]
        return out

    @classmethod
    def of_fields(cls, problems: list[FieldError]) -> DreamError:
        """One invalid_input error for several fields' problems (at least one)."""
        first = problems[0]
        message = first.message
        if len(problems) > 1:
            message += (
                f" (and {len(problems) - 1} more: "
                + "; ".join(p.message for p in problems[1:])
                + ")"
            )
        return cls("invalid_input", message, field=first.field, errors=list(problems))
