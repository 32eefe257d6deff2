"""Where the gateway's per-request time goes, in one process: the gateway's decision for a
request (key check, input checks, budget pre-check, detector, model, policy, the deciding
SQLite transaction) against the bare handler's work (JSON decoding, the model, JSON
encoding), run alternately in blocks of 100 requests so machine noise hits both alike.
No HTTP: this isolates what the safeguards add.

Run: ``python benchmarks/gateway_cost.py [--model softmax] [--batch 1] [--detector/--no-detector]``
(about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import torch

from mirisk.data import load_faces
from mirisk.gateway.database import connect
from mirisk.gateway.detector import calibrate
from mirisk.gateway.keys import create_key
from mirisk.gateway.service import Gateway, GatewaySettings, Incoming
from mirisk.pipelines.faces import train_face_target
from mirisk.runtime import prepare_torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="softmax")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--detector", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    prepare_torch(0)
    torch.set_num_threads(1)
    faces = load_faces(None)
    target = train_face_target(args.model, faces)
    work = Path(tempfile.mkdtemp(prefix="mirisk-gateway-cost-"))
    connection = connect(work / "gateway.db")
    _, key = create_key(connection, label="benchmark", policy="scores", budget=10**12, window="1d")
    connection.close()
    detector = calibrate(faces.images, 0.01, action="alert") if args.detector else None
    gateway = Gateway(target, work / "gateway.db", GatewaySettings(policy="label", detector=detector))
    rng = np.random.default_rng(0)
    bodies = [orjson.dumps({"inputs": faces.images[rng.choice(len(faces.images), args.batch)].reshape(args.batch, -1)},
                           option=orjson.OPT_SERIALIZE_NUMPY) for _ in range(40)]
    network = target.frozen_network()  # the copy the gateway serves (ServedModel)

    def bare(body: bytes) -> bytes:
        batch = np.asarray(orjson.loads(body)["inputs"], dtype=np.float32)
        with torch.inference_mode():
            outputs = torch.softmax(network(torch.from_numpy(batch.reshape(len(batch), *target.input_shape))), 1)
        return orjson.dumps({"outputs": outputs.numpy()}, option=orjson.OPT_SERIALIZE_NUMPY)

    def incoming(body: bytes) -> Incoming:
        async def read_body() -> bytes:
            return body
        return Incoming(key, "127.0.0.1", read_body)

    async def through_gateway(n: int) -> None:  # one request at a time: every commit serves one request
        for i in range(n):
            reply = await gateway.predict(incoming(bodies[i % 40]))
            assert reply.status == 200, reply.body

    for i in range(200):  # warm-up
        bare(bodies[i % 40])
    asyncio.run(through_gateway(200))
    gateway_seconds = bare_seconds = 0.0
    for _ in range(args.blocks):
        started = time.perf_counter()
        asyncio.run(through_gateway(100))
        middle = time.perf_counter()
        for i in range(100):
            bare(bodies[i % 40])
        gateway_seconds += middle - started
        bare_seconds += time.perf_counter() - middle
    n = 100 * args.blocks
    print(f"{args.model}, {args.batch} per request, detector {'on' if args.detector else 'off'}: gateway "
          f"{gateway_seconds / n * 1e3:.3f} ms, bare {bare_seconds / n * 1e3:.3f} ms per request; the safeguards add "
          f"{(gateway_seconds - bare_seconds) / n * 1e3:.3f} ms ({gateway_seconds / bare_seconds - 1:.0%})")


if __name__ == "__main__":
    main()
