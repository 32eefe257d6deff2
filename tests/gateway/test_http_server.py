"""`mirisk serve`'s own limits, over real sockets: a deadline on request heads and bodies,
and a cap on connections."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.servers import start_server


@pytest.fixture(scope="module")
def strict_server(served_model, tmp_path_factory):
    running = start_server(served_model, tmp_path_factory.mktemp("strict") / "gateway.db", "--detector", "off",
                           "--header-timeout", "1", "--body-timeout", "1", "--max-connections", "4")
    yield running
    running.stop()


def open_socket(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def closed_by_server(connection: socket.socket) -> bool:
    """Whether the server closes the socket (within the socket's timeout)."""
    try:
        while connection.recv(4096):
            pass
        return True
    except TimeoutError:
        return False


def test_silent_and_slow_heads_are_closed_at_the_deadline(strict_server):
    silent = open_socket(strict_server.url)
    slow = open_socket(strict_server.url)
    slow.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: gateway\r\n")  # and never the rest
    assert closed_by_server(silent) and closed_by_server(slow)


def test_a_body_shorter_than_declared_gets_a_408(strict_server):
    _, token = strict_server.new_key()
    connection = open_socket(strict_server.url)
    connection.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {token}\r\n"
                       "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"inputs\"".encode())
    reply = b""
    while chunk := connection.recv(4096):  # the server closes the connection after the 408
        reply += chunk
    assert reply.startswith(b"HTTP/1.1 408") and b"did not arrive within 1 s" in reply


@pytest.mark.parametrize("header_bytes", [17 * 1024, 100 * 1024])
def test_a_request_head_over_16_kib_gets_a_400_even_when_it_arrives_at_once(strict_server, header_bytes):
    _, token = strict_server.new_key()
    padding = "x" * header_bytes
    reply = httpx.post(f"{strict_server.url}/v1/predict", headers={"Authorization": f"Bearer {token}",
                                                                   "X-Padding": padding}, json={"inputs": []},
                       timeout=10)
    assert reply.status_code == 400 and "request head larger than 16384 bytes" in reply.text
    assert httpx.get(f"{strict_server.url}/healthz", headers={"X-Padding": "x" * 15_000}, timeout=10).status_code == 200


def test_connections_past_the_cap_get_503_until_idle_ones_time_out(strict_server):
    idle = [open_socket(strict_server.url) for _ in range(4)]
    deadline = time.monotonic() + 10  # until the server has taken all four connections in
    while (status := httpx.get(f"{strict_server.url}/healthz", timeout=10).status_code) != 503:
        assert time.monotonic() < deadline, f"no 503 within 10 s past the cap (last status {status})"
    assert status == 503
    assert all(closed_by_server(connection) for connection in idle)
    assert httpx.get(f"{strict_server.url}/healthz", timeout=10).status_code == 200


def test_the_server_runs_with_its_startup_heap_frozen(monkeypatch):
    """Full collections of a heap holding torch, the model and the app paused the server
    about 125 ms each under load; frozen, they take 0.3 ms (BENCHMARKS.md)."""
    import gc

    import uvicorn
    from fastapi import FastAPI

    from mirisk.gateway.http_server import ServerLimits, run_server, server_config

    frozen_when_serving = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: frozen_when_serving.append(gc.get_freeze_count()))
    try:
        run_server(server_config(FastAPI(), "127.0.0.1", 8000, ServerLimits()))
    finally:
        gc.unfreeze()
    assert frozen_when_serving and frozen_when_serving[0] > 10_000
