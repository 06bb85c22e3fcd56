"""Per-caller request limits for the publisher (a sliding window kept in memory).

In memory is enough because one publisher process serves one service; a restart forgetting the
window errs toward letting an orchestrator through, never toward leaking data (auth still holds).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most ``limit`` requests per caller in any ``window_s`` seconds."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, caller: str) -> int | None:
        """Count one request; ``None`` when allowed, else the seconds until the next is (Retry-After)."""
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(caller, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.window_s - now))
            hits.append(now)
            return None
