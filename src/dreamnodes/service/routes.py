"""The HTTP contract: routes, auth, answers. `Service` (in `app`) owns the state they use."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dreamnodes.errors import INPUT_CODES, DreamError
from dreamnodes.redact import scrub
from dreamnodes.service import envelope
from dreamnodes.service.envelope import InputProblems
from dreamnodes.service.runs import run_view
from dreamnodes.service.schemas import node_view, openapi, served_nodes
from dreamnodes.serving import BodyTooLarge, ClientDisconnect, DropConnection, read_body

if TYPE_CHECKING:
    from dreamnodes.service.app import Service

__all__ = ["build_app"]

STATIC = Path(__file__).parent / "static"
Handler = Callable[[Request], Awaitable[Response]]
_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.I)
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' http: https: data:;"
    " media-src 'self' http: https:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
}


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status, {**_HEADERS, **(headers or {})})


def error_answer(error: DreamError | InputProblems) -> Response:
    if isinstance(error, InputProblems):
        return _json(422, {"error": error.to_dict()})
    body = error.to_dict()
    if error.code in INPUT_CODES:
        return _json(422, {"error": {**body, "fields": [error.field] if error.field else []}})
    return _json(404 if error.code == "not_found" else 500, {"error": body})


def _problem(status: int, code: str, message: str, **extra: str) -> Response:
    return _json(status, {"error": {"code": code, "message": message, "retryable": False}}, extra)


def build_app(service: Service) -> Starlette:
    """The one ASGI app: API, page, static files and the providers' callback receiver."""
    cfg = service.config

    def guarded(handler: Handler) -> Handler:
        async def checked(request: Request) -> Response:
            if not service.auth.allowed(request):
                return _problem(
                    401,
                    "auth_failed",
                    "send Authorization: Bearer <token>",
                    **{"WWW-Authenticate": 'Bearer realm="dreamnodes"'},
                )
            try:
                return await handler(request)
            except (DreamError, InputProblems) as error:
                return error_answer(error)
            except BodyTooLarge:
                return _problem(413, "invalid_input", f"the body is over {cfg.max_body} bytes")
            except ClientDisconnect:
                return DropConnection()

        return checked

    async def body_of(request: Request) -> Any:
        return envelope.read_json(await read_body(request, cfg.max_body))

    def providers_of(node: str) -> list[str]:
        view = node_view(node)
        if view is None:
            raise DreamError("not_found", f"no node {node!r}", field="node")
        return list(view.get("providers") or ["luma"])

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=_HEADERS)

    async def session(request: Request) -> Response:
        secure = request.url.scheme == "https"
        if request.method == "DELETE":
            return _json(
                200,
                {"ok": True},
                {"Set-Cookie": service.auth.cookie_header(secure=secure, clear=True)},
            )
        if request.method == "GET":
            ok = service.auth.allowed(request)
            return _json(200 if ok else 401, {"signed_in": ok})
        try:
            body = await body_of(request)
        except (InputProblems, BodyTooLarge):
            body = {}
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not service.auth.token_matches(token):
            return _problem(401, "auth_failed", "token: not this server's token")
        return _json(
            200, {"signed_in": True}, {"Set-Cookie": service.auth.cookie_header(secure=secure)}
        )

    async def document(request: Request) -> Response:
        return _json(200, openapi())

    async def nodes(request: Request) -> Response:
        return _json(200, {"nodes": [node_view(n["id"]) for n in served_nodes()]})

    async def node(request: Request) -> Response:
        providers_of(request.path_params["node"])
        return _json(200, node_view(request.path_params["node"]))

    def prefer_wait(request: Request) -> float:
        found = _PREFER_WAIT.search(request.headers.get("prefer", ""))
        return 0.0 if found is None else min(float(found.group(1)), cfg.max_prefer_wait)

    def idempotency_key(request: Request) -> str | None:
        key = request.headers.get("idempotency-key")
        if key is not None and not _KEY.match(key):
            raise DreamError(
                "invalid_input",
                "Idempotency-Key: 1 to 200 visible ASCII characters",
                field="Idempotency-Key",
            )
        return key

    async def run_answer(run_id: str, waited: float, replayed: bool = False) -> Response:
        if waited > 0:
            await service.runs.wait(run_id, waited)
        record = service.store.get(run_id)
        view = run_view(
            record, service.secrets, {"notifications": service.store.notifications(run_id)}
        )
        headers = {"Location": f"/v1/runs/{run_id}"}
        if waited > 0:
            headers["Preference-Applied"] = f"wait={waited:g}"
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return _json(202 if view["status"] == "running" else 200, view, headers)

    async def post_run(request: Request) -> Response:
        name = request.path_params["node"]
        body = await body_of(request)
        try:
            spec = envelope.run_spec(name, body, providers=providers_of(name))
        except InputProblems as problems:  # the params' own problem too, when they can be read
            params = body.get("params") if isinstance(body, dict) else None
            if isinstance(params, dict):
                try:
                    service.runs.check(envelope.RunSpec(name, params))
                except DreamError as error:
                    field = error.field or "params"
                    problems.problems.append((field, error.message.removeprefix(f"{field}: ")))
            raise InputProblems(problems.problems) from None
        key = idempotency_key(request)
        service.runs.check(spec)
        if spec.notify_url:
            await service.notifier.check(spec.notify_url)
        if key is None:
            run_id, replayed = await service.runs.start(spec), False
        else:
            run_id, made = await service.runs.start_once(key, spec)
            replayed = not made
        answer = await run_answer(run_id, prefer_wait(request), replayed)
        return answer

    async def post_batch(request: Request) -> Response:
        name = request.path_params["node"]
        spec, items = envelope.batch_items(
            name, await body_of(request), providers=providers_of(name), max_items=cfg.max_batch
        )
        if spec.notify_url:
            await service.notifier.check(spec.notify_url)
        key = idempotency_key(request)
        if key is None:
            batch_id, replayed = service.batches.start(spec, items), False
        else:
            batch_id, made = await service.batches.start_once(key, spec, items)
            replayed = not made
        view = service.batches.view(batch_id)
        headers = {"Location": f"/v1/batches/{batch_id}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        done = replayed and view is not None and view["status"] != "running"
        return _json(200 if done else 202, view, headers)

    async def get_batch(request: Request) -> Response:
        found = service.batches.view(request.path_params["id"])
        if found is None:
            raise DreamError("not_found", f"no batch {request.path_params['id']!r}", field="id")
        found["notifications"] = service.store.notifications(found["id"])
        return _json(200, found)

    async def list_runs(request: Request) -> Response:
        query = request.query_params
        status, node_id = query.get("status") or None, query.get("node") or None
        try:
            limit = max(1, min(200, int(query.get("limit", "50"))))
        except ValueError:
            raise DreamError("invalid_input", "limit: expected a number", field="limit") from None
        ids = service.store.run_ids(
            status=status, node=node_id, before=query.get("cursor"), limit=limit
        )
        views = [run_view(service.store.get(i), service.secrets) for i in ids]
        if status is not None:
            views = [v for v in views if v["status"] == status]
        more = len(ids) == limit
        return _json(200, {"runs": views, "next_cursor": ids[-1] if more and ids else None})

    async def get_run(request: Request) -> Response:
        return await run_answer(request.path_params["id"], prefer_wait(request))

    async def engine(request: Request) -> Response:
        try:
            status = await asyncio.to_thread(service.engine_status)
        except Exception as exc:  # the broker away: say so, do not fail the page
            status = {"engine": "celery", "error": f"the engine cannot be reached: {exc}"}
        return JSONResponse(scrub(status, service.secrets))

    async def retry(request: Request) -> Response:
        body = await body_of(request)
        timeout = body.get("timeout") if isinstance(body, dict) else None
        if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
            raise InputProblems([("timeout", "expected a number of seconds above 0")])
        run_id = await service.runs.retry(request.path_params["id"], timeout=timeout)
        return await run_answer(run_id, prefer_wait(request))

    app = Starlette(
        routes=[
            Route("/", page),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
            Route("/v1/session", session, methods=["GET", "POST", "DELETE"]),
            Route("/openapi.json", document),  # public: schemas only, imported by URL
            Route("/v1/nodes", guarded(nodes)),
            Route("/v1/nodes/{node}", guarded(node)),
            Route("/v1/nodes/{node}/runs", guarded(post_run), methods=["POST"]),
            Route("/v1/nodes/{node}/batches", guarded(post_batch), methods=["POST"]),
            Route("/v1/batches/{id}", guarded(get_batch)),
            Route("/v1/runs", guarded(list_runs)),
            Route("/v1/runs/{id}", guarded(get_run)),
            Route("/v1/runs/{id}/retry", guarded(retry), methods=["POST"]),
            Route("/v1/engine", guarded(engine)),
            service.receiver.route(),
        ]
    )
    app.router.redirect_slashes = False
    return app
