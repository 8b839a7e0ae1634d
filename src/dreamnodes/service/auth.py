"""Who may call: `Authorization: Bearer <token>`, or the page's session cookie.

The page signs in once by POSTing the token to `/v1/session`; the answer sets a cookie that
holds an HMAC of the token (not the token), `HttpOnly` (no script reads it), `SameSite=Strict`
(no other site's page sends it). A request authenticated by the cookie alone that changes
something must also carry `X-Requested-With: dreamnodes`: a header another site's form cannot
send, and a script of another origin cannot either without a CORS preflight we never allow.
Compares are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

__all__ = ["COOKIE", "PAGE_HEADER", "Auth"]

COOKIE = "dreamnodes_session"
PAGE_HEADER = "x-requested-with"
_PAGE_VALUE = "dreamnodes"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class Auth:
    """Checks one server's token (given at start, never shown again by the service)."""

    def __init__(self, token: str) -> None:
        self._token = token.encode("utf-8")
        self._session = hmac.new(self._token, b"dreamnodes page session", "sha256").hexdigest()

    def __repr__(self) -> str:
        return "Auth(...)"

    def token_matches(self, candidate: str) -> bool:
        digest = hashlib.sha256(candidate.encode("utf-8", "replace")).digest()
        return hmac.compare_digest(digest, hashlib.sha256(self._token).digest())

    @property
    def session_value(self) -> str:
        return self._session

    def allowed(self, request: Request) -> bool:
        """A valid bearer token, or the session cookie (plus the page header if unsafe)."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if header:
            return scheme.lower() == "bearer" and self.token_matches(value.strip())
        cookie = request.cookies.get(COOKIE, "")
        if not cookie or not hmac.compare_digest(cookie.encode(), self._session.encode()):
            return False
        return request.method in _SAFE or request.headers.get(PAGE_HEADER) == _PAGE_VALUE

    def cookie_header(self, *, secure: bool, clear: bool = False) -> str:
        value = "" if clear else self._session
        parts = [f"{COOKIE}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
        if clear:
            parts.append("Max-Age=0")
        if secure:
            parts.append("Secure")
        return "; ".join(parts)
