"""A limit on failed authentications per minute, kept apart for each client address and for
each stored key id named with a wrong secret: past it, the failures get 429 for the rest of
the minute, so that key guessing costs more than it costs the gateway, while a valid key is
answered whatever others send from its address."""

from __future__ import annotations

import math
from collections import OrderedDict, deque

PERIOD_SECONDS = 60.0


class AuthFailures:
    """Failed authentications per client in the last minute, for at most ``max_clients``
    clients (the least recently failing are forgotten first)."""

    def __init__(self, per_minute: int = 60, max_clients: int = 10_000) -> None:
        self.per_minute = per_minute
        self._max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.get(client)
        if times is None:
            return deque()
        while times and times[0] <= now - PERIOD_SECONDS:
            times.popleft()
        return times

    def retry_after(self, client: str | None, now: float) -> int | None:
        """Seconds until ``client`` may try a key again; None when it may now."""
        if client is None:
            return None
        times = self._recent(client, now)
        if len(times) < self.per_minute:
            return None
        return max(math.ceil(times[-self.per_minute] + PERIOD_SECONDS - now), 1)

    def failed(self, client: str | None, now: float) -> None:
        if client is None:
            return
        times = self._recent(client, now)
        times.append(now)
        while len(times) > self.per_minute:
            times.popleft()
        self._failures[client] = times
        self._failures.move_to_end(client)
        while len(self._failures) > self._max_clients:
            self._failures.popitem(last=False)
