"""What the gateway does with each request, independent of the web framework: authenticate,
validate, check the key's rules, watch for probing, answer under the key's policy, and
record the decision before anything is sent back."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from mirisk.access.policies import parse_policy
from mirisk.errors import MiriskError
from mirisk.gateway.auth_failures import AuthFailures
from mirisk.gateway.auth_refusals import RefusalCounts
from mirisk.gateway.database import (
    LOCK_WAIT_SECONDS,
    BackgroundCheckpointer,
    connect,
    input_digest,
    record_served_classes,
)
from mirisk.gateway.detector import DetectorSettings, ProbeDetector
from mirisk.gateway.group_commit import DatabaseBusy, GroupCommitter, Pending, is_locked
from mirisk.gateway.inputs import BadRequest, InputContract, input_digests, parse_inputs
from mirisk.gateway.keys import ApiKey, KeyCache, authenticate, list_keys
from mirisk.gateway.ledger import Decision, Refusal, Settlement, precheck, queries_left
from mirisk.gateway.metrics import GatewayMetrics
from mirisk.gateway.serving import ServedModel
from mirisk.models.target import TargetModel

LOG = logging.getLogger("mirisk.gateway")

UNLIMITED_THROTTLE = 10**9
BUSY_RETRY_SECONDS = 1
# A body this large costs milliseconds to parse, against microseconds to read the key's
# standing again: a key revoked or blocked by another process since it was cached is then
# refused before its body is parsed.
RECHECK_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class GatewaySettings:
    """The default output policy (a key may override it), request limits, the detector
    (None: off) and the most failed authentications a client may make per minute."""

    policy: str = "label"
    max_batch: int = 64
    max_body_bytes: int = 16 * 2**20
    detector: DetectorSettings | None = None
    auth_failures_per_minute: int = 60

    def __post_init__(self) -> None:
        parse_policy(self.policy)
        if self.auth_failures_per_minute < 1:
            raise MiriskError(f"the failed-authentication limit must be at least 1 a minute, got "
                              f"{self.auth_failures_per_minute}")


@dataclass(frozen=True)
class Reply:
    """An HTTP status, a JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        return orjson.dumps(self.body, option=orjson.OPT_SERIALIZE_NUMPY)


@dataclass(frozen=True)
class Incoming:
    """A prediction request as the web layer hands it over: the key from its headers, the
    client's address, a problem already found in its headers, and how to read its body
    (``None``: over the size limit; :class:`BadRequest` when it does not arrive in time)."""

    token: str | None
    client: str | None
    read_body: Callable[[], Awaitable[bytes | None]]
    problem: BadRequest | None = None


def rate_headers(decision: Decision) -> dict[str, str]:
    """``Retry-After`` and the RateLimit fields (draft-ietf-httpapi-ratelimit-headers) for a
    budgeted key's decision."""
    headers = {}
    if decision.retry_after is not None:
        headers["Retry-After"] = str(decision.retry_after)
    if decision.limit is not None and decision.queries_left is not None:
        headers["RateLimit-Limit"] = str(decision.limit)
        headers["RateLimit-Remaining"] = str(decision.queries_left)
        if decision.reset is not None:
            headers["RateLimit-Reset"] = str(decision.reset)
    return headers


class Gateway:
    """The model at ``target`` behind the keys, budgets and log in the SQLite file ``database``."""

    def __init__(self, target: TargetModel, database: Path, settings: GatewaySettings) -> None:
        self.settings = settings
        parse_policy(settings.policy).check_classes(target.n_classes)
        self.model = ServedModel(target, settings.max_batch)
        low, high = target.value_range
        self.contract = InputContract(tuple(target.input_shape), (float(low), float(high)), settings.max_batch,
                                      settings.max_body_bytes)
        self.metrics = GatewayMetrics()
        self.detector = None if settings.detector is None else ProbeDetector(settings.detector, self.contract.input_size)
        self._database = Path(database)
        self._policy_problems: dict[str, str | None] = {}
        with closing(connect(self._database)) as connection:
            self._input_digest = input_digest(connection)
            record_served_classes(connection, target.n_classes)
            for key in list_keys(connection):  # a key whose policy does not fit is refused when it asks, never here
                problem = self._policy_problem(key.policy)
                if problem is not None and key.revoked is None:
                    LOG.warning("key %s: %s; its requests will be refused", key.id, problem)
        self._local = threading.local()
        self._keys = KeyCache()
        self._queries_left: dict[str, int | None] = {}  # what each key's last answer here left it
        self._committer = GroupCommitter(self.connection, self._throttle, BackgroundCheckpointer(self._database),
                                         self._answer_group)
        self._auth_failures = AuthFailures(settings.auth_failures_per_minute)
        self.refused_authentications = RefusalCounts(self.connection)

    def close(self) -> None:
        """Write what is held in memory (the counts of refused authentications) as the server stops."""
        self.refused_authentications.write()

    def _policy_problem(self, policy: str | None) -> str | None:
        """Why a key's own output policy cannot be served on this model (None: it can)."""
        if policy is None:
            return None
        if policy not in self._policy_problems:
            try:
                parse_policy(policy).check_classes(self.model.target.n_classes)
                self._policy_problems[policy] = None
            except MiriskError as error:
                self._policy_problems[policy] = f"its output policy {policy} does not fit the served model: {error}"
        return self._policy_problems[policy]

    @property
    def _throttle(self) -> int:
        return UNLIMITED_THROTTLE if self.settings.detector is None else self.settings.detector.throttle_per_minute

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections are not shared between threads). On
        the event loop's thread it never waits for a lock; elsewhere it waits a few seconds."""
        if getattr(self._local, "connection", None) is None:
            try:
                asyncio.get_running_loop()
                wait = 0.0
            except RuntimeError:
                wait = LOCK_WAIT_SECONDS
            self._local.connection = connect(self._database, busy_timeout=wait)
            self._local.connection.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job
        return self._local.connection

    async def _refuse(self, refusal: Refusal) -> Reply:
        """Log a refusal decided before the model ran (with the next group commit), and reply."""
        return self._refusal_reply(await self._committer.settle(refusal))

    def _refusal_reply(self, decision: Decision) -> Reply:
        reason = decision.decision.removeprefix("rejected:")
        self.metrics.requests.labels(reason).inc()
        body: dict[str, Any] = {"error": decision.detail, "reason": reason, "request_id": decision.request_id}
        headers = rate_headers(decision)
        if decision.queries_left is not None:
            body["queries_left"] = decision.queries_left
        if decision.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if decision.status in (408, 413):  # the rest of the body is not read: the connection cannot be reused
            headers["Connection"] = "close"
        return Reply(decision.status, body, headers)

    def describe(self, token: str | None) -> Reply:
        """The model's input contract and classes, and the calling key's policy and budget."""
        key = authenticate(self.connection(), token)[1] if token else None
        if key is None or key.revoked is not None:
            return Reply(401, {"error": "missing, invalid or revoked API key", "reason": "auth"},
                         {"WWW-Authenticate": "Bearer"})
        if key.flagged is not None and key.flag_action == "block":
            return Reply(403, {"error": "this API key was blocked by the probe detector", "reason": "blocked"})
        target = self.model.target
        return Reply(200, {
            "architecture": target.architecture, "input_shape": list(target.input_shape),
            "value_range": list(self.contract.value_range), "classes": list(target.class_names),
            "policy": key.policy or self.settings.policy, "max_batch": self.settings.max_batch,
            "queries_left": queries_left(self.connection(), key, time.time()),
        })

    async def predict(self, incoming: Incoming) -> Reply:
        """Answer ``{"inputs": [...]}`` for the request's key, or refuse; always logged. The
        key and its standing are checked from the headers, before the body is read."""
        started = time.perf_counter()
        try:
            admitted = await self._admit(incoming)
            if isinstance(admitted, Reply):
                return admitted
            try:
                body = await incoming.read_body()
            except BadRequest as error:
                return await self._refuse(Refusal(admitted.id, Decision("rejected:bad-input", error.status,
                                                                          error.message)))
            if body is not None and len(body) > RECHECK_BODY_BYTES:  # worth a read of the key's standing
                standing = precheck(self.connection(), admitted.id, 1, self._throttle)
                if standing is not None:
                    self._keys.forget(admitted.id)
                    return await self._refuse(Refusal(admitted.id, standing))
            # On the loop: the size checks bound the work (a body of max_batch faces takes
            # about 30 ms to parse), and a worker thread does not free the loop while the
            # parser holds the GIL; it cost 30% of throughput at 16 faces (BENCHMARKS.md).
            prepared = self._prepare(admitted, body)
            if isinstance(prepared, Refusal):
                return await self._refuse(self._as_standing_refusal(prepared))
            decision, settlement = await self._committer.answer(prepared)
            return self._reply(settlement, decision)
        except DatabaseBusy:
            return self._busy_reply()
        except sqlite3.OperationalError as error:
            if not is_locked(error):
                raise
            return self._busy_reply()
        finally:
            self.metrics.latency.observe(time.perf_counter() - started)

    def _busy_reply(self) -> Reply:
        """A 503 for a request the locked database kept from its decision (nothing was
        answered or logged; the server log says so)."""
        self.metrics.requests.labels("busy").inc()
        return Reply(503, {"error": "the gateway's database is locked by another process; retry shortly",
                           "reason": "busy"}, {"Retry-After": str(BUSY_RETRY_SECONDS)})

    async def _admit(self, incoming: Incoming) -> ApiKey | Reply:
        """The request's key, if it is valid and its standing might let it be answered; else
        the refusal (logged), before a byte of the body is read."""
        if incoming.problem is not None:
            return await self._refuse(Refusal(None, Decision("rejected:bad-input", incoming.problem.status,
                                                              incoming.problem.message)))
        token = incoming.token
        key_id, key = self._keys.authenticate(self.connection(), token) if token else (None, None)
        if key is None:
            return self._refuse_authentication(incoming, key_id)
        problem = self._policy_problem(key.policy)
        if problem is not None:
            return await self._refuse(Refusal(key.id, Decision("rejected:policy", 403, f"this API key cannot be "
                                                                  f"answered: {problem}; ask for a key with another")))
        if self._worth_prechecking(key, 1):
            refusal = precheck(self.connection(), key.id, 1, self._throttle)
            if refusal is not None:
                return await self._refuse(Refusal(key.id, refusal))
        return key

    def _refuse_authentication(self, incoming: Incoming, key_id: str | None) -> Reply:
        """A missing or wrong key: 401, or 429 past the limit of failed authentications, kept
        per key for a stored key's id with a wrong secret and per client address otherwise,
        so that a valid key is answered whatever others send from its address. Counted, not
        logged one by one (:mod:`mirisk.gateway.auth_refusals`)."""
        now = time.time()
        who = f"key {key_id}" if key_id is not None else incoming.client
        wait = self._auth_failures.retry_after(who, now)
        if wait is not None:
            decision = Decision("rejected:auth-rate", 429, f"too many failed authentications from this "
                                f"{'key id' if key_id else 'client'}; retry in {wait} s", retry_after=wait)
        else:
            self._auth_failures.failed(who, now)
            decision = Decision("rejected:auth", 401, "invalid API key" if incoming.token else
                                "missing API key: send 'Authorization: Bearer KEY'")
        self.refused_authentications.count(incoming.client, key_id, decision.decision, now)
        return self._refusal_reply(decision)

    def _as_standing_refusal(self, refusal: Refusal) -> Refusal:
        """A bad input from a key that was revoked or blocked meanwhile is logged as that."""
        if refusal.key_id is None or refusal.decision.decision != "rejected:bad-input":
            return refusal
        standing = precheck(self.connection(), refusal.key_id, 1, self._throttle)
        if standing is not None and standing.decision in ("rejected:revoked", "rejected:blocked"):
            self._keys.forget(refusal.key_id)
            return Refusal(refusal.key_id, standing)
        return refusal

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

    def _prepare(self, key: ApiKey, body: bytes | None) -> Pending | Refusal:
        """The request waiting for its group's answer and decision, or a refusal to log."""
        try:
            batch = parse_inputs(body, self.contract)
        except BadRequest as error:
            return Refusal(key.id, Decision("rejected:bad-input", error.status, error.message))
        policy, digests = key.policy or self.settings.policy, input_digests(batch, self._input_digest)
        if self._worth_prechecking(key, len(batch)):
            refusal = precheck(self.connection(), key.id, len(batch), self._throttle)
            if refusal is not None:
                return Refusal(key.id, refusal, len(batch), digests, policy)
        alert = None
        if self.detector is not None and self.settings.detector is not None:
            observed = self.detector.observe(key.id, batch)
            if observed is not None:
                alert = (observed.reason, self.settings.detector.action)
                self._keys.forget(key.id)
                self.metrics.alerts.labels(self.settings.detector.action).inc()
        return Pending(key.id, digests, policy, batch, alert)

    def _answer_group(self, pending: Sequence[Pending]) -> list[str]:
        """The outputs (JSON text) of a group's requests, from one forward pass where they fit
        (in a tight loop, one pass over 8 one-face requests took a third of the time of 8
        passes for the softmax model, 0.7 of it for the CNN; inside the server, 0.67-0.90 of
        a lone pass's CPU per row; BENCHMARKS.md)."""
        outputs = self.model.answer_all([(request.batch, request.policy) for request in pending])
        return [orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY).decode() for rows in outputs]

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
                           "queries_left": decision.queries_left, "request_id": decision.request_id},
                     rate_headers(decision))
