"""A provider's API keys as one pool: requests spread over them, and a key the provider refuses rests.

OPENAI_API_KEY, ANTHROPIC_API_KEY, AZURE_OPENAI_API_KEY and GEMINI_API_KEY may each hold several
keys separated by commas (`parse_keys`); one key is a pool of one.

Policies:
- `pick()` goes round-robin over the keys usable now, so load spreads evenly. A retry passes the
  keys it already tried as `avoid` and gets another usable key, or an avoided one when no other is
  usable. With no usable key it raises `AllKeysCooling` (a 429 whose `retry-after` is the moment
  the first key is usable again; a 401 when every key is disabled).
- The caller `report()`s every upstream answer; what the provider said decides (`classify`):
  - a spent quota or billing problem rests the key for `quota_cooldown` (one hour by default):
    OpenAI's `insufficient_quota`, Anthropic's 400 "credit balance is too low", Gemini's 429
    RESOURCE_EXHAUSTED about a daily quota (its quota id says PerDay, or without an id, the message
    says the quota is exceeded), any 402, and any 400/403/429 whose error names
    `insufficient_quota` or billing;
  - any other 429 rests it for its `retry-after` (seconds or an HTTP date), else Gemini's
    `RetryInfo.retryDelay`, else `rate_limit_cooldown`; never longer than `quota_cooldown`;
  - 401, any other 403, and Gemini's 400 API_KEY_INVALID disable the key until restart, logged
    once at ERROR;
  - 5xx (529 included) and other 4xx are the provider's trouble or the request's, not the key's:
    nothing changes. A success resets the key's count of consecutive failures.
- A key is shown only as its fingerprint, `key-` and the first 8 hex digits of its SHA-256, in every
  repr, log line, exception, snapshot and banner. Upstream error messages are never logged here:
  OpenAI's 401 quotes part of the key.
- Cheap on the request path: fingerprints are computed once; a pool of one healthy key answers
  `pick()` with one comparison, and the clock is read only when some key is resting.
- Pure and deterministic: time comes from the injected `clock` (monotonic) and `wall_clock` (for
  HTTP dates). No I/O, no threads and no lock: each worker process runs one asyncio loop.

Known shortcuts:
- Each worker process learns about its keys on its own; a 429 seen by one does not rest the key in
  another.
- Quotas are recognised by wording; a reworded quota error rests the key only as a rate limit.
- OpenAI's `x-ratelimit-reset-*` headers are not read; only `retry-after` is.
- A disabled key stays disabled until restart, even if the provider accepts it again.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Collection, Iterable
from typing import Literal, TypedDict

from translate.errors import ProxyError
from upstreams.resilience import parse_retry_after

log = logging.getLogger("switchboard.keys")

DEFAULT_QUOTA_COOLDOWN_SECONDS = 3600.0
DEFAULT_RATE_LIMIT_COOLDOWN_SECONDS = 10.0
FINGERPRINT_HEX_DIGITS = 8


def parse_keys(value: str | None) -> tuple[str, ...]:
    """The keys in a comma-separated setting: stripped, empty ones dropped, duplicates removed in order.

    Returns () for None or a blank value; the caller treats that as "no key configured".
    """
    if not value:
        return ()
    return tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))


def fingerprint(key: str) -> str:
    """The name a key is shown by: `key-` and the first 8 hex digits of its SHA-256."""
    return "key-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:FINGERPRINT_HEX_DIGITS]


# ---------------------------------------------------------------------------------------------
# What an upstream answer says about the key
# ---------------------------------------------------------------------------------------------


# The statuses whose answer may blame the key: their (small) error bodies are read for `report`.
STATUSES_ABOUT_THE_KEY = frozenset({400, 401, 402, 403, 429})


class Verdict(enum.Enum):
    """What one upstream answer says about the key that sent it."""

    ACCEPTED = "accepted"  # 2xx/3xx: the key works
    NOT_THE_KEY = "not_the_key"  # 5xx, 529, most 4xx: the provider's trouble or the request's
    RATE_LIMITED = "rate_limited"
    QUOTA_EXHAUSTED = "quota_exhausted"
    REJECTED = "rejected"  # invalid or revoked


class _ErrorFacts:
    """The parts of an upstream error body that classify it (OpenAI, Anthropic and Google shapes)."""

    def __init__(self, body: bytes) -> None:
        self.words = ""  # message, type and code, lower-cased
        self.google_status = ""
        self.reasons: list[str] = []  # google.rpc.ErrorInfo reasons
        self.quota_ids: list[str] = []  # google.rpc.QuotaFailure quota ids, lower-cased
        self.retry_delay: float | None = None  # google.rpc.RetryInfo, seconds
        try:
            parsed = json.loads(body.decode("utf-8", "replace")) if body else None
        except ValueError:
            self.words = body[:2000].decode("utf-8", "replace").lower()
            return
        # Google (and its OpenAI-compatible endpoint) may wrap the error in a JSON array.
        if isinstance(parsed, list) and parsed:
            parsed = parsed[0]
        if not isinstance(parsed, dict):
            return
        error = parsed.get("error")
        if isinstance(error, str):
            error = {"message": error}
        if not isinstance(error, dict):
            error = parsed
        self.words = " ".join(
            str(error.get(field)) for field in ("message", "type", "code") if error.get(field) is not None
        ).lower()
        status = error.get("status")
        self.google_status = status if isinstance(status, str) else ""
        details = error.get("details")
        for detail in details if isinstance(details, list) else ():
            if not isinstance(detail, dict):
                continue
            if isinstance(detail.get("reason"), str):
                self.reasons.append(detail["reason"])
            for violation in detail.get("violations") or ():
                if isinstance(violation, dict) and isinstance(violation.get("quotaId"), str):
                    self.quota_ids.append(violation["quotaId"].lower())
            delay = detail.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    self.retry_delay = max(0.0, float(delay[:-1]))
                except ValueError:
                    pass

    def says_quota(self) -> bool:
        """True when the error is about money or a spent quota rather than speed."""
        # OpenAI: code insufficient_quota, billing_hard_limit_reached. Anthropic: a 400 saying "Your
        # credit balance is too low", or type billing_error.
        words = self.words
        return "insufficient_quota" in words or "billing" in words or "credit balance is too low" in words


def _gemini_verdict(facts: _ErrorFacts) -> Verdict:
    # Google words a per-minute and a per-day limit alike ("You exceeded your current quota, please
    # check your plan and billing details"); only the quota id tells them apart. The older
    # "Resource has been exhausted (e.g. check quota)" is what a per-minute limit said.
    if any("perday" in quota_id for quota_id in facts.quota_ids):
        return Verdict.QUOTA_EXHAUSTED
    if facts.quota_ids:
        return Verdict.RATE_LIMITED
    if "exceeded your current quota" in facts.words or "quota exceeded" in facts.words:
        return Verdict.QUOTA_EXHAUSTED
    return Verdict.RATE_LIMITED


def classify(status: int, body: bytes = b"") -> tuple[Verdict, float | None]:
    """What an upstream answer says about its key, and the wait its body asks for (Gemini's retryDelay).

    Returns (verdict, seconds or None). Only error bodies of 400, 402, 403 and 429 are parsed.
    """
    if status < 400:
        return Verdict.ACCEPTED, None
    if status == 401:
        return Verdict.REJECTED, None
    if status == 402:
        return Verdict.QUOTA_EXHAUSTED, None
    if status not in (400, 403, 429):
        return Verdict.NOT_THE_KEY, None
    facts = _ErrorFacts(body)
    if status == 429 and facts.google_status == "RESOURCE_EXHAUSTED":
        return _gemini_verdict(facts), facts.retry_delay
    if facts.says_quota():
        return Verdict.QUOTA_EXHAUSTED, None
    if status == 429:
        return Verdict.RATE_LIMITED, facts.retry_delay
    if status == 403 or "API_KEY_INVALID" in facts.reasons:
        return Verdict.REJECTED, None
    return Verdict.NOT_THE_KEY, None


# ---------------------------------------------------------------------------------------------
# Keys and their states
# ---------------------------------------------------------------------------------------------


class KeyState(enum.Enum):
    HEALTHY = "healthy"
    COOLING = "cooling"  # until `cooling_until` on the pool's clock, then HEALTHY again
    DISABLED = "disabled"  # until restart


# (state, verdict) -> next state, for the answers that blame the key; the others (ACCEPTED,
# NOT_THE_KEY) change no state. A key resting again keeps the later of its two ends
# (KeyPool.report): an answer to a request sent before the key rested never shortens the rest.
TRANSITIONS: dict[tuple[KeyState, Verdict], KeyState] = {
    (KeyState.HEALTHY, Verdict.RATE_LIMITED): KeyState.COOLING,
    (KeyState.HEALTHY, Verdict.QUOTA_EXHAUSTED): KeyState.COOLING,
    (KeyState.HEALTHY, Verdict.REJECTED): KeyState.DISABLED,
    (KeyState.COOLING, Verdict.RATE_LIMITED): KeyState.COOLING,
    (KeyState.COOLING, Verdict.QUOTA_EXHAUSTED): KeyState.COOLING,
    (KeyState.COOLING, Verdict.REJECTED): KeyState.DISABLED,
    (KeyState.DISABLED, Verdict.RATE_LIMITED): KeyState.DISABLED,
    (KeyState.DISABLED, Verdict.QUOTA_EXHAUSTED): KeyState.DISABLED,
    (KeyState.DISABLED, Verdict.REJECTED): KeyState.DISABLED,
}


class PoolKey:
    """One key of a pool: `secret` goes into the request's auth header, `fingerprint` everywhere else.

    Hashable by identity, so a caller can collect the keys it tried in a set for `pick(avoid=...)`.
    """

    __slots__ = (
        "cooling_until",
        "failures",
        "fingerprint",
        "quota_exhausted",
        "rate_limited",
        "requests",
        "secret",
        "state",
    )

    def __init__(self, secret: str) -> None:
        # For the pool's life.
        self.secret = secret
        self.fingerprint = fingerprint(secret)
        # Changed by answers.
        self.state = KeyState.HEALTHY
        self.cooling_until = 0.0  # on the pool's clock; meaningful while COOLING
        # Counters for /metrics and the dashboard.
        self.requests = 0  # times picked
        self.rate_limited = 0  # rate-limit answers
        self.quota_exhausted = 0  # spent-quota answers
        self.failures = 0  # consecutive answers that blamed the key, reset by a success

    def __repr__(self) -> str:
        return f"PoolKey({self.fingerprint}, {self.state.value})"

    def __str__(self) -> str:
        return self.fingerprint


class KeySnapshot(TypedDict):
    fingerprint: str
    state: Literal["healthy", "cooling", "disabled"]
    cooling_until: float | None  # seconds from now
    requests: int
    rate_limited: int
    quota_exhausted: int
    failures: int


class AllKeysCooling(ProxyError):
    """No key of the provider is usable now.

    `retry_after_seconds` is when the first resting key is usable again (None when every key is
    disabled); `retry_after` is that as a `retry-after` header value, as on every ProxyError.
    A 429 (retryable, so the gateway may fall back) while keys rest; a 401 when all are disabled,
    which is what the provider answered them.
    """

    status = 429
    error_type = "rate_limit_error"

    def __init__(self, provider: str, retry_after_seconds: float | None, keys: int) -> None:
        self.provider = provider
        self.retry_after_seconds = retry_after_seconds
        if retry_after_seconds is None:
            super().__init__(
                f"every {provider} API key of this gateway ({keys}) was refused by {provider} as invalid or "
                f"revoked, and is disabled until the gateway restarts",
                status=401,
            )
            return
        wait = max(1, math.ceil(retry_after_seconds))
        super().__init__(
            f"every {provider} API key of this gateway ({keys}) is resting after a rate limit or a spent "
            f"quota; the first is usable again in {wait} seconds",
            retry_after=str(wait),
            retryable=True,
        )
        # What the provider said, in effect: so a Responses stream reports it in-stream as a timed
        # rate limit, where Codex waits and retries (an HTTP 429 ends its turn).
        self.upstream_status = 429


# ---------------------------------------------------------------------------------------------
# The pool
# ---------------------------------------------------------------------------------------------


class KeyPool:
    """A provider's keys: which one the next request uses, and what each answer did to it."""

    def __init__(
        self,
        keys: Iterable[str],
        *,
        provider: str,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        quota_cooldown: float = DEFAULT_QUOTA_COOLDOWN_SECONDS,
        rate_limit_cooldown: float = DEFAULT_RATE_LIMIT_COOLDOWN_SECONDS,
    ) -> None:
        """Raises ValueError for an empty pool or a negative cooldown."""
        # Settings, for the pool's life.
        self.provider = provider
        self.clock = clock
        self.wall_clock = wall_clock
        self.quota_cooldown = quota_cooldown
        self.rate_limit_cooldown = rate_limit_cooldown
        self.keys: tuple[PoolKey, ...] = tuple(PoolKey(key) for key in dict.fromkeys(keys))
        if not self.keys:
            raise ValueError(f"the {provider} key pool needs at least one key")
        if quota_cooldown < 0 or rate_limit_cooldown < 0:
            raise ValueError(f"the {provider} key pool's cooldowns must not be negative")
        # Round robin: the position the next pick starts from.
        self._next = 0

    def __repr__(self) -> str:
        return f"KeyPool({self.provider}: {', '.join(map(repr, self.keys))})"

    def __len__(self) -> int:
        return len(self.keys)

    def secrets(self) -> list[str]:
        """Every key, for the redaction of logs and error messages (Provider.secrets)."""
        return [key.secret for key in self.keys]

    # -- the request path ---------------------------------------------------------------------

    def pick(self, avoid: Collection[PoolKey] | None = None) -> PoolKey:
        """The key for the next request: the next usable one after the last pick, not in `avoid` if
        another is usable.

        Returns a PoolKey (send `key.secret`, then `report()` the answer). Raises AllKeysCooling when
        every key is resting or disabled; the caller answers the client with it or falls back.
        """
        keys = self.keys
        if len(keys) == 1:
            key = keys[0]
            if key.state is KeyState.HEALTHY:
                key.requests += 1
                return key
            moment = self.clock()
            if self._usable(key, moment):
                key.requests += 1
                return key
            raise self._all_cooling(moment)
        now: float | None = None
        fallback: PoolKey | None = None
        fallback_index = 0
        count = len(keys)
        start = self._next
        for step in range(count):
            index = (start + step) % count
            key = keys[index]
            if key.state is not KeyState.HEALTHY:
                if now is None:
                    now = self.clock()
                if not self._usable(key, now):
                    continue
            if avoid and key in avoid:
                if fallback is None:
                    fallback, fallback_index = key, index
                continue
            self._next = (index + 1) % count
            key.requests += 1
            return key
        if fallback is not None:
            self._next = (fallback_index + 1) % count
            fallback.requests += 1
            return fallback
        raise self._all_cooling(self.clock() if now is None else now)

    def report(self, key: PoolKey, status: int, body: bytes = b"", retry_after: str | None = None) -> Verdict:
        """Record what the upstream answered a request sent with `key`.

        `body` is the error body (not needed for a success), `retry_after` the response's
        `retry-after` header. Returns the verdict (see `classify`); the caller goes on as it would
        without a pool (retry, fall back, or answer the client).
        """
        if status < 400:
            key.failures = 0
            return Verdict.ACCEPTED
        verdict, body_delay = classify(status, body)
        if verdict is Verdict.NOT_THE_KEY:
            return verdict
        key.failures += 1
        before = key.state
        key.state = TRANSITIONS[(before, verdict)]
        if verdict is Verdict.REJECTED:
            if before is not KeyState.DISABLED:
                log.error(
                    "provider=%s key=%s disabled until restart: %s answered %d, so the key is invalid or "
                    "revoked; replace it and restart the gateway",
                    self.provider, key.fingerprint, self.provider, status,
                )
            return verdict
        if key.state is KeyState.DISABLED:
            return verdict
        if verdict is Verdict.QUOTA_EXHAUSTED:
            key.quota_exhausted += 1
            seconds = self.quota_cooldown
            reason = "quota or credit spent"
        else:
            key.rate_limited += 1
            seconds = self._rate_limit_seconds(retry_after, body_delay)
            reason = "rate limited"
        now = self.clock()
        until = now + seconds
        resting = before is KeyState.COOLING and key.cooling_until > now
        # One line when a key starts resting, and when a spent quota lengthens a rate-limit rest;
        # not one per answer to the requests that were in flight when it started.
        if not resting or (verdict is Verdict.QUOTA_EXHAUSTED and until > key.cooling_until):
            level = logging.WARNING if verdict is Verdict.QUOTA_EXHAUSTED else logging.INFO
            log.log(level, "provider=%s key=%s cooling %.0fs: %s (%d)",
                    self.provider, key.fingerprint, seconds, reason, status)
        if resting:
            until = max(until, key.cooling_until)  # a late answer never shortens a rest
        key.cooling_until = until
        return verdict

    def _rate_limit_seconds(self, retry_after: str | None, body_delay: float | None) -> float:
        seconds = parse_retry_after(retry_after, self.wall_clock()) if retry_after else None
        if seconds is None:
            seconds = body_delay if body_delay is not None else self.rate_limit_cooldown
        return min(seconds, self.quota_cooldown)

    def _usable(self, key: PoolKey, now: float) -> bool:
        """True for a healthy key, or a cooling one whose rest is over (it becomes healthy)."""
        if key.state is KeyState.COOLING and now >= key.cooling_until:
            key.state = KeyState.HEALTHY
            log.info("provider=%s key=%s usable again", self.provider, key.fingerprint)
        return key.state is KeyState.HEALTHY

    def _all_cooling(self, now: float) -> AllKeysCooling:
        resting = [key.cooling_until for key in self.keys if key.state is KeyState.COOLING]
        retry_after = max(0.0, min(resting) - now) if resting else None
        return AllKeysCooling(self.provider, retry_after, len(self.keys))

    # -- reporting ------------------------------------------------------------------------------

    def snapshot(self) -> list[KeySnapshot]:
        """Each key's state and counters, for /metrics and the dashboard (fingerprints only)."""
        now = self.clock()
        rows: list[KeySnapshot] = []
        for key in self.keys:
            self._usable(key, now)
            rows.append({
                "fingerprint": key.fingerprint,
                "state": key.state.value,
                "cooling_until": key.cooling_until - now if key.state is KeyState.COOLING else None,
                "requests": key.requests,
                "rate_limited": key.rate_limited,
                "quota_exhausted": key.quota_exhausted,
                "failures": key.failures,
            })
        return rows

    def describe(self) -> str:
        """One line for the start-up banner: "3 keys: key-1a2b3c4d healthy, key-5e6f7a8b cooling 12s, ..."."""
        parts = []
        for row in self.snapshot():
            part = f"{row['fingerprint']} {row['state']}"
            if row["cooling_until"] is not None:
                part += f" {math.ceil(row['cooling_until'])}s"
            parts.append(part)
        return f"{len(self.keys)} key{'s' if len(self.keys) != 1 else ''}: {', '.join(parts)}"
