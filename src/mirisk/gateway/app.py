"""The HTTP face of the gateway (FastAPI): /v1/predict, /v1/model, /healthz, /metrics."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from mirisk import __version__
from mirisk.gateway.service import Gateway, Reply

PREDICT_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object", "required": ["inputs"],
            "properties": {"inputs": {"type": "array", "description": "Inputs, each nested in the model's input "
                                                                        "shape or flat of the same size.",
                                      "items": {"type": "array", "items": {}}}},
        }}},
    },
}


def bearer_token(request: Request) -> str | None:
    """The key from ``Authorization: Bearer KEY``; None when the header is missing."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else header


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def as_response(reply: Reply) -> Response:
    return Response(reply.content(), status_code=reply.status, headers=reply.headers, media_type="application/json")


def create_app(gateway: Gateway) -> FastAPI:
    """The FastAPI app serving ``gateway`` (OpenAPI docs at /docs)."""
    app = FastAPI(title="mirisk gateway", version=__version__,
                  description="A model served behind API keys, output policies, query budgets, an audit log and "
                              "a probe detector.")

    # Registered first: the busiest route is matched first.
    # The decision runs on the event loop itself: it is CPU-bound (model, SQLite) and short,
    # so a hop to a worker thread would only add latency under the GIL. Requests that reach
    # the ledger within two turns of the loop share one commit; SQLite's locks keep budgets
    # exact across several processes.
    @app.post("/v1/predict", summary="Policy-restricted outputs for a batch of inputs.", openapi_extra=PREDICT_SCHEMA)
    async def predict(request: Request) -> Response:
        body = await read_body(request, gateway.settings.max_body_bytes)
        return as_response(await gateway.predict(bearer_token(request), body))

    @app.get("/healthz", summary="Liveness: the model is loaded and the database opens.")
    def healthz() -> dict[str, str]:
        gateway.connection().execute("SELECT 1")
        return {"status": "ok", "model": gateway.model.target.architecture, "policy": gateway.settings.policy}

    @app.get("/metrics", summary="Prometheus metrics.")
    def metrics() -> Response:
        return Response(gateway.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/model", summary="The input contract, the classes, and the calling key's policy and budget.")
    async def model(request: Request) -> Response:
        return as_response(gateway.describe(bearer_token(request)))

    return app
