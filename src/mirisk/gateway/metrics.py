"""The gateway's Prometheus metrics, in a registry of its own (one per app)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from mirisk.gateway.detector import ACTIONS

OUTCOMES = ("answered", "auth", "revoked", "bad-input", "budget", "rate", "blocked")


@dataclass
class GatewayMetrics:
    """Requests by outcome, answered queries, budgets run dry, detector alerts, latency."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter("mirisk_requests", "Prediction requests by outcome (answered, or the refusal's reason).",
                                ["outcome"], registry=self.registry)
        self.queries = Counter("mirisk_queries_answered", "Inputs answered (one query each).", registry=self.registry)
        self.budget_exhausted = Counter("mirisk_budget_exhausted", "Answers that left a key with no queries.",
                                        registry=self.registry)
        self.alerts = Counter("mirisk_probe_alerts", "Keys flagged by the probe detector, by action taken.",
                              ["action"], registry=self.registry)
        self.latency = Histogram("mirisk_request_seconds", "Time to decide and answer a prediction request.",
                                 registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))

        for outcome in OUTCOMES:
            self.requests.labels(outcome)
        self.answered = self.requests.labels("answered")
        for action in ACTIONS:
            self.alerts.labels(action)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
