"""What the gateway does with each request, independent of the web framework: authenticate,
validate, check the key's rules, watch for probing, answer under the key's policy, and
record the decision before anything is sent back."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from mirisk.access.policies import parse_policy
from mirisk.gateway.database import BackgroundCheckpointer, connect, input_digest
from mirisk.gateway.detector import DetectorSettings, ProbeDetector
from mirisk.gateway.group_commit import GroupCommitter
from mirisk.gateway.inputs import BadRequest, InputContract, input_digests, parse_inputs
from mirisk.gateway.keys import ApiKey, KeyCache, authenticate, list_keys
from mirisk.gateway.ledger import Decision, Settlement, flag_key, log_refusal, precheck, queries_left
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
        parse_policy(settings.policy).check_classes(target.n_classes)
        self.model = ServedModel(target)
        low, high = target.value_range
        self.contract = InputContract(tuple(target.input_shape), (float(low), float(high)), settings.max_batch,
                                      settings.max_body_bytes)
        self.metrics = GatewayMetrics()
        self.detector = None if settings.detector is None else ProbeDetector(settings.detector, self.contract.input_size)
        self._database = Path(database)
        with closing(connect(self._database)) as connection:
            self._input_digest = input_digest(connection)
            for key in list_keys(connection):  # a key's policy must fit this model before anything is served
                if key.policy:
                    parse_policy(key.policy).check_classes(target.n_classes)
        self._local = threading.local()
        self._keys = KeyCache()
        self._queries_left: dict[str, int | None] = {}  # what each key's last answer here left it
        self._committer = GroupCommitter(self.connection, self._throttle, BackgroundCheckpointer(self._database))

    @property
    def _throttle(self) -> int:
        return UNLIMITED_THROTTLE if self.settings.detector is None else self.settings.detector.throttle_per_minute

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections are not shared between threads)."""
        if getattr(self._local, "connection", None) is None:
            self._local.connection = connect(self._database)
            self._local.connection.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job
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

    def describe(self, token: str | None) -> Reply:
        """The model's input contract and classes, and the calling key's policy and budget."""
        key = authenticate(self.connection(), token)[1] if token else None
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

    async def predict(self, token: str | None, body: bytes | None) -> Reply:
        """Answer ``{"inputs": [...]}`` for the key ``token``, or refuse; always logged.
        ``body`` is None when it was over the size limit."""
        started = time.perf_counter()
        try:
            prepared = self._prepare(token, body)
            if isinstance(prepared, Reply):
                return prepared
            decision = await self._committer.settle(prepared)
            return self._reply(prepared, decision)
        finally:
            self.metrics.latency.observe(time.perf_counter() - started)

    def _worth_prechecking(self, key: ApiKey, n_inputs: int) -> bool:
        """Whether the key might be refused before the model runs. A key whose last answer
        here left it ``n_inputs`` queries or more, with no rate limit and no throttle or block
        on it, is not checked twice: the deciding transaction checks it anyway, and a rare
        refusal there only costs the model's work."""
        if key.id not in self._queries_left or key.rate_per_minute is not None:
            return True
        if key.flag_action not in (None, "alert"):
            return True
        left = self._queries_left[key.id]
        return left is not None and left < n_inputs

    def _prepare(self, token: str | None, body: bytes | None) -> Settlement | Reply:
        """The answer waiting on its decision, or a refusal (already logged)."""
        key_id, key = self._keys.authenticate(self.connection(), token) if token else (None, None)
        if key is None:
            message = "missing API key: send 'Authorization: Bearer KEY'" if not token else "invalid API key"
            return self._refuse(key_id, Decision("rejected:auth", 401, message))
        try:
            batch = parse_inputs(body, self.contract)
        except BadRequest as error:
            return self._refuse(key.id, Decision("rejected:bad-input", error.status, error.message))
        policy, digests = key.policy or self.settings.policy, input_digests(batch, self._input_digest)
        if self._worth_prechecking(key, len(batch)):
            refusal = precheck(self.connection(), key, len(batch), self._throttle)
            if refusal is not None:
                return self._refuse(key.id, refusal, n_inputs=len(batch), digests=digests, policy=policy)
        if self.detector is not None and self.settings.detector is not None:
            alert = self.detector.observe(key.id, batch)
            if alert is not None:
                flag_key(self.connection(), key.id, alert.reason, self.settings.detector.action)
                self._keys.forget(key.id)
                self.metrics.alerts.labels(self.settings.detector.action).inc()
        outputs = orjson.dumps(self.model.answer(batch, policy), option=orjson.OPT_SERIALIZE_NUMPY).decode()
        return Settlement(key.id, digests, policy, outputs)

    def _reply(self, settlement: Settlement, decision: Decision) -> Reply:
        if not decision.answered:  # a race lost to another request, the detector's block, a revoked key
            self._keys.forget(settlement.key_id)
            self._queries_left.pop(settlement.key_id, None)
            return self._refusal_reply(decision)
        self._queries_left[settlement.key_id] = decision.queries_left
        self.metrics.answered.inc()
        self.metrics.queries.inc(len(settlement.digests))
        if decision.queries_left == 0:
            self.metrics.budget_exhausted.inc()
        return Reply(200, {"outputs": orjson.Fragment(settlement.outputs), "policy": settlement.policy,
                           "queries_left": decision.queries_left, "request_id": decision.request_id})
