"""What the gateway does with each request, independent of the web framework: authenticate,
validate, check the key's rules, watch for probing, answer under the key's policy, and
record the decision before anything is sent back."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from mirisk.access.policies import parse_policy
from mirisk.gateway.database import connect
from mirisk.gateway.detector import DetectorSettings, ProbeDetector
from mirisk.gateway.inputs import BadRequest, InputContract, input_digests, parse_inputs
from mirisk.gateway.keys import ApiKey, authenticate
from mirisk.gateway.ledger import Decision, flag_key, log_refusal, precheck, queries_left, settle
from mirisk.gateway.metrics import GatewayMetrics
from mirisk.gateway.serving import ServedModel
from mirisk.models.target import TargetModel

UNLIMITED_THROTTLE = 10**9


@dataclass(frozen=True)
class GatewaySettings:
    """The default output policy (a key may override it), request limits and the detector
    (None: off)."""

    policy: str = "label"
    max_batch: int = 64
    max_body_bytes: int = 16 * 2**20
    detector: DetectorSettings | None = None

    def __post_init__(self) -> None:
        parse_policy(self.policy)


@dataclass(frozen=True)
class Reply:
    """An HTTP status, a JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        return orjson.dumps(self.body, option=orjson.OPT_SERIALIZE_NUMPY)


class Gateway:
    """The model at ``target`` behind the keys, budgets and log in the SQLite file ``database``."""

    def __init__(self, target: TargetModel, database: Path, settings: GatewaySettings) -> None:
        self.settings = settings
        self.model = ServedModel(target)
        low, high = target.value_range
        self.contract = InputContract(tuple(target.input_shape), (float(low), float(high)), settings.max_batch,
                                      settings.max_body_bytes)
        self.metrics = GatewayMetrics()
        self.detector = None if settings.detector is None else ProbeDetector(settings.detector, self.contract.input_size)
        self._database = Path(database)
        connect(self._database).close()
        self._local = threading.local()

    @property
    def _throttle(self) -> int:
        return UNLIMITED_THROTTLE if self.settings.detector is None else self.settings.detector.throttle_per_minute

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections are not shared between threads)."""
        if getattr(self._local, "connection", None) is None:
            self._local.connection = connect(self._database)
        return self._local.connection

    def _refuse(self, key_id: str | None, decision: Decision, **logged: Any) -> Reply:
        """Log a refusal decided before the model ran, and reply with it."""
        return self._refusal_reply(log_refusal(self.connection(), key_id, decision, **logged))

    def _refusal_reply(self, decision: Decision) -> Reply:
        reason = decision.decision.removeprefix("rejected:")
        self.metrics.requests.labels(reason).inc()
        body: dict[str, Any] = {"error": decision.detail, "reason": reason, "request_id": decision.request_id}
        headers = {}
        if decision.queries_left is not None:
            body["queries_left"] = decision.queries_left
        if decision.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if decision.retry_after is not None:
            headers["Retry-After"] = str(decision.retry_after)
        return Reply(decision.status, body, headers)

    def _key(self, token: str | None) -> tuple[str | None, ApiKey | None]:
        if not token:
            return None, None
        return authenticate(self.connection(), token)

    def describe(self, token: str | None) -> Reply:
        """The model's input contract and classes, and the calling key's policy and budget."""
        key_id, key = self._key(token)
        if key is None or key.revoked is not None:
            return Reply(401, {"error": "missing, invalid or revoked API key", "reason": "auth"},
                         {"WWW-Authenticate": "Bearer"})
        target = self.model.target
        return Reply(200, {
            "architecture": target.architecture, "input_shape": list(target.input_shape),
            "value_range": list(self.contract.value_range), "classes": list(target.class_names),
            "policy": key.policy or self.settings.policy, "max_batch": self.settings.max_batch,
            "queries_left": queries_left(self.connection(), key, time.time()),
        })

    def predict(self, token: str | None, body: bytes | None) -> Reply:
        """Answer ``{"inputs": [...]}`` for the key ``token``, or refuse; always logged.
        ``body`` is None when it was over the size limit."""
        started = time.perf_counter()
        try:
            return self._predict(token, body)
        finally:
            self.metrics.latency.observe(time.perf_counter() - started)

    def _predict(self, token: str | None, body: bytes | None) -> Reply:
        key_id, key = self._key(token)
        if key is None:
            message = "missing API key: send 'Authorization: Bearer KEY'" if not token else "invalid API key"
            return self._refuse(key_id, Decision("rejected:auth", 401, message))
        try:
            batch = parse_inputs(body, self.contract)
        except BadRequest as error:
            return self._refuse(key.id, Decision("rejected:bad-input", error.status, error.message))
        policy, digests = key.policy or self.settings.policy, input_digests(batch)
        refusal = precheck(self.connection(), key, len(batch), self._throttle)
        if refusal is not None:
            return self._refuse(key.id, refusal, n_inputs=len(batch), digests=digests, policy=policy)
        if self.detector is not None and self.settings.detector is not None:
            alert = self.detector.observe(key.id, batch)
            if alert is not None:
                flag_key(self.connection(), key.id, alert.reason, self.settings.detector.action)
                self.metrics.alerts.labels(self.settings.detector.action).inc()
        outputs = self.model.answer(batch, policy)
        decision = settle(self.connection(), key.id, digests, policy,
                          orjson.dumps(outputs, option=orjson.OPT_SERIALIZE_NUMPY).decode(), self._throttle)
        if not decision.answered:  # a race lost to another request, or the detector's block
            return self._refusal_reply(decision)
        self.metrics.requests.labels("answered").inc()
        self.metrics.queries.inc(len(batch))
        if decision.queries_left == 0:
            self.metrics.budget_exhausted.inc()
        return Reply(200, {"outputs": outputs, "policy": policy, "queries_left": decision.queries_left,
                           "request_id": decision.request_id})
