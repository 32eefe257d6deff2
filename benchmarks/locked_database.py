"""Requests behind another process's write lock on the gateway's database (loopback only):
how long each of N concurrent predicts waits before its 503, and whether /healthz stays
quick. The lock is held by this script (BEGIN IMMEDIATE) for longer than the gateway's
5-second wait (until every predict has its reply), then released, and one more predict must be
answered.

Run: ``python benchmarks/locked_database.py [--clients 8] [--out FILE]`` (about a minute;
trains a softmax face recogniser first).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from local_gateway import new_keys, softmax_model, start_gateway

def timed_post(url: str, token: str, face: list[float]) -> tuple[int, float]:
    started = time.perf_counter()
    reply = httpx.post(f"{url}/v1/predict", headers={"Authorization": f"Bearer {token}"}, json={"inputs": [face]},
                       timeout=120)
    return reply.status_code, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        model, database = softmax_model(root), root / "gateway.db"
        tokens = new_keys(database, args.clients)
        server, url = start_gateway(model, database)
        face = np.full(112 * 92, 0.5).tolist()
        for token in tokens:  # each key cached by the server, as in steady service
            timed_post(url, token, face)
        holder = sqlite3.connect(database, isolation_level=None, timeout=30)
        holder.execute("BEGIN IMMEDIATE")
        held = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            waiting = [pool.submit(timed_post, url, token, face) for token in tokens]
            health_started = time.perf_counter()
            health = httpx.get(f"{url}/healthz", timeout=60).status_code
            health_seconds = time.perf_counter() - health_started
            replies = [future.result() for future in waiting]
        holding = time.perf_counter() - held
        holder.execute("ROLLBACK")
        holder.close()
        after = timed_post(url, tokens[0], face)[0]
        server.terminate()
        server.wait(timeout=60)
    waits = [seconds for _, seconds in replies]
    result = {"clients": args.clients, "statuses": [status for status, _ in replies],
              "wait_seconds": {"max": round(max(waits), 2), "median": round(statistics.median(waits), 2)},
              "lock_held_seconds_until_all_replied": round(holding, 2), "healthz": health,
              "healthz_seconds": round(health_seconds, 3), "answered_after_release": after}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
