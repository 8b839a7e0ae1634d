"""Running one node: send the prepared request, read the answer, wait, download.

`dreamnodes.preparation.prepare` is the pure half (templates, labels, validation, rules, mapping);
``Runner`` does the I/O with one client per provider and key, reused across a loop's items.

About 380 lines on purpose: it is the one class hosts hold, and a run's I/O (resources, send,
hold the running slot, wait, download) reads best in one place; waiting, paging, tracking,
uploads and saving live beside it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from dreamnodes.callbacks.receiver import CallbackReceiver, Registration

from dreamnodes.api import answers as results
from dreamnodes.api.client import ApiClient
from dreamnodes.api.limiter import Limiter, LimiterFactory, Slot, in_process
from dreamnodes.api.limits import AGENTS, Limits, family_of_request
from dreamnodes.api.lost_creates import luma_find_created
from dreamnodes.api.retry import RetryPolicy
from dreamnodes.catalog.package import Package, load_package
from dreamnodes.catalog.requests import ApiRequest
from dreamnodes.errors import Attempt, DreamError
from dreamnodes.execution.paging import all_pages
from dreamnodes.execution.saving import save_assets
from dreamnodes.execution.tracking import Tracker, tracker_for
from dreamnodes.execution.waiting import Busy, wait_until_done
from dreamnodes.preparation.prepare import Prepared, prepare, with_options

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
        limiter: LimiterFactory | None = None,
        poll_scale: float = 1.0,
        package: Package | None = None,
        sleep: Sleep = asyncio.sleep,
        receiver: CallbackReceiver | None = None,
        allow_private_urls: bool = False,
        public_url: str | None = None,
    ) -> None:
        self.package = package or load_package()
        # Where the provider reaches our own callback receiver (a proxy or tunnel to it).
        self.public_url = public_url
        # Downloads may reach private addresses (besides this provider's own origin).
        self.allow_private_urls = allow_private_urls
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
        self._limiter = limiter or in_process  # in-process, or shared (dreamnodes.engine)
        self._client: ApiClient | None = None
        self._http: httpx.AsyncClient | None = None
        self._receiver = receiver  # a webhook.CallbackReceiver, started on first use
        self._stop_receiver = False
        self._receiver_lock = asyncio.Lock()
        self._tracker: Tracker | None = None

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
    def account(self) -> str:
        """A short hash of the API key: names the account in caches, never the key itself."""
        return hashlib.sha256(self._key().encode()).hexdigest()[:16]

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
        if self.scheduler is not None and request.billable:
            self.scheduler.rate_limited(family_of_request(request), retry_after)

    @property
    def http(self) -> httpx.AsyncClient:
        """A plain client for downloads (asset URLs carry no credentials)."""
        if self._http is None:
            self._http = httpx.AsyncClient(transport=self._transport, timeout=60.0)
        return self._http

    @cached_property
    def scheduler(self) -> Limiter | None:
        """The key's limiter (None without limits): in-process unless a factory was given."""
        if self._limits is None:
            return None
        return self._limiter(self._key(), self.base_url, self._limits)

    async def callbacks(self) -> CallbackReceiver:
        """The callback receiver: the one given (already started), or our own on 127.0.0.1
        (reached at ``public_url`` when given)."""
        async with self._receiver_lock:
            if self._receiver is None:
                from dreamnodes.callbacks.receiver import CallbackReceiver

                self._receiver = CallbackReceiver(public_url=self.public_url)
                await self._receiver.start()
                self._stop_receiver = True
        return self._receiver

    @property
    def tracker(self) -> Tracker:
        """Holds running slots of creates nobody waits for until their generations end."""
        if self._tracker is None:
            self._tracker = tracker_for(self)
        return self._tracker

    async def aclose(self) -> None:
        if self._tracker is not None:
            await self._tracker.aclose()
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
        prepared = self.prepare(node_id, params, context)
        prepared = with_options(prepared, wait=wait, timeout=timeout)
        plan = prepared.provider.plan
        if prepared.wait != "callback" or prepared.node.kind != "create" or plan is None:
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
            request=plan.build(values),
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
        on_send: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Send a prepared call; `existing_id` resumes a generation created earlier instead.

        ``on_send`` is called just before a create leaves, ``on_created`` with the id its
        answer names. The attempts of the main request are appended to ``attempts`` when given.
        The running slot of a create is held until its generation ends, also without waiting.
        """
        from dreamnodes.execution import local_nodes as local  # local nodes need no client

        wait = prepared.wait if wait is None else wait
        timeout = prepared.timeout if timeout is None else timeout
        node = prepared.node
        if prepared.request is None:
            return await local.run_local(self, prepared, download_dir=download_dir)
        if existing_id is None:
            from dreamnodes.execution.uploads import with_uploads

            prepared = await with_uploads(self, prepared)  # local files become file ids
        create = node.kind == "create"
        family, limit_family = self.families(prepared)
        ticket: Slot | None = None
        busy: Busy | None = None  # the limiter that paces the looks while it is saturated
        if create and existing_id is None and self.scheduler is not None:
            ticket = await self.scheduler.acquire(limit_family)
            busy = Busy(self.scheduler, limit_family, ticket.waited)
        try:
            if existing_id is not None and create and wait != "none":
                # Picked up to be waited for: a failed first look is one more poll, not the end.
                output = await self._look({"id": existing_id, "state": "queued"}, None)
            elif existing_id is not None:
                output = await self.get(existing_id)
            else:
                if create and on_send is not None:
                    on_send()
                output = await self._send(prepared, attempts)
                if ticket is not None:
                    ticket.answered()
                if create and on_created is not None:
                    on_created(output["id"])
            if create and wait != "none":
                output = await self.wait_for(
                    output,
                    timeout=timeout,
                    family=family,
                    callback=prepared.callback,
                    poll=prepared.provider.spec.get("poll"),
                    busy=busy,
                )
            elif ticket is not None and output.get("state") not in results.TERMINAL:
                self.tracker.hold(output["id"], ticket)
                ticket = None
        finally:
            if ticket is not None:
                ticket.release()
            if prepared.callback is not None:
                prepared.callback.close()
        if download_dir is not None and output.get("state") == "completed":
            output["files"] = await save_assets(self, output, download_dir)
        return output

    async def _send(
        self, prepared: Prepared, attempts: list[Attempt] | None = None
    ) -> dict[str, Any]:
        assert prepared.request is not None
        paging = prepared.provider.spec.get("paging")
        if paging and prepared.params.get(paging["when"]):
            return await all_pages(self.client, prepared, paging)
        response = await self.client.send(prepared.request)
        if attempts is not None:
            attempts.extend(response.attempts)
        agents = prepared.request.billable and family_of_request(prepared.request) == AGENTS
        if agents and self.scheduler is not None:
            self.scheduler.learn(AGENTS, response.headers)  # X-RateLimit-*
        return results.read(prepared.provider.response, response, prepared.request, prepared.params)

    async def _look(self, output: dict[str, Any], sent: Any) -> dict[str, Any]:
        """The generation now; a retryable failure keeps what we knew (the next look retries)."""
        try:
            latest = await self.get(output["id"])
        except DreamError as error:
            if not error.retryable:
                raise
            return output
        if latest.get("request") is None:
            latest["request"] = sent
        return latest

    async def get(self, generation_id: str) -> dict[str, Any]:
        """The generation now (one Get Generation call, with its own retry budget)."""
        node = self._provider_spec.get("generation_node", "get_generation")
        prepared = self.prepare(node, {"generation_id": generation_id})
        return await self._send(prepared)

    def families(self, prepared: Prepared) -> tuple[str, str]:
        """The node's family (how fast it is polled) and the limits family its creates use."""
        family = str(prepared.node.spec.get("family", "video"))
        return family, str(self._provider_spec.get("limits", family))

    @cached_property
    def _provider_spec(self) -> Mapping[str, Any]:
        """The manifest's entry of this provider (its `limits` family, its `generation_node`)."""
        spec: Mapping[str, Any] = self.package.manifest["providers"][self.provider]
        return spec

    async def wait_for(
        self,
        output: dict[str, Any],
        *,
        timeout: float,
        family: str = "video",
        callback: Registration | None = None,
        poll: Sequence[float] | None = None,
        busy: Busy | None = None,
    ) -> dict[str, Any]:
        """Wait until the generation ends (see `dreamnodes.execution.waiting`)."""
        return await wait_until_done(
            output,
            self._look,
            timeout=timeout,
            family=family,
            callback=callback,
            poll=poll,
            busy=busy,
            poll_scale=self.poll_scale,
            sleep=self.sleep,
        )


def _policy(retry: RetryPolicy | Mapping[str, Any] | None) -> RetryPolicy:
    if retry is None:
        return RetryPolicy()
    if isinstance(retry, RetryPolicy):
        return retry
    return RetryPolicy(**retry)
