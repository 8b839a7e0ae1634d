"""The one HTTP client: auth, timeouts, retries per the run's policy, creates never billed twice.

About 300 lines: the retry loop and one exchange are one state machine; how a request leaves
(`wire`), how its body is read (`bodies`) and the policy (`retry`) live beside it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json as jsonlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from dreamnodes.api.bodies import MAX_ANSWER_BYTES, Unreadable, detail_of, read_capped
from dreamnodes.api.lost_creates import claim
from dreamnodes.api.retry import Retryable, deferred
from dreamnodes.api.wire import has_fast_path, hopeless, not_sent, send_direct, send_public, tls
from dreamnodes.catalog.requests import ApiRequest, ApiResponse
from dreamnodes.errors import Attempt, DreamError, ErrorCode
from dreamnodes.redact import scrub_text

if TYPE_CHECKING:
    import httpx

    from dreamnodes.api.retry import RetryPolicy

# httpx, backoff and pydantic (via retry) load with the first ApiClient, not with this module:
# ApiRequest is imported by everything that maps requests, `dreamnodes nodes` included.

RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_CODES: dict[int, tuple[ErrorCode, str]] = {
    400: ("invalid_input", "the service refused the request"),
    422: ("invalid_input", "the service refused the request"),
    401: ("auth_failed", "the API key was refused"),
    403: ("auth_failed", "the API key is not allowed to do this"),
    402: ("insufficient_credits", "not enough credits"),
    404: ("not_found", "not found"),
    429: ("rate_limited", "rate limited"),
}


def __getattr__(name: str) -> Any:
    if name == "DEFAULT_POLICY":  # kept for importers; built on first use
        from dreamnodes.api.retry import RetryPolicy

        return RetryPolicy()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


FindCreated = Callable[["ApiClient", ApiRequest, float], Awaitable[Mapping[str, Any] | None]]
# Told of every 429 answer: the request and the seconds its Retry-After asked for (or None).
OnRateLimited = Callable[[ApiRequest, float | None], None]


@dataclass
class _Send:
    """The state of one send(): its attempts, and whether a lost create must be looked for."""

    request: ApiRequest
    started_at: float  # wall clock, comparable with a Generation's created_at
    attempts: list[Attempt]
    look_first: bool = False


class ApiClient:
    """One httpx client per provider and key; `send` retries per the policy, raises DreamError."""

    def __init__(
        self,
        *,
        base_url: str,
        auth_headers: Mapping[str, str],
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        find_created: FindCreated | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        http: httpx.AsyncClient | None = None,
        on_rate_limited: OnRateLimited | None = None,
    ) -> None:
        import backoff
        import httpx

        from dreamnodes.api.retry import RetryPolicy

        if policy is None:
            policy = RetryPolicy()
        self.base_url = base_url
        self.on_rate_limited = on_rate_limited
        self.policy = policy
        self.sleep = asyncio.sleep if sleep is None else sleep
        self.attempts: list[Attempt] = []  # every attempt of the last send()
        self._find_created = find_created
        self._secrets = _secrets_of(auth_headers)
        self._owns_http = http is None
        self._fast = self._owns_http and has_fast_path()
        self._urls: dict[str, httpx.URL] = {}  # path -> full URL (paths repeat: parse once)
        if http is None:
            self._http = httpx.AsyncClient(
                base_url=base_url,
                headers={**auth_headers, "Accept-Encoding": "identity"},
                timeout=httpx.Timeout(timeout),
                transport=transport,
                verify=tls(),
            )
            self._auth: dict[str, str] | None = None
            self._timeout = self._http.timeout.as_dict()
        else:
            self._http = http
            self._auth = {**auth_headers, "Accept-Encoding": "identity"}
        self._retrying = backoff.on_exception(
            deferred,
            Retryable,
            max_tries=policy.max_attempts,
            jitter=None,
            on_backoff=self._pause,
            raise_on_giveup=True,
            logger=None,
            policy=policy,
        )(self._attempt)

    def __repr__(self) -> str:
        return f"ApiClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def send(self, request: ApiRequest) -> ApiResponse:
        """Send with retries per the policy; a create whose answer was lost is looked for first."""
        state = _Send(request=request, started_at=time.time(), attempts=[])
        self.attempts = state.attempts
        try:
            response: ApiResponse = await self._retrying(state)
        except Retryable as failure:
            # The last attempt lost a create's answer: look once more before giving up.
            try:
                found = await self._look_if_lost(state)
            except DreamError as error:
                raise self._final(error, state.attempts) from None
            if found is not None:
                return replace(found, attempts=tuple(state.attempts))
            raise self._final(failure.error, state.attempts) from None
        except DreamError as error:
            raise self._final(error, state.attempts) from None
        if request.billable and isinstance(response.json, Mapping):
            # A create that answered is ours: no lost answer of a twin may claim it later.
            created_id = response.json.get("id") or response.json.get("request_id")
            if isinstance(created_id, str):
                claim(created_id)
        return replace(response, attempts=tuple(state.attempts))

    async def send_once(self, request: ApiRequest) -> ApiResponse:
        """One attempt, no retries and no lookups (for lookups themselves)."""
        attempts: list[Attempt] = []
        try:
            return await self._exchange(request, attempts)
        except Retryable as failure:
            raise self._final(failure.error, attempts) from None
        except DreamError as error:
            raise self._final(error, attempts) from None

    async def _pause(self, details: Any) -> None:
        failure = cast(Retryable, details["exception"])
        await self.sleep(failure.delay)

    async def _attempt(self, state: _Send) -> ApiResponse:
        found = await self._look_if_lost(state)
        if found is not None:
            return found
        try:
            return await self._exchange(state.request, state.attempts)
        except Retryable as failure:
            if failure.lost and state.request.billable:
                if self._find_created is None:
                    raise DreamError(
                        code="unknown_outcome",
                        message=f"the answer to the create was lost ({failure.error.message}); "
                        "it may have been accepted, so it was not sent again",
                        retryable=True,
                    ) from None
                state.look_first = True
            raise

    async def _look_if_lost(self, state: _Send) -> ApiResponse | None:
        if not state.look_first or self._find_created is None:
            return None
        state.look_first = False
        found = await self._find_created(self, state.request, state.started_at)
        if found is None:
            return None
        return ApiResponse(status=201, json=dict(found), headers={})

    async def _exchange(self, request: ApiRequest, attempts: list[Attempt]) -> ApiResponse:
        import httpx

        number = len(attempts) + 1
        began = time.perf_counter()
        unreadable: Unreadable | None = None
        try:
            if self._fast:
                answer = await send_direct(self._http, self._urls, self._timeout, request)
            else:
                answer = await send_public(self._http, self._auth, request)
            try:
                content = await read_capped(answer, MAX_ANSWER_BYTES)
            except Unreadable as problem:
                content, unreadable = b"", problem
            finally:
                await answer.aclose()
        except httpx.TransportError as exc:
            seconds = time.perf_counter() - began
            what = self._scrub(f"{type(exc).__name__}: {exc}".rstrip(": "))
            attempts.append(Attempt(number, None, seconds, what))
            lost = not isinstance(exc, not_sent())
            if isinstance(exc, httpx.TimeoutException):
                error = DreamError("timeout", f"the request timed out ({what})", retryable=True)
                raise Retryable(error, None, lost) from None
            error = DreamError("network_error", f"the connection failed ({what})", retryable=True)
            if isinstance(exc, hopeless()):
                error.retryable = False
                raise error from None
            raise Retryable(error, None, lost) from None
        seconds = time.perf_counter() - began
        status = answer.status_code
        body: Any = _BROKEN
        if unreadable is None:
            try:
                body = jsonlib.loads(content) if content else None
            except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
                body = _BROKEN
        if 200 <= status < 300:
            if unreadable is not None:
                what = unreadable.reason
                attempts.append(Attempt(number, status, seconds, f"unreadable answer: {what}"))
                message = f"the service answered {status} with {what}"
                error = DreamError("provider_error", message, status=status)
                if unreadable.too_large and not request.billable:
                    raise error  # the same request would only fetch the same oversized answer
                # The answer came but cannot be read: for a create, as good as lost.
                error.retryable = True
                raise Retryable(error, None, True)
            if body is _BROKEN:
                attempts.append(Attempt(number, status, seconds, "broken JSON body"))
                message = f"the service answered {status} with a broken JSON body"
                # The answer came but is unreadable: for a create, as good as lost.
                error = DreamError("provider_error", message, status=status, retryable=True)
                raise Retryable(error, None, True)
            attempts.append(Attempt(number, status, seconds))
            return ApiResponse(status=status, json=body, headers=answer.headers)
        if unreadable is not None:
            detail, field = f"an unreadable answer ({unreadable.reason})", None
        else:
            text = content.decode("utf-8", "replace") if body is _BROKEN else ""
            detail, field = detail_of(body, text)
        detail = self._scrub(detail)
        attempts.append(Attempt(number, status, seconds, f"HTTP {status}: {detail}"[:300]))
        code, label = _CODES.get(status, ("provider_error", "the service failed"))
        if status == 404:  # name what was not found: the id is in the path
            label = f"{request.method} {request.path}: {label}"
        error = DreamError(code, f"{label} ({status}): {detail}", field=field, status=status)
        if status in RETRIED_STATUSES:
            error.retryable = True
            from dreamnodes.api.retry import retry_after_seconds

            retry_after = retry_after_seconds(answer.headers)
            if status == 429 and self.on_rate_limited is not None:
                self.on_rate_limited(request, retry_after)
            raise Retryable(error, retry_after, False)
        raise error

    def _final(self, error: DreamError, attempts: list[Attempt]) -> DreamError:
        count = len(attempts)
        noun = "attempt" if count == 1 else "attempts"
        return dataclasses.replace(
            error,
            message=self._scrub(f"{error.message} (after {count} {noun})"),
            attempts=list(attempts),
        )

    def _scrub(self, text: str) -> str:
        return scrub_text(text, self._secrets, "***")


_BROKEN = object()


def _secrets_of(auth_headers: Mapping[str, str]) -> tuple[str, ...]:
    # The whole header value and its token part ("Bearer <key>"), longest first.
    found: set[str] = set()
    for value in auth_headers.values():
        for part in (value, value.rsplit(" ", 1)[-1]):
            if len(part) >= 6:
                found.add(part)
    return tuple(sorted(found, key=len, reverse=True))
