"""Surviving faulty upstreams: retries with backoff, and a per-provider concurrency limit.

Policies:
- Retried: connect failures (nothing was sent) and the statuses in `RETRYABLE_STATUSES` (429, 500,
  502, 503, 529), at most `max_retries` times, with exponential backoff and full jitter. A
  `retry-after` (seconds or an HTTP date) is honoured when it is at most `max_retry_after`; a
  longer one goes back to the client, whose own retry logic (Claude Code retries 429 itself) and
  the user know better than to hold a connection for minutes.
- A 429 that means the quota is spent (`insufficient_quota`) is never retried.
- Retries happen only while nothing has reached the client; the caller guarantees that by calling
  `send_with_retries` before it writes content (heartbeats are not content).
- Heartbeats and the request deadline run beside these waits (server/), so they keep flowing
  while a retry sleeps or a request queues for a slot.
- The concurrency limit queues a request for at most `queue_timeout` seconds, then answers
  overloaded (529 on the Anthropic front, 503 on the OpenAI front).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from translate.errors import RETRYABLE_STATUSES, Overloaded, ProxyError, error_from_upstream

def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `retry-after` value (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    # The date form is rare (most APIs send seconds): its parser, and the email package, load on first use.
    import email.utils

    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, jitter: float) -> float | None:
        """Seconds before the next attempt after failed attempt number `attempt` (0-based).

        `jitter` is a number in [0, 1) supplied by the caller. None means "do not retry": the
        upstream asked for a longer pause than `max_retry_after`.
        """
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return ceiling * (0.5 + jitter / 2)


async def send_with_retries(
    send: Callable[[], Awaitable],
    policy: RetryPolicy,
    *,
    provider: str,
    jitter: Callable[[], float],
    on_retry: Callable[[str, float], None],
):
    """Call `send()` until it yields a response whose status is not retryable, within the policy.

    Returns the upstream response (any status that is not retryable, for the caller to read).
    Raises the last ProxyError when retries are exhausted or the failure is not retryable; an
    error built from a retryable status keeps `retryable=True` so the caller may fall back.
    """
    attempt = 0
    while True:
        try:
            response = await send()
        except ProxyError as error:
            if not error.retryable or attempt >= policy.max_retries:
                raise
            # Every key resting (upstreams/keys.py) says when the first is usable again.
            delay = policy.delay(attempt, parse_retry_after(error.retry_after), jitter())
            if delay is None:
                raise
            reason = "connect" if error.retry_after is None else "keys_resting"
        else:
            if response.status not in RETRYABLE_STATUSES:
                return response
            async with response:
                raw = await response.read()
            error = error_from_upstream(response.status, raw, provider=provider, retry_after=response.header("retry-after"))
            error.upstream_status = response.status
            error.upstream_body = raw
            error.upstream_content_type = response.header("content-type")
            delay = None
            if error.retryable and attempt < policy.max_retries:
                delay = policy.delay(attempt, parse_retry_after(response.header("retry-after")), jitter())
            if delay is None:
                raise error
            reason = str(response.status)
        on_retry(reason, delay)
        await asyncio.sleep(delay)
        attempt += 1


class ConcurrencyLimiter:
    """At most `limit` upstream requests in flight per provider; the rest queue for a bounded time."""

    def __init__(self, limit: int, queue_timeout: float) -> None:
        self.limit = limit
        self.queue_timeout = queue_timeout
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        # For the dashboard, per provider: requests holding a slot, and requests queued for one.
        self.in_flight: dict[str, int] = {}
        self.waiting: dict[str, int] = {}

    async def acquire(self, provider: str) -> None:
        """Take one of the provider's slots (give it back with `release`); raises Overloaded on a long queue."""
        if self.limit <= 0:
            self.in_flight[provider] = self.in_flight.get(provider, 0) + 1
            return
        semaphore = self._semaphores.get(provider)
        if semaphore is None:
            semaphore = self._semaphores[provider] = asyncio.Semaphore(self.limit)
        if not semaphore.locked():
            await semaphore.acquire()  # a free slot: taken at once, no timer needed
            self.in_flight[provider] = self.in_flight.get(provider, 0) + 1
            return
        acquire = asyncio.ensure_future(asyncio.wait_for(semaphore.acquire(), self.queue_timeout))
        self.waiting[provider] = self.waiting.get(provider, 0) + 1
        try:
            await acquire
            self.in_flight[provider] = self.in_flight.get(provider, 0) + 1
        except asyncio.TimeoutError:
            raise Overloaded(
                f"{self.limit} requests to {provider} are already in flight (MAX_CONCURRENT_UPSTREAM) and none "
                f"finished within {self.queue_timeout:g} seconds; try again shortly",
                retryable=True,
            ) from None
        except BaseException:
            # Cancelled just as the slot was granted: give it back.
            if acquire.done() and not acquire.cancelled() and acquire.exception() is None:
                semaphore.release()
            raise
        finally:
            self.waiting[provider] -= 1

    def release(self, provider: str) -> None:
        """Give back a slot taken with `acquire`."""
        self.in_flight[provider] -= 1
        if self.limit > 0:
            self._semaphores[provider].release()
