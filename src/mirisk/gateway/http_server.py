"""uvicorn as the gateway runs it: bounded connections, headers and waits.

uvicorn times out only an idle kept-alive connection; a client that opens a socket and
sends nothing, or its headers a byte at a time, holds it for ever. :func:`deadline_protocol`
adds a deadline for a request's head (request line and headers): a connection whose next
request head has not fully arrived ``header_timeout`` seconds after it opened, or after
its last response, is closed. The body's own deadline is the app's (a 408,
``body_timeout``). ``max_connections`` caps open connections and running requests (uvicorn
answers 503 past it); ``max_header_bytes`` caps the head (h11 answers 400 past it)."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from mirisk.errors import MiriskError


@dataclass(frozen=True)
class ServerLimits:
    """Timeouts (seconds) and sizes the server holds every client to."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive: int = 5
    max_connections: int = 256
    max_header_bytes: int = 16 * 1024

    def __post_init__(self) -> None:
        for name in ("header_timeout", "body_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= 3600):
                raise MiriskError(f"{name.replace('_', ' ')} must be in (0, 3600] seconds, got {value!r}")
        if not 1 <= self.max_connections <= 100_000:
            raise MiriskError(f"the connection cap must be between 1 and 100,000, got {self.max_connections}")


def deadline_protocol(header_timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline on each request head."""

    class HeadDeadlineProtocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def _arm_head_deadline(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(header_timeout, self._head_deadline_passed)

        def _head_deadline_passed(self) -> None:
            # IDLE: the request line and headers of the next request have not all arrived.
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_head_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

    return HeadDeadlineProtocol


def server_config(app: object, host: str, port: int, limits: ServerLimits) -> uvicorn.Config:
    """The uvicorn configuration that serves ``app`` under ``limits``."""
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                          http=deadline_protocol(limits.header_timeout), timeout_keep_alive=limits.keep_alive,
                          limit_concurrency=limits.max_connections,
                          h11_max_incomplete_event_size=limits.max_header_bytes)
