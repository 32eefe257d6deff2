"""A flood of bad keys against a real `mirisk serve` (loopback only): how much the database
and its WAL grow, and whether a valid key from the same address is answered during and
after. Each round sends 1,000 requests with a wrong key from 8 concurrent clients, then one
request with the valid key; the server is then stopped (it writes its refusal counts) and
the files are measured.

Run: ``python benchmarks/auth_flood.py [--requests 30000] [--out benchmarks/results/auth_flood.json]``
(about 2 minutes on 2 cores; trains a softmax face recogniser first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from local_gateway import new_keys, softmax_model, start_gateway

BAD_KEY = "mk_000000000000_" + "x" * 43


def database_bytes(database: Path) -> int:
    return sum(path.stat().st_size for path in (database, database.with_name(database.name + "-wal")) if path.exists())


async def flood(url: str, token: str, requests: int, face: list[float]) -> list[int]:
    """Bad-key rounds of 1,000 (8 clients), each followed by one valid request; its statuses."""
    valid = []
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=9)) as client:
        async def bad(count: int) -> None:
            for _ in range(count):
                reply = await client.post("/v1/predict", headers={"Authorization": f"Bearer {BAD_KEY}"},
                                          json={"inputs": [face]})
                assert reply.status_code in (401, 429), reply.status_code
        for _ in range(requests // 1000):
            await asyncio.gather(*(bad(125) for _ in range(8)))
            reply = await client.post("/v1/predict", headers={"Authorization": f"Bearer {token}"},
                                      json={"inputs": [face]})
            valid.append(reply.status_code)
    return valid


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        model, database = softmax_model(root), root / "gateway.db"
        (token,) = new_keys(database, 1)
        server, url = start_gateway(model, database)
        face = np.full(112 * 92, 0.5).tolist()
        before = database_bytes(database)
        started = time.perf_counter()
        during = asyncio.run(flood(url, token, args.requests, face))
        seconds = time.perf_counter() - started
        after_flood = httpx.post(f"{url}/v1/predict", headers={"Authorization": f"Bearer {token}"},
                                 json={"inputs": [face]}, timeout=30).status_code
        server.terminate()
        server.wait(timeout=60)
        grown = database_bytes(database) - before
        with sqlite3.connect(database) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            counted = connection.execute("SELECT decision, SUM(refusals) FROM auth_refusals GROUP BY decision"
                                         ).fetchall() if "auth_refusals" in tables else []  # none before 2026-12-07
            logged = connection.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    result = {"bad_key_requests": args.requests, "seconds": round(seconds, 1), "grown_bytes": grown,
              "grown_mib": round(grown / 2**20, 3), "valid_key_during": during, "valid_key_after": after_flood,
              "refusals_counted": dict(counted), "request_rows_logged": logged}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
