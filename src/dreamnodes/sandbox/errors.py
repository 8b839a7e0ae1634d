"""An HTTP refusal the sandbox answers with instead of a result."""

from __future__ import annotations


class ApiError(Exception):
    """Answer `status` with `{"detail": detail}` (or a provider-specific body)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
