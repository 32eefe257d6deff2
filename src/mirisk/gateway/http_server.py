"""uvicorn as the gateway runs it: bounded connections, headers and waits.

uvicorn times out only an idle kept-alive connection; a client that opens a socket and
sends nothing, its headers a byte at a time, or less body than it declared, holds it for
ever. :func:`deadline_protocol` adds two deadlines on one timer per connection: a
connection whose next request head (request line and headers) has not fully arrived
``header_timeout`` seconds after it opened, or after its last response, is closed; a
request whose body has not all arrived ``body_timeout`` seconds after its head gets a 408
(unless its response has begun) and the connection is closed, which the app sees as a
disconnect (and logs). Arming a timer costs a few microseconds a request; a timeout
context in the app cost tens. ``max_connections`` caps open connections and running
requests (uvicorn answers 503 past it); ``max_header_bytes`` caps the head (h11 answers
400 past it). :func:`run_server` freezes the startup heap before serving."""

from __future__ import annotations

import asyncio
import gc
import math
from dataclasses import dataclass

import h11
import orjson
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


def timeout_response(body_timeout: float) -> bytes:
    """The raw 408 sent when a body misses its deadline (the connection closes after it)."""
    body = orjson.dumps({"error": f"the body did not arrive within {body_timeout:g} s", "reason": "bad-input"})
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body))


def deadline_protocol(header_timeout: float, body_timeout: float,
                      max_header_bytes: int = ServerLimits().max_header_bytes) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline on each request head and body, and a cap on
    the head's size however it arrives (h11 checks its own only while a head is incomplete,
    so a large head that arrives in one read passed it)."""
    timed_out = timeout_response(body_timeout)

    class DeadlineProtocol(H11Protocol):
        _timer: asyncio.TimerHandle | None = None
        _body_of: object = None  # the request whose body deadline is armed
        _head_bytes = 0  # bytes of the request head received so far

        def data_received(self, data: bytes) -> None:
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                end = data.find(b"\r\n\r\n")
                self._head_bytes += len(data) if end < 0 else end + 4
                if self._head_bytes > max_header_bytes:
                    self.send_400_response(f"request head larger than {max_header_bytes} bytes")
                    return
            super().data_received(data)

        def _arm(self, seconds: float) -> None:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_later(seconds, self._deadline_passed)

        def _deadline_passed(self) -> None:
            if self.transport.is_closing():
                return
            if self.conn.their_state is h11.IDLE:  # the next request's head has not all arrived
                self.transport.close()
            elif self.conn.their_state is h11.SEND_BODY:  # its body has not
                if self.cycle is not None and not self.cycle.response_started:
                    self.transport.write(timed_out)
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm(header_timeout)

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and self.cycle is not self._body_of and not self.transport.is_closing():
                self._body_of = self.cycle  # a new request's head arrived: its body's deadline starts
                self._arm(body_timeout)

        def on_response_complete(self) -> None:
            self._head_bytes = 0
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm(header_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._timer is not None:
                self._timer.cancel()
            super().connection_lost(exc)

    return DeadlineProtocol


def server_config(app: object, host: str, port: int, limits: ServerLimits) -> uvicorn.Config:
    """The uvicorn configuration that serves ``app`` under ``limits``."""
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                          http=deadline_protocol(limits.header_timeout, limits.body_timeout, limits.max_header_bytes),
                          timeout_keep_alive=limits.keep_alive,
                          limit_concurrency=limits.max_connections,
                          h11_max_incomplete_event_size=limits.max_header_bytes)


def run_server(config: uvicorn.Config) -> None:
    """Serve ``config`` until stopped, with the startup heap frozen (``gc.freeze``): the
    libraries, the model and the app leave the garbage collector's oldest generation, whose
    full collections otherwise paused the server about 125 ms each under load (the 99th
    percentile of one-face requests went from 80 ms to 13.5 ms; BENCHMARKS.md)."""
    gc.collect()
    gc.freeze()
    uvicorn.Server(config).run()
