"""Requests-per-minute and tokens-per-minute limits as two token buckets, plus a shared pause after a 429.

Each bucket refills continuously and holds at most one second's worth, so a run starts without a burst that
the provider would reject. A request larger than the bucket waits until it is full, then drives it negative:
big requests are slowed, never refused.
"""

from __future__ import annotations

import asyncio
import time


class _Bucket:
    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` can be taken (0 if now)."""
        self.refill()
        needed = min(amount, self.capacity) - self.level
        return max(0.0, needed / self.rate)


class RateLimiter:
    def __init__(self, rpm: float | None = None, tpm: float | None = None) -> None:
        self.requests = _Bucket(rpm) if rpm else None
        self.tokens = _Bucket(tpm) if tpm else None
        self.paused_until = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: int) -> None:
        """Wait until one more request of about `tokens` tokens fits under every limit, then take it."""
        async with self._lock:  # first come, first served
            while True:
                delay = max(self.paused_until - time.monotonic(), 0.0)
                for bucket, amount in ((self.requests, 1.0), (self.tokens, float(tokens))):
                    if bucket is not None:
                        delay = max(delay, bucket.wait_for(amount))
                if delay <= 0:
                    break
                await asyncio.sleep(delay)
            if self.requests:
                self.requests.level -= 1.0
            if self.tokens:
                self.tokens.level -= tokens

    def settle(self, estimated: int, actual: int | None) -> None:
        """Correct the token bucket once the real usage is known."""
        if self.tokens and actual is not None:
            self.tokens.level += estimated - actual

    def pause(self, seconds: float) -> None:
        """Hold every request back (the provider said so with Retry-After on a 429)."""
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)
