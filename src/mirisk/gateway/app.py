"""The HTTP face of the gateway (FastAPI): /v1/predict, /v1/model, /healthz, /metrics.

Framing and credentials are read strictly, since a proxy in front may read them otherwise: a
request with both ``Transfer-Encoding`` and ``Content-Length``, or with two
``Authorization`` headers, is refused; only ``Authorization: Bearer KEY`` carries a key;
paths are matched exactly (no redirect of ``/v1/predict/``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse, Response
from starlette.requests import ClientDisconnect
from prometheus_client import CONTENT_TYPE_LATEST

from mirisk import __version__
from mirisk.gateway.inputs import BadRequest, InputContract
from mirisk.gateway.service import Gateway, Incoming, Reply

ERROR_SCHEMA = {
    "type": "object", "required": ["error", "reason"],
    "properties": {"error": {"type": "string", "description": "What was wrong, in words."},
                   "reason": {"type": "string", "enum": ["auth", "auth-rate", "revoked", "blocked", "policy",
                                                         "bad-input", "budget", "rate", "busy"]},
                   "request_id": {"type": ["integer", "null"], "description": "The refusal's audit-log record (null "
                                                                             "for a refused authentication, which "
                                                                             "is counted, not logged)."},
                   "queries_left": {"type": "integer"}},
}
ERRORS = {
    400: "Not JSON, or bad framing or headers (both Transfer-Encoding and Content-Length, two Authorization "
         "headers).",
    401: "No key, a wrong key, or a revoked key.",
    403: "The probe detector blocked the key, or its output policy does not fit the served model.",
    408: "The body did not arrive within the server's body deadline.",
    413: "More inputs than max_batch, or a body over the size limit.",
    422: "Not {\"inputs\": [...]} of JSON numbers in the model's shape and range.",
    429: "The key's query budget or rate limit, or too many failed authentications; see Retry-After.",
    503: "The database is locked by another process; see Retry-After.",
}
HEADERS = {
    "Retry-After": "Seconds after which a retry can succeed.",
    "RateLimit-Limit": "The key's query budget (per window, or in all).",
    "RateLimit-Remaining": "Queries left to the key.",
    "RateLimit-Reset": "Seconds until the key's window next frees queries (windowed budgets).",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    header_spec = {name: {"description": text, "schema": {"type": "integer"}} for name, text in HEADERS.items()}
    return {status: {"description": ERRORS[status], "headers": header_spec if status in (429, 503) else {},
                     "content": {"application/json": {"schema": ERROR_SCHEMA}}} for status in statuses}


def input_schema(contract: InputContract) -> dict[str, Any]:
    """The JSON Schema of ``inputs``: 1 to ``max_batch`` inputs, all nested in the model's
    shape or all flat of its size, of numbers inside its value range."""
    low, high = contract.value_range
    nested: dict[str, Any] = {"type": "number", "minimum": low, "maximum": high}
    flat = {"type": "array", "minItems": contract.input_size, "maxItems": contract.input_size, "items": nested}
    for size in reversed(contract.input_shape):
        nested = {"type": "array", "minItems": size, "maxItems": size, "items": nested}
    return {"description": f"Inputs, each nested as {contract.shape_text} or flat with {contract.input_size} "
                           f"numbers (all alike), JSON numbers in [{low:g}, {high:g}].",
            "oneOf": [{"type": "array", "minItems": 1, "maxItems": contract.max_batch, "items": form}
                      for form in (nested, flat)]}


def predict_schema(contract: InputContract) -> dict[str, Any]:
    return {
        "security": [{"bearer": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["inputs"], "additionalProperties": False,
            "properties": {"inputs": input_schema(contract)}}}}},
    }


def credentials(request: Request) -> tuple[str | None, BadRequest | None]:
    """The key from ``Authorization: Bearer KEY`` (None without one), and a framing or
    header problem that refuses the request."""
    if "transfer-encoding" in request.headers and "content-length" in request.headers:
        return None, BadRequest(400, "the request has both Transfer-Encoding and Content-Length; send one")
    given = request.headers.getlist("authorization")
    if len(given) > 1:
        return None, BadRequest(400, "the request has more than one Authorization header; send one")
    if not given:
        return None, None
    scheme, _, token = given[0].partition(" ")
    return (token.strip() or None if scheme.lower() == "bearer" else None), None


def body_reader(request: Request, limit: int):
    """Reads the body: None as soon as it passes ``limit`` bytes (declared or streamed), a
    408 :class:`BadRequest` when the connection closed before it all arrived (the server's
    body deadline, :mod:`mirisk.gateway.http_server`, closes it)."""
    async def read() -> bytes | None:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return None
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    return None
                chunks.append(chunk)
        except ClientDisconnect:
            raise BadRequest(408, "the body did not all arrive: the connection closed or the server's body "
                                  "deadline passed") from None
        return b"".join(chunks)
    return read


def as_response(reply: Reply) -> Response:
    return Response(reply.content(), status_code=reply.status, headers=reply.headers, media_type="application/json")


def create_app(gateway: Gateway) -> FastAPI:
    """The FastAPI app serving ``gateway`` (OpenAPI docs at /docs)."""
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        gateway.close()

    app = FastAPI(title="mirisk gateway", version=__version__, redirect_slashes=False, lifespan=lifespan,
                  description="A model served behind API keys, output policies, query budgets, an audit log and "
                              "a probe detector.")
    limit = gateway.settings.max_body_bytes

    # Registered first: the busiest route is matched first. The key and its standing are
    # checked on the event loop from the headers alone; the body is read only for a key that
    # may be answered, and sized from its bytes before it is parsed. Requests that reach the
    # ledger within two turns of the loop share one commit; SQLite's locks keep budgets exact
    # across several processes.
    @app.post("/v1/predict", summary="Policy-restricted outputs for a batch of inputs.",
              openapi_extra=predict_schema(gateway.contract),
              responses=error_responses(400, 401, 403, 408, 413, 422, 429, 503))
    async def predict(request: Request) -> Response:
        token, problem = credentials(request)
        client = request.client.host if request.client else None
        incoming = Incoming(token, client, body_reader(request, limit), problem)
        return as_response(await gateway.predict(incoming))

    @app.get("/healthz", summary="Liveness: the model is loaded and the database opens.")
    def healthz() -> dict[str, str]:
        gateway.connection().execute("SELECT 1")
        return {"status": "ok", "model": gateway.model.target.architecture, "policy": gateway.settings.policy}

    @app.get("/metrics", summary="Prometheus metrics.", response_class=PlainTextResponse)
    def metrics() -> Response:
        return Response(gateway.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/model", summary="The input contract, the classes, and the calling key's policy and budget.",
             openapi_extra={"security": [{"bearer": []}]}, responses=error_responses(400, 401, 403))
    async def model(request: Request) -> Response:
        token, problem = credentials(request)
        if problem is not None:
            return as_response(Reply(problem.status, {"error": problem.message, "reason": "bad-input"}))
        return as_response(gateway.describe(token))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API key from `mirisk keys create`."}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
