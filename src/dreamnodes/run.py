"""Running one node: send the prepared request, read the answer, wait, download.

`dreamnodes.prepare` is the pure half (templates, labels, validation, rules, mapping);
``Runner`` does the I/O with one client per provider and key, reused across a loop's items.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from dreamnodes.webhook import CallbackReceiver

from dreamnodes import results
from dreamnodes.client import ApiClient, ApiRequest, ApiResponse
from dreamnodes.created import luma_find_created
from dreamnodes.errors import Attempt, DreamError
from dreamnodes.limits import Limits, Scheduler, Ticket, family_of
from dreamnodes.package import Package, load_package
from dreamnodes.prepare import WAIT_MODES, Prepared, prepare
from dreamnodes.retry import RetryPolicy

# Seconds between polls: quick at first, then every 5 s (video jobs take 30 to 190 s).
VIDEO_POLLS = (2.0, 2.0, 3.0, 3.0, 5.0)
IMAGE_POLLS = (1.0, 1.0, 2.0)
# How long to wait for a callback before polling instead: longer than the slowest video job.
CALLBACK_GRACE = 300.0


Sleep = Callable[[float], Awaitable[None]]


class Runner:
    """Runs nodes for one API key against one provider; reuse it across a loop's items."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        provider: str = "luma",
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        limits: Limits | None = None,
        poll_scale: float = 1.0,
        package: Package | None = None,
        sleep: Sleep = asyncio.sleep,
        receiver: CallbackReceiver | None = None,
    ) -> None:
        self.package = package or load_package()
        if provider not in self.package.manifest["providers"]:
            raise DreamError(
                "invalid_input",
                f"provider: unknown provider {provider!r}; providers: "
                + ", ".join(self.package.manifest["providers"]),
                field="provider",
            )
        self.provider = provider
        self.base_url = base_url or self.package.manifest["providers"][provider]["base_url"]
        self.policy = _policy(retry)
        self.poll_scale = poll_scale
        self.sleep = sleep
        self._api_key = api_key
        self._transport = transport
        self._limits = limits
        self._client: ApiClient | None = None
        self._http: httpx.AsyncClient | None = None
        self._receiver = receiver  # a webhook.CallbackReceiver, started on first use
        self._stop_receiver = False
        self._receiver_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Runner(provider={self.provider!r}, base_url={self.base_url!r})"

    # -- resources ---------------------------------------------------------------------
    def _key(self) -> str:
        credential = self.package.credential(self.provider)
        key = self._api_key or os.environ.get(credential["env"], "")
        if not key:
            raise DreamError(
                "auth_failed",
                f"no API key for {self.provider}: set {credential['env']} in the environment",
            )
        return key

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            credential = self.package.credential(self.provider)
            headers = {credential["header"]: credential["prefix"] + self._key()}
            headers.update(credential.get("extra_headers", {}))
            self._client = ApiClient(
                base_url=self.base_url,
                auth_headers=headers,
                policy=self.policy,
                transport=self._transport,
                find_created=luma_find_created if self.provider == "luma" else None,
                sleep=self.sleep,
                on_rate_limited=self._rate_limited,
            )
        return self._client

    def _rate_limited(self, request: ApiRequest, retry_after: float | None) -> None:
        """A create got a 429: the key's scheduler holds that family's next creates."""
        scheduler = self.scheduler
        if scheduler is None or not request.billable:
            return
        body = request.json if isinstance(request.json, Mapping) else {}
        model, kind = body.get("model"), body.get("generation_type")
        family = family_of(
            model if isinstance(model, str) else None, kind if isinstance(kind, str) else None
        )
        scheduler.rate_limited(family, retry_after)

    @property
    def http(self) -> httpx.AsyncClient:
        """A plain client for downloads (asset URLs carry no credentials)."""
        if self._http is None:
            self._http = httpx.AsyncClient(transport=self._transport, timeout=60.0)
        return self._http

    @cached_property
    def scheduler(self) -> Scheduler | None:
        if self._limits is None:
            return None
        return Scheduler.shared(self._key(), self.base_url, self._limits)

    async def callbacks(self) -> CallbackReceiver:
        """The callback receiver: the one given (already started), or our own on 127.0.0.1."""
        async with self._receiver_lock:
            if self._receiver is None:
                from dreamnodes.webhook import CallbackReceiver

                self._receiver = CallbackReceiver()
                await self._receiver.start()
                self._stop_receiver = True
        return self._receiver

    async def aclose(self) -> None:
        if self._stop_receiver and self._receiver is not None:
            await self._receiver.stop()
        if self._client is not None:
            await self._client.aclose()
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> Runner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- running -----------------------------------------------------------------------
    def prepare(
        self, node_id: str, params: Mapping[str, Any], context: Mapping[str, Any] | None = None
    ) -> Prepared:
        return prepare(node_id, params, context, provider=self.provider, package=self.package)

    async def prepare_for(
        self,
        node_id: str,
        params: Mapping[str, Any],
        context: Mapping[str, Any] | None = None,
        *,
        wait: str | None = None,
        timeout: float | None = None,
    ) -> Prepared:
        """`prepare`, plus a callback URL of our own receiver when waiting for callbacks.

        ``wait`` and ``timeout``, when given, override the node's own Wait and Timeout fields.
        """
        if wait is not None and wait not in WAIT_MODES:
            raise DreamError(
                "invalid_input",
                f"wait: {wait!r} is not one of {', '.join(WAIT_MODES)}",
                field="wait",
            )
        prepared = self.prepare(node_id, params, context)
        prepared = replace(
            prepared,
            wait=prepared.wait if wait is None else wait,
            timeout=prepared.timeout if timeout is None else timeout,
        )
        wait = prepared.wait
        if wait != "callback" or prepared.node.kind != "create" or prepared.provider.plan is None:
            return prepared
        if "callback_url" in prepared.params:
            raise DreamError(
                "invalid_input",
                "callback_url: waiting for callbacks uses the run's own callback URL; remove it",
                field="callback_url",
            )
        registration = (await self.callbacks()).register()
        values = {**prepared.params, "callback_url": registration.url}
        return replace(
            prepared,
            params=values,
            request=prepared.provider.plan.build(values),
            callback=registration,
        )

    async def run(
        self,
        node_id: str,
        params: Mapping[str, Any],
        context: Mapping[str, Any] | None = None,
        *,
        wait: str | None = None,
        timeout: float | None = None,
        download_dir: str | None = None,
    ) -> dict[str, Any]:
        """Run one node and return its output; raises DreamError.

        ``wait`` ("none", "poll", "callback") and ``timeout`` override the node's own fields.
        """
        prepared = await self.prepare_for(node_id, params, context, wait=wait, timeout=timeout)
        return await self.execute(prepared, download_dir=download_dir)

    async def execute(
        self,
        prepared: Prepared,
        *,
        wait: str | None = None,
        timeout: float | None = None,
        download_dir: str | None = None,
        on_created: Callable[[str], None] | None = None,
        existing_id: str | None = None,
        attempts: list[Attempt] | None = None,
    ) -> dict[str, Any]:
        """Send a prepared call; `existing_id` resumes a generation created earlier instead.

        The attempts of the main request are appended to ``attempts`` when given.
        """
        from dreamnodes import local  # local nodes need no client

        wait = prepared.wait if wait is None else wait
        timeout = prepared.timeout if timeout is None else timeout
        node = prepared.node
        if prepared.request is None:
            return await local.run_local(self, prepared, download_dir=download_dir)
        ticket: Ticket | None = None
        if node.kind == "create" and existing_id is None and self.scheduler is not None:
            ticket = await self.scheduler.acquire(str(node.spec["family"]))
        try:
            if existing_id is not None:
                output = await self.get(existing_id)
            else:
                output = await self._send(prepared, attempts)
                if ticket is not None:
                    ticket.answered()
                if node.kind == "create" and on_created is not None:
                    on_created(output["id"])
            if node.kind == "create" and wait != "none":
                family = str(node.spec["family"])
                started = time.monotonic()
                if prepared.callback is not None and output.get("state") not in results.TERMINAL:
                    grace = min(timeout, CALLBACK_GRACE / self.poll_scale)
                    heard = await prepared.callback.wait(output["id"], grace)
                    output = heard or output
                remaining = max(timeout - (time.monotonic() - started), 0.0)
                output = await self.wait_for(output, timeout=remaining, family=family)
        finally:
            if ticket is not None:
                ticket.release()
            if prepared.callback is not None:
                prepared.callback.close()
        if download_dir is not None and output.get("state") == "completed":
            from dreamnodes.download import download_assets

            output["files"] = await download_assets(self.http, output, download_dir)
        return output

    async def _send(
        self, prepared: Prepared, attempts: list[Attempt] | None = None
    ) -> dict[str, Any]:
        assert prepared.request is not None
        paging = prepared.provider.spec.get("paging")
        if paging and prepared.params.get(paging["when"]):
            return await self._all_pages(prepared, paging)
        response = await self.client.send(prepared.request)
        if attempts is not None:
            attempts.extend(response.attempts)
        return results.read(prepared.provider.response, response, prepared.request, prepared.params)

    async def _all_pages(self, prepared: Prepared, paging: Mapping[str, Any]) -> dict[str, Any]:
        assert prepared.request is not None
        cap = int(paging["cap"])
        limit = int(prepared.params.get("limit", 100))
        offset = int(prepared.params.get("offset", 0))
        items: list[Any] = []
        more = True
        while more and len(items) < cap:
            query = {"limit": min(limit, cap - len(items)), "offset": offset}
            page_req = ApiRequest(
                method=prepared.request.method, path=prepared.request.path, query=query
            )
            response: ApiResponse = await self.client.send(page_req)
            page = results.read(prepared.provider.response, response, page_req, prepared.params)
            batch = page[paging["items"]]
            items.extend(batch)
            offset += len(batch)
            more = bool(page[paging["has_more"]]) and bool(batch)
        return {
            paging["items"]: items,
            "count": len(items),
            "has_more": more,
            "limit": None,
            "offset": None,
        }

    async def get(self, generation_id: str) -> dict[str, Any]:
        """The generation now (one Get Generation call, with its own retry budget)."""
        prepared = self.prepare("get_generation", {"generation_id": generation_id})
        return await self._send(prepared)

    async def wait_for(
        self, output: dict[str, Any], *, timeout: float, family: str = "video"
    ) -> dict[str, Any]:
        """Poll until the generation completes or fails; a failure is `generation_failed`.

        Pixazo's status has no request echo: the created output's `request` is kept.
        """
        sent = output.get("request")
        schedule = VIDEO_POLLS if family == "video" else IMAGE_POLLS
        deadline = time.monotonic() + timeout
        polls = 0
        while output.get("state") not in results.TERMINAL:
            delay = schedule[min(polls, len(schedule) - 1)] / self.poll_scale
            if time.monotonic() + delay > deadline:
                raise DreamError(
                    "wait_timeout",
                    f"generation {output['id']} is still {output.get('state')} after {timeout:g} s;"
                    " get it later with get_generation",
                    generation_id=output["id"],
                    retryable=True,
                )
            await self.sleep(delay)
            polls += 1
            try:
                output = await self.get(output["id"])
            except DreamError as error:
                if not error.retryable:
                    raise
            if output.get("request") is None:
                output["request"] = sent
        if output["state"] == "failed":
            reason = output.get("failure_reason") or "no reason given"
            raise DreamError(
                "generation_failed",
                f"generation {output['id']} failed: {reason}",
                generation_id=output["id"],
                failure_reason=output.get("failure_reason"),
            )
        return output


def _policy(retry: RetryPolicy | Mapping[str, Any] | None) -> RetryPolicy:
    if retry is None:
        return RetryPolicy()
    if isinstance(retry, RetryPolicy):
        return retry
    return RetryPolicy(**retry)


async def run_node(
    node_id: str,
    params: Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
    *,
    api_key: str | None = None,
    provider: str = "luma",
    base_url: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | Mapping[str, Any] | None = None,
    wait: str | None = None,
    timeout: float | None = None,
    download_dir: str | None = None,
) -> dict[str, Any]:
    """Run one node once: the Python API for hosts (see also Runner for loops)."""
    async with Runner(
        api_key=api_key, provider=provider, base_url=base_url, transport=transport, retry=retry
    ) as runner:
        return await runner.run(
            node_id, params, context, wait=wait, timeout=timeout, download_dir=download_dir
        )


def run_node_sync(
    node_id: str,
    params: Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """``run_node`` for callers without an event loop."""
    return asyncio.run(run_node(node_id, params, context, **options))
