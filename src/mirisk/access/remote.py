"""The remote oracle: the black-box attacks, unchanged, against a live mirisk gateway.

It offers what :class:`~mirisk.access.oracle.Oracle` offers (``query``, ``remaining``,
``queries_used``, ``policy``, the input contract), read from the gateway's ``/v1/model``
and spent through ``/v1/predict``, so an audit tests the deployment itself: its policy,
its budget and its probe detector. Inputs are clamped to the value range before they are
sent, as the local oracle clamps them."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import orjson
import torch

from mirisk.access.oracle import OracleRefused, QueryBudgetExhausted, check_query
from mirisk.access.policies import parse_policy
from mirisk.errors import MiriskError


class GatewayRefused(OracleRefused, MiriskError):
    """The gateway refused the key: revoked, blocked by its probe detector, or rate-limited.
    An attack stops at this with its best result so far (``reason``: ``gateway-<why>``)."""

    def __init__(self, message: str, why: str) -> None:
        super().__init__(message)
        self.reason = f"gateway-{why}"


class RemoteOracle:
    """Queries a model served by ``mirisk serve`` at ``endpoint`` with ``api_key``."""

    def __init__(self, endpoint: str, api_key: str, budget: int | None = None, timeout: float = 300.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise MiriskError(f"the gateway endpoint must be an http:// or https:// URL, got {endpoint!r}")
        if not api_key:
            raise MiriskError("an API key for the gateway is needed (--api-key or MIRISK_API_KEY)")
        if budget is not None and budget < 0:
            raise MiriskError(f"the query budget must be >= 0, got {budget}")
        self.endpoint = endpoint.rstrip("/")
        self._client = httpx.Client(base_url=self.endpoint, headers={"Authorization": f"Bearer {api_key}"},
                                    timeout=timeout, transport=transport)
        info = self._call("GET", "/v1/model")
        self.input_shape = tuple(int(size) for size in info["input_shape"])
        self.value_range = (float(info["value_range"][0]), float(info["value_range"][1]))
        self.class_names = tuple(info["classes"])
        self.n_classes = len(self.class_names)
        self.policy = parse_policy(info["policy"])
        self.max_batch = int(info["max_batch"])
        served: int | None = info["queries_left"]
        self.budget = served if budget is None else (budget if served is None else min(budget, served))
        self._remaining: int | None = served
        self.queries_used = 0

    @property
    def remaining(self) -> int | None:
        """Queries left (None: unlimited): the gateway's count for this key as of its last
        reply, or what is left of this oracle's own ``budget`` if that is smaller."""
        if self.budget is None or self._remaining is None:
            return self._remaining if self.budget is None else self.budget - self.queries_used
        return min(self._remaining, self.budget - self.queries_used)

    def check_serves(self, class_names: tuple[str, ...], input_shape: tuple[int, ...]) -> None:
        """Refuse a gateway that serves another model than the one the results are measured on."""
        if self.class_names != tuple(class_names) or self.input_shape != tuple(input_shape):
            raise MiriskError(f"the gateway at {self.endpoint} serves {self.n_classes} classes on inputs "
                              f"{self.input_shape}; the model given has {len(class_names)} classes on {tuple(input_shape)}"
                              f" (or other class names): point --model at the model the gateway serves")

    def _call(self, method: str, path: str, content: bytes | None = None, requested: int = 0) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, content=content,
                                            headers=None if content is None else {"Content-Type": "application/json"})
        except httpx.HTTPError as error:
            raise MiriskError(f"cannot reach the gateway at {self.endpoint}: {error}") from None
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise MiriskError(f"{self.endpoint}{path} answered {response.status_code} without JSON; is it a mirisk "
                              f"gateway?") from None
        if response.status_code == 200:
            return body
        detail = body.get("error") or body.get("detail") or response.reason_phrase
        if body.get("reason") == "budget":
            self._remaining = int(body.get("queries_left", 0))
            raise QueryBudgetExhausted(requested, self._remaining)
        if body.get("reason") in ("auth", "revoked", "blocked", "rate"):
            raise GatewayRefused(f"the gateway refused this key ({response.status_code}): {detail}", body["reason"])
        raise MiriskError(f"the gateway rejected the request ({response.status_code}): {detail}")

    @torch.no_grad()
    def query(self, inputs: torch.Tensor) -> torch.Tensor:
        """Policy-restricted outputs ``[N, n_classes]``, sent in batches the gateway accepts."""
        check_query(inputs, self.input_shape, self.remaining)
        flat = inputs.clamp(*self.value_range).reshape(len(inputs), -1).numpy().astype(np.float32)
        outputs = []
        for chunk in np.array_split(flat, -(-len(flat) // self.max_batch)):
            body = self._call("POST", "/v1/predict", orjson.dumps({"inputs": chunk}, option=orjson.OPT_SERIALIZE_NUMPY),
                              requested=len(chunk))
            self.queries_used += len(chunk)
            self._remaining = body["queries_left"]
            outputs.append(np.asarray(body["outputs"], dtype=np.float32))
        return torch.from_numpy(np.concatenate(outputs))

    def close(self) -> None:
        self._client.close()
