"""Generations: create (limits, balance, inputs), the lifecycle queued -> processing ->
completed | failed with Luma's failure codes, and outputs behind presigned URLs that expire.

Failures: a blacklisted word in the prompt is `content_moderated`; an input that cannot be
decoded, is too large or in an unsupported format gets its code; a render error is
`generation_failed`; and a prompt containing `[fail:<code>]` fails with that code (a sandbox
rehearsal hook for every code). Failed jobs are refunded (third-party report; not confirmed).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from dreamnodes.sandbox import rendering
from dreamnodes.sandbox.agents import catalog
from dreamnodes.sandbox.agents.files import Files, iso
from dreamnodes.sandbox.agents.inputs import Resolver
from dreamnodes.sandbox.agents.limits import AgentLimits
from dreamnodes.sandbox.agents.produce import Failure, Output, produce
from dreamnodes.sandbox.agents.signing import Signer
from dreamnodes.sandbox.config import SandboxConfig
from dreamnodes.sandbox.errors import ApiError

Record = dict[str, Any]
NOT_FOUND = "Generation not found"


class Jobs:
    def __init__(
        self, cfg: SandboxConfig, files: Files, limits: AgentLimits, signer: Signer
    ) -> None:
        self.cfg = cfg
        self.files = files
        self.limits = limits
        self.signer = signer
        self.base_url = ""
        self.balance = cfg.agents_balance_usd
        self.resolver = Resolver(self._own_bytes, cfg.fetch_timeout)
        self._records: dict[str, Record] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots: asyncio.Semaphore | None = None

    # ---- what validation may look up (refs.Owned) -------------------------------------
    def generation_record(self, owner: str, gen_id: str) -> Record | None:
        record = self._records.get(gen_id)
        return record if record is not None and record["owner"] == owner else None

    def file_record(self, owner: str, file_id: str) -> Record | None:
        return self.files.record(owner, file_id)

    async def _own_bytes(self, owner: str, ref: dict[str, Any]) -> tuple[bytes, str] | None:
        if "file_id" in ref:
            record = self.files.record(owner, ref["file_id"])
            if record is None or record["data"] is None:
                return None
            return record["data"], record["file"]["mime_type"]
        record = self.generation_record(owner, ref["generation_id"])
        if record is None or not record["outputs"]:
            return None
        first: Output = record["outputs"][0]
        return first.data, first.content_type

    # ---- creating and reading ---------------------------------------------------------
    async def create(
        self, owner: str, request: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The queued Generation and the 201's rate-limit headers."""
        self.limits.check(owner)
        inputs = await self.resolver.all(request, owner)
        cost = catalog.price(request)
        if cost > self.balance:
            raise ApiError(402, "Insufficient balance")
        self.limits.check(owner)  # fetching inputs took a while: check again, then count
        gen_id = str(uuid.uuid4())
        headers = self.limits.admit(owner, gen_id)
        self.balance = round(self.balance - cost, 4)
        gen = {
            "id": gen_id,
            "created_at": iso(),
            "model": request["model"],
            "type": request["type"],
            "state": "queued",
            "failure_code": None,
            "failure_reason": None,
            "output": [],
        }
        record = {"owner": owner, "gen": gen, "request": request, "price": cost, "outputs": []}
        self._records[gen_id] = record
        self._tasks[gen_id] = asyncio.get_running_loop().create_task(self._run(record, inputs))
        return dict(gen), headers

    def view(self, owner: str, gen_id: str) -> dict[str, Any]:
        """The Generation, with output URLs minted afresh (valid one service hour)."""
        record = self.generation_record(owner, gen_id)
        if record is None:
            raise ApiError(404, NOT_FOUND)
        gen = dict(record["gen"])
        if gen["state"] == "completed":
            outputs = enumerate(record["outputs"])
            gen["output"] = [self._output_json(gen_id, n, output) for n, output in outputs]
        return gen

    def _output_json(self, gen_id: str, index: int, output: Output) -> dict[str, Any]:
        path = f"{catalog.OUTPUT_PREFIX}{gen_id}/{index}.{output.ext}"
        url, _ = self.signer.sign(self.base_url, path, self.cfg.agents_url_ttl)
        answer: dict[str, Any] = {"type": output.kind, "url": url}
        if output.layer is not None:
            answer["layer"] = dict(output.layer)
        return answer

    def output(self, name: str) -> Output | None:
        """`<gen_id>/<index>.<ext>` of a completed generation."""
        gen_id, _, rest = name.partition("/")
        index, _, ext = rest.partition(".")
        record = self._records.get(gen_id)
        if record is None or not index.isdigit() or int(index) >= len(record["outputs"]):
            return None
        found: Output = record["outputs"][int(index)]
        return found if found.ext == ext else None

    def snapshot(self) -> list[dict[str, Any]]:
        return [dict(r["gen"], request=r["request"]) for r in self._records.values()]

    # ---- lifecycle --------------------------------------------------------------------
    async def _run(self, record: Record, inputs: dict[str, Any]) -> None:
        gen, request = record["gen"], record["request"]
        video = request["type"] in catalog.VIDEO_TYPES
        try:
            await asyncio.sleep(self.cfg.scaled(self.cfg.queued_seconds))
            gen["state"] = "processing"
            phase = self.cfg.dreaming_seconds if video else self.cfg.image_seconds
            rendered = asyncio.ensure_future(self._render(request, inputs))
            await asyncio.sleep(self.cfg.scaled(phase))
            try:
                forced = _forced_failure(request["prompt"])
                if forced is not None:
                    raise forced
                record["outputs"] = await rendered
            except Failure as failure:
                rendered.cancel()
                self._fail(record, failure.code, failure.reason)
                return
            except Exception as exc:
                self._fail(record, "generation_failed", f"Internal model error: {exc}")
                return
            gen["state"] = "completed"
        finally:
            self.limits.finished(record["owner"], gen["id"])
            self._tasks.pop(gen["id"], None)

    async def _render(self, request: dict[str, Any], inputs: dict[str, Any]) -> list[Output]:
        if self._slots is None:
            self._slots = rendering.render_slots()
        async with self._slots:
            return await asyncio.to_thread(
                produce, request, inputs, self.cfg.render, self.cfg.full_size
            )

    def _fail(self, record: Record, code: str, reason: str) -> None:
        self.balance = round(self.balance + record["price"], 4)
        record["gen"].update(state="failed", failure_code=code, failure_reason=reason, output=[])

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()


def _forced_failure(prompt: str) -> Failure | None:
    lowered = prompt.lower()
    if any(word in lowered for word in catalog.BLACKLIST):
        return Failure("content_moderated", catalog.FAILURE_REASONS["content_moderated"])
    start = lowered.find(catalog.FAIL_MARK)
    if start < 0:
        return None
    code = lowered[start + len(catalog.FAIL_MARK) :].split("]", 1)[0].strip()
    if code in catalog.FAILURE_CODES:
        return Failure(code, catalog.FAILURE_REASONS[code])
    return None
