"""The Luma Agents API's routes under /agents/v1 (Luma: https://agents.lumalabs.ai/v1): auth,
the seven endpoints of the SDK, the presigned upload and output URLs, and the headers every
answer carries (`X-API-Version`, `X-Request-Id`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dreamnodes.sandbox.agents import catalog
from dreamnodes.sandbox.agents.files import Files
from dreamnodes.sandbox.agents.jobs import Jobs
from dreamnodes.sandbox.agents.limits import AgentLimits
from dreamnodes.sandbox.agents.produce import Output
from dreamnodes.sandbox.agents.signing import Signer, s3_error
from dreamnodes.sandbox.agents.validation import check_create
from dreamnodes.sandbox.config import SandboxConfig
from dreamnodes.sandbox.errors import ApiError
from dreamnodes.sandbox.http import detail, json_answer
from dreamnodes.serving import BodyTooLarge, ClientDisconnect, DropConnection, read_body

INGEST_SECONDS = 1.0  # how long a file stays `pending` after complete (service seconds)


def _json(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise ApiError(400, "Request body is not valid JSON") from None


def _uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


class AgentsApi:
    def __init__(self, cfg: SandboxConfig) -> None:
        self.cfg = cfg
        self.signer = Signer(cfg.time_scale)
        self.files = Files(self.signer, cfg.scaled(INGEST_SECONDS))
        self.limits = AgentLimits(
            cfg.limits,
            cfg.agents_per_minute,
            cfg.agents_concurrent,
            cfg.scaled(60.0),
            cfg.scaled(3600.0),
        )
        self.jobs = Jobs(cfg, self.files, self.limits, self.signer)

    def started(self, base_url: str) -> None:
        self.files.base_url = self.jobs.base_url = base_url

    async def close(self) -> None:
        await self.jobs.close()
        await self.files.close()

    # ---- headers and auth -------------------------------------------------------------
    @staticmethod
    def stamp(req: Request, response: Response) -> Response:
        """The two headers every API answer carries."""
        response.headers["x-api-version"] = catalog.API_VERSION
        response.headers["x-request-id"] = req.headers.get("x-request-id") or str(uuid.uuid4())
        return response

    def _owner(self, req: Request) -> str:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "Missing or invalid API key")
        key = self.cfg.api_key
        if key is not None and not hmac.compare_digest(token.encode(), key.encode()):
            raise ApiError(401, "Invalid API key")
        return hashlib.sha256(token.encode()).hexdigest()[:24]  # one namespace per key

    # ---- the API ----------------------------------------------------------------------
    async def handle(self, req: Request, sub: str, body: bytes) -> Response:
        owner = self._owner(req)
        method = req.method
        parts = sub.strip("/").split("/")
        if parts[0] == "generations" and len(parts) <= 2:
            if len(parts) == 1:
                if method != "POST":
                    return detail(405, "Method Not Allowed")
                request = check_create(_json(body), owner, self.jobs, self.cfg.agents_hdr_access)
                gen, headers = await self.jobs.create(owner, request)
                return json_answer(201, gen, headers)
            if method != "GET":
                return detail(405, "Method Not Allowed")
            if not _uuid(parts[1]):
                raise ApiError(404, "Generation not found")
            return json_answer(200, self.jobs.view(owner, parts[1]))
        if parts[0] == "files" and len(parts) <= 3:
            return self._files(req, owner, parts[1:], body)
        return detail(404, "Not Found")

    def _files(self, req: Request, owner: str, rest: list[str], body: bytes) -> Response:
        method = req.method
        if not rest:
            if method == "POST":
                content_type = req.headers.get("content-type", "")
                parsed = None if content_type.startswith("multipart/") else _json(body)
                answer = self.files.create(owner, parsed, content_type, body)
                return json_answer(201, answer)
            if method == "GET":
                return json_answer(200, self.files.page(owner, dict(req.query_params)))
            return detail(405, "Method Not Allowed")
        file_id = rest[0]
        if len(rest) == 2:
            if rest[1] != "complete":
                return detail(404, "Not Found")
            if method != "POST":
                return detail(405, "Method Not Allowed")
            return json_answer(200, self.files.complete(owner, file_id))
        if method == "GET":
            return json_answer(200, self.files.get(owner, file_id))
        if method == "DELETE":
            self.files.delete(owner, file_id)
            return Response(status_code=204)
        return detail(405, "Method Not Allowed")

    # ---- presigned URLs ---------------------------------------------------------------
    async def upload(self, req: Request, file_id: str, max_bytes: int) -> Response:
        if req.method != "PUT":
            return s3_error(405, "MethodNotAllowed", "The specified method is not allowed.")
        try:
            body = await read_body(req, max_bytes)
        except BodyTooLarge:
            return s3_error(400, "EntityTooLarge", "Your upload exceeds the sandbox's cap.")
        except ClientDisconnect:
            return DropConnection()
        content_type = req.headers.get("content-type", "")
        return self.files.put(file_id, dict(req.query_params), content_type, body)

    def output(self, req: Request, name: str) -> Output | Response:
        """The output's bytes, or S3's refusal."""
        if req.method not in ("GET", "HEAD"):
            return s3_error(405, "MethodNotAllowed", "The specified method is not allowed.")
        refusal = self.signer.refusal(catalog.OUTPUT_PREFIX + name, dict(req.query_params))
        if refusal is not None:
            return refusal
        found = self.jobs.output(name)
        if found is None:
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        return found
