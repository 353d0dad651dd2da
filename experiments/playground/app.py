"""The playground's web app: Starlette routes over ``Sessions``.

    GET  /                         the page (static/index.html)
    GET  /static/...               its JS and CSS (Starlette's StaticFiles: no
                                   path outside static/ can be read)
    GET  /api/options              the library's tables, caps and defaults
    POST /api/session              a new session id (one run per page)
    POST /api/configure?session=   JSON settings -> data, params, first boundary
    POST /api/upload?session=      a CSV file as the body (<= 256 KiB)
    POST /api/control?session=     {"action": start | pause | step | reset}
    GET  /api/events?session=      Server-Sent Events: each new update
    GET  /api/state?session=       the latest update (JSON)
    POST /api/gradcheck?session=   the gradient check table at the current params
    GET  /api/code?session=        the Python that reproduces the run
    GET  /api/checkpoint?session=  the params as a jaxnet.checkpoint .npz

A bad request gets status 400 (404 for an unknown session, 413 for a body
over its cap) and {"error": one line, "field": the control} that the page
shows; the server goes on serving. The blocking work (building a run, joining
a thread, the gradient check) runs in Starlette's thread pool.
"""

import asyncio
import json
import threading
from pathlib import Path

import jax
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from experiments.playground.datasets import MAX_UPLOAD_BYTES
from experiments.playground.session import Session, Sessions
from experiments.playground.settings import SettingsError, options

STATIC = Path(__file__).parent / "static"
MAX_JSON_BYTES = 16 * 1024
POLL_SECONDS = 0.03  # how often an event stream looks for a new update
HEARTBEAT_SECONDS = 10.0


class RequestError(Exception):
    def __init__(self, status: int, message: str, field: str = ""):
        super().__init__(message)
        self.status, self.field = status, field


def _error(status: int, message: str, field: str = "") -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)


async def _body(request: Request, limit: int, what: str) -> bytes:
    """The request body, refused (413) past ``limit`` bytes without reading on."""
    declared = request.headers.get("content-length")
    too_big = RequestError(
        413, f"the {what} is larger than the {limit:,}-byte limit", what
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(sessions: Sessions | None = None) -> Starlette:
    """The ASGI app; ``app.state.sessions`` and ``app.state.closing`` (an Event
    that ends every event stream, set on shutdown)."""
    # The gradient check compares in float64; training stays float32 (the
    # params' dtype sets the run's).
    jax.config.update("jax_enable_x64", True)
    sessions = sessions or Sessions()
    closing = threading.Event()

    def session_of(request: Request) -> Session:
        session = sessions.get(request.query_params.get("session"))
        if session is None:
            raise RequestError(
                404, "unknown or expired session: reload the page", "session"
            )
        return session

    async def json_object(request: Request) -> dict:
        body = await _body(request, MAX_JSON_BYTES, "settings")
        try:
            value = json.loads(body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RequestError(400, f"the request is not valid JSON ({e})") from None
        if not isinstance(value, dict):
            raise RequestError(400, "the request must be a JSON object")
        return value

    def handler(work):
        async def endpoint(request: Request) -> Response:
            try:
                return await work(request)
            except RequestError as e:
                return _error(e.status, str(e), e.field)
            except SettingsError as e:
                return _error(400, str(e), e.field)
            except ValueError as e:  # the library's own one-line messages
                return _error(400, str(e))

        return endpoint

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def get_options(request: Request) -> Response:
        return JSONResponse(options())

    async def new_session(request: Request) -> Response:
        session = await run_in_threadpool(sessions.create)
        return JSONResponse({"session": session.sid})

    async def configure(request: Request) -> Response:
        session = session_of(request)
        raw = await json_object(request)
        return JSONResponse(await run_in_threadpool(session.configure, raw))

    async def upload(request: Request) -> Response:
        session = session_of(request)
        data = await _body(request, MAX_UPLOAD_BYTES, "csv")
        return JSONResponse(await run_in_threadpool(session.set_upload, data))

    actions = {"start", "pause", "step", "reset"}

    async def control(request: Request) -> Response:
        session = session_of(request)
        action = (await json_object(request)).get("action")
        if action not in actions:
            raise RequestError(
                400, f"unknown action {action!r}; one of {sorted(actions)}", "action"
            )
        return JSONResponse(await run_in_threadpool(getattr(session, action)))

    async def state(request: Request) -> Response:
        return JSONResponse(session_of(request).snapshot()[1])

    async def events(request: Request) -> Response:
        session = session_of(request)
        limit = request.query_params.get("max_events", "")
        most = int(limit) if limit.isdigit() else None

        async def stream():
            seen, sent, quiet = -1, 0, 0.0
            while not closing.is_set() and (most is None or sent < most):
                version, latest = session.snapshot()
                if version != seen:
                    seen, sent, quiet = version, sent + 1, 0.0
                    yield f"data: {json.dumps(latest)}\n\n"
                    continue
                if quiet >= HEARTBEAT_SECONDS:
                    quiet = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(POLL_SECONDS)
                quiet += POLL_SECONDS

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            stream(), media_type="text/event-stream", headers=headers
        )

    async def gradcheck(request: Request) -> Response:
        session = session_of(request)
        return JSONResponse(await run_in_threadpool(session.gradient_check))

    async def get_code(request: Request) -> Response:
        return PlainTextResponse(await run_in_threadpool(session_of(request).code))

    async def checkpoint(request: Request) -> Response:
        session = session_of(request)
        data = await run_in_threadpool(session.checkpoint_bytes)
        headers = {"Content-Disposition": 'attachment; filename="playground.npz"'}
        return Response(data, media_type="application/octet-stream", headers=headers)

    routes = [
        Route("/", page),
        Route("/api/options", handler(get_options)),
        Route("/api/session", handler(new_session), methods=["POST"]),
        Route("/api/configure", handler(configure), methods=["POST"]),
        Route("/api/upload", handler(upload), methods=["POST"]),
        Route("/api/control", handler(control), methods=["POST"]),
        Route("/api/events", handler(events)),
        Route("/api/state", handler(state)),
        Route("/api/gradcheck", handler(gradcheck), methods=["POST"]),
        Route("/api/code", handler(get_code)),
        Route("/api/checkpoint", handler(checkpoint)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.sessions = sessions
    app.state.closing = closing
    return app
