"""Rate limits for public and abuse-prone endpoints: an in-process token bucket per key.

Use it as a dependency::

    @router.post("/assess", dependencies=[Depends(assess_rate_limit)])

or call ``enforce(request, key, per_minute)`` inside a handler when the key is only known after
parsing (the sign-in form limits per username). Over the limit the request gets 429 problem+json
with ``Retry-After`` (seconds).

The buckets live in the process (one limiter per app, on ``app.state``): with N workers a client gets
up to N times the limit. That is acceptable for the embedded deployment; a multi-worker deployment
should move the buckets into the database (a row per key, updated in the request's transaction) or
Redis (INCR + EXPIRE) behind the same ``enforce`` function.

The client is ``request.client.host``: behind a reverse proxy run uvicorn with ``--proxy-headers
--forwarded-allow-ips=<proxy>`` so that it is the real client, never a header anyone can forge.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request

from collectguard.settings import Settings

_MAX_KEYS = 100_000  # bounds memory when many distinct clients (or forged usernames) come by
_app_lock = threading.Lock()


class TokenBucketLimiter:
    """``per_minute`` requests per key, refilled continuously, bursting up to ``per_minute``."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = _MAX_KEYS) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens left, last refill)
        # Sync endpoints run in a thread pool, so two requests may hit one bucket at once.
        self._lock = threading.Lock()

    def hit(self, key: str, per_minute: int) -> float | None:
        """Take one token for ``key``: ``None`` when allowed, else the seconds until one is available."""
        if per_minute <= 0:
            return None  # a limit of 0 switches the limiter off (documented in docs/security.md)
        rate = per_minute / 60.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) / rate
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > self._max_keys:
                self._evict(now)
            return None

    def _evict(self, now: float) -> None:
        # A bucket untouched for a minute is full again, so forgetting it changes nothing.
        stale = [k for k, (_t, last) in self._buckets.items() if now - last >= 60.0]
        for k in stale:
            del self._buckets[k]
        if len(self._buckets) > self._max_keys:  # still too many: drop the longest idle half
            for k, _v in sorted(self._buckets.items(), key=lambda kv: kv[1][1])[: len(self._buckets) // 2]:
                del self._buckets[k]

    def reset(self) -> None:
        """Forget every bucket (tests)."""
        with self._lock:
            self._buckets.clear()


def limiter_for(request: Request) -> TokenBucketLimiter:
    """The app's limiter, created on first use."""
    state = request.app.state
    limiter = getattr(state, "rate_limiter", None)
    if limiter is None:
        with _app_lock:
            limiter = getattr(state, "rate_limiter", None)
            if limiter is None:
                limiter = state.rate_limiter = TokenBucketLimiter()
    return limiter


def client_ip(request: Request) -> str:
    """The client address as the server sees it (see the module docstring on proxies)."""
    return request.client.host if request.client else "unknown"


def enforce(request: Request, key: str, per_minute: int) -> None:
    """Count one request against ``key``; raise 429 with ``Retry-After`` when over ``per_minute``."""
    wait = limiter_for(request).hit(key, per_minute)
    if wait is not None:
        retry = max(1, math.ceil(wait))
        raise HTTPException(429, detail=f"too many requests; retry after {retry} s",
                            headers={"Retry-After": str(retry)})


def rate_limit(bucket: str, per_minute: int | Callable[[Settings], int], *,
               key: Callable[[Request], str] = client_ip) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency limiting ``bucket`` to ``per_minute`` requests per client.

    ``per_minute`` is a number or a function of the app's ``Settings`` (read on every request, so
    a test or an operator can change it); ``key`` picks the client (default: its IP address).
    """

    async def _limit(request: Request) -> None:
        limit = per_minute(request.app.state.container.settings) if callable(per_minute) else per_minute
        enforce(request, f"{bucket}:{key(request)}", limit)

    return _limit


assess_rate_limit = rate_limit("assess", lambda s: s.assess_rate_limit_per_minute)
"""The public ``POST /api/v1/assess`` limit (``Settings.assess_rate_limit_per_minute`` per client)."""
