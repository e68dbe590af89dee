"""The live dashboard's state: recent requests, request rates and latency percentiles, in memory.

Pure: the gateway calls `Dashboard.record` once per finished request and `Dashboard.snapshot` when
`GET /dashboard/data` asks; nothing here does I/O. The clock is passed in (tests pass a fake one).

Policies:
- `record` is on every request's path, so it does a few dict and list operations and never sorts;
  the sorting (percentiles) happens in `snapshot`, which the page asks for every 2 s at most.
- Bounded memory, whatever the traffic:
  - "recent" is a deque of the last `recent_limit` records of every client;
  - request counts live in a ring of 60 one-second buckets, each {(client, provider): [requests, errors]};
  - latency lives in a ring of one-minute buckets covering `window_seconds`, each holding per
    (client, provider, model) series at most SAMPLES_PER_SERIES total times and as many times to
    first token. Past that, a series keeps a uniform random sample of its minute (reservoir sampling,
    Vitter's algorithm R, with a seeded generator: the same records give the same snapshot) plus the
    exact count, and percentiles across minutes weight each sample by count / samples kept, so a
    busy minute is not outvoted by a quiet one. Percentiles are exact while a minute has at most
    SAMPLES_PER_SERIES requests per series.
  - a minute bucket holds at most SERIES_PER_MINUTE series; later (client, provider, model)
    combinations in the same minute are counted under the model "other" (one more series per
    client and provider, names the gateway resolved from its configuration).
  - strings are cut to FIELD_CHARS (ERROR_CHARS for the error message).
- A record is bucketed by its own `time`; one older than what its bucket now holds (it arrived more
  than a ring's length late) still goes to "recent" but not into counts or latency.
- Errors are answers with status >= 400. Latency counts successful answers only (status 100 to 399,
  so not an abandoned request's 0): a 429 in 30 ms says nothing about how fast a model is. A record without a provider ("-": refused before routing)
  counts in the totals and in "recent", not per provider or in latency.
- Latency rows are per provider and upstream model (the part of `upstream` after "provider/"), as
  the same requested name may reach different models.
- "rps" counts the 10 whole seconds before the current one (exact, at most a second behind); the
  last-minute counts take the current second and the 59 before it.
- The viewer's client filters everything per client; `client=None` (admin, or no keys) sees all.

Known shortcuts: a client's "recent" list holds its records among the last `recent_limit` of all
clients, so a quiet client's history can be pushed out by a busy one; not thread-safe (the gateway
calls it from its event loop only); each worker process has its own, so with WORKERS > 1 the page
shows the worker that answered it.
"""

from __future__ import annotations

import time
from array import array
from collections import deque
from collections.abc import Callable

__all__ = ["RECORD_KEYS", "Dashboard"]

# The keys a record keeps, in this order; anything else given to `record` is dropped.
RECORD_KEYS = (
    "time", "client", "front", "route_rule", "provider", "model", "upstream", "status", "input_tokens",
    "output_tokens", "cache_read_tokens", "cache_write_tokens", "ms", "ttft_ms", "stream", "request_id", "error",
)
SECONDS_PER_MINUTE = 60
RATE_WINDOW_SECONDS = 10  # "rps": the requests of the 10 whole seconds before the current one, over 10
COUNT_WINDOW_SECONDS = 60  # the one-second ring's length: "last minute" counts
SAMPLES_PER_SERIES = 128  # total times (and as many times to first token) kept per series per minute
SERIES_PER_MINUTE = 64  # (client, provider, model) series per minute bucket; later ones are "other"
FIELD_CHARS = 200
ERROR_CHARS = 300
NO_PROVIDER = ("", "-")
_CHAR_LIMITS = {key: ERROR_CHARS if key == "error" else FIELD_CHARS for key in RECORD_KEYS}
_PLAIN = (type(None), bool, int, float)
_MASK_64 = (1 << 64) - 1


# ---------------------------------------------------------------------------------------------
# Latency samples
# ---------------------------------------------------------------------------------------------


class _Series:
    """One minute of one (client, provider, model): counts and reservoirs of total and TTFT times."""

    __slots__ = ("count", "total", "ttft", "ttft_count")

    def __init__(self) -> None:
        self.count = 0  # successful answers seen this minute
        self.total = array("d")  # at most SAMPLES_PER_SERIES of their total times, ms
        self.ttft_count = 0  # of which streams that reported a time to first token
        self.ttft = array("d")


def _weighted(samples: list[tuple[float, float]], fraction: float) -> float | None:
    """The smallest value whose cumulative weight reaches `fraction` of the total (nearest rank)."""
    if not samples:
        return None
    samples.sort()
    goal = fraction * sum(weight for _, weight in samples)
    running = 0.0
    for value, weight in samples:
        running += weight
        if running >= goal - 1e-9:
            return round(value, 1)
    return round(samples[-1][0], 1)


def _weigh(values: array, seen: int) -> list[tuple[float, float]]:
    """Each kept sample with the number of requests it stands for."""
    if not values:
        return []
    weight = seen / len(values)
    return [(value, weight) for value in values]


# ---------------------------------------------------------------------------------------------
# The dashboard
# ---------------------------------------------------------------------------------------------


class Dashboard:
    """Recent requests, request counts and latency samples for the live dashboard, in bounded memory."""

    def __init__(self, *, clock: Callable[[], float] = time.time, recent_limit: int = 500, window_seconds: int = 900) -> None:
        if recent_limit < 1:
            raise ValueError(f"recent_limit={recent_limit!r} must be at least 1")
        if window_seconds < SECONDS_PER_MINUTE:
            raise ValueError(f"window_seconds={window_seconds!r} must be at least one minute")
        # Settings, for the process lifetime.
        self.clock = clock
        self.recent_limit = recent_limit
        self.window_seconds = window_seconds
        self.window_minutes = -(-window_seconds // SECONDS_PER_MINUTE)
        # Rings and the deque, replaced bucket by bucket as time moves on.
        self._recent: deque[dict] = deque(maxlen=recent_limit)
        # Slot s % 60: [the second it holds, {(client, provider): [requests, errors]}].
        self._seconds: list[list] = [[-1, {}] for _ in range(COUNT_WINDOW_SECONDS)]
        # Slot m % window_minutes: [the minute it holds (epoch minute index), {(client, provider, model): _Series}].
        self._minutes: list[list] = [[-1, {}] for _ in range(self.window_minutes)]
        self._random = 0x2545F4914F6CDD1D  # the reservoirs' generator state (an LCG; seeded, so runs repeat)

    # ---- recording -------------------------------------------------------------------------

    def record(self, entry: dict) -> None:
        """Add one finished request (see RECORD_KEYS); never raises for odd values, returns nothing."""
        kept = {}
        get = entry.get
        for key, limit in _CHAR_LIMITS.items():  # a plain loop: this runs for every request
            value = get(key)
            kind = value.__class__
            if kind is str:
                if len(value) > limit:
                    value = value[:limit]
            elif kind not in _PLAIN:
                value = _plain(value, limit)
            kept[key] = value
        moment = kept["time"]
        if not _is_number(moment):
            moment = kept["time"] = self.clock()
        self._recent.append(kept)
        status = kept["status"] if isinstance(kept["status"], int) and not isinstance(kept["status"], bool) else 0
        provider = None if kept["provider"] in NO_PROVIDER else kept["provider"]
        second = int(moment)
        self._count(second, kept["client"], provider, status >= 400)
        if provider is not None and 100 <= status < 400 and _is_number(kept["ms"]):
            self._sample(second // SECONDS_PER_MINUTE, (kept["client"], provider, _upstream_model(kept)), kept)

    def _count(self, second: int, client: str | None, provider: str | None, failed: bool) -> None:
        slot = self._seconds[second % COUNT_WINDOW_SECONDS]
        if slot[0] != second:
            if slot[0] > second:
                return  # later than the ring's length: too old to count
            slot[0], slot[1] = second, {}
        counts = slot[1].get((client, provider))
        if counts is None:
            counts = slot[1][(client, provider)] = [0, 0]
        counts[0] += 1
        counts[1] += failed

    def _sample(self, minute: int, key: tuple, kept: dict) -> None:
        slot = self._minutes[minute % self.window_minutes]
        if slot[0] != minute:
            if slot[0] > minute:
                return
            slot[0], slot[1] = minute, {}
        series = slot[1].get(key)
        if series is None:
            if len(slot[1]) >= SERIES_PER_MINUTE:
                key = (key[0], key[1], "other")
                series = slot[1].get(key)
            if series is None:
                series = slot[1][key] = _Series()
        series.count += 1
        self._keep(series.total, series.count, float(kept["ms"]))
        if _is_number(kept["ttft_ms"]):
            series.ttft_count += 1
            self._keep(series.ttft, series.ttft_count, float(kept["ttft_ms"]))

    def _keep(self, samples: array, seen: int, value: float) -> None:
        """Algorithm R: the `seen`-th value replaces a random sample with probability size / seen."""
        if len(samples) < SAMPLES_PER_SERIES:
            samples.append(value)
            return
        self._random = (self._random * 6364136223846793005 + 1442695040888963407) & _MASK_64
        position = (self._random >> 11) % seen
        if position < SAMPLES_PER_SERIES:
            samples[position] = value

    # ---- reading ---------------------------------------------------------------------------

    def snapshot(self, *, client: str | None, now: float | None = None) -> dict:
        """{"now", "latency", "recent"} as `GET /dashboard/data` shows them, for one client (None: all).

        Returns fresh lists and dicts (the caller may add keys and serialize them); raises nothing.
        """
        now = self.clock() if now is None else now
        return {"now": self._now(client, now), "latency": self._latency(client, now), "recent": self._recent_for(client)}

    def _now(self, client: str | None, now: float) -> dict:
        current = int(now)
        totals = {"rate": 0, "requests": 0, "errors": 0}
        by_provider: dict[str, dict] = {}
        for second, counts in self._seconds:
            age = current - second
            if not 0 <= age < COUNT_WINDOW_SECONDS:
                continue
            recent = 1 <= age <= RATE_WINDOW_SECONDS  # whole seconds: the current one is still filling
            for (who, provider), (requests, errors) in counts.items():
                if client is not None and who != client:
                    continue
                places = [totals]
                if provider is not None:
                    if provider not in by_provider:
                        by_provider[provider] = {"rate": 0, "requests": 0, "errors": 0}
                    places.append(by_provider[provider])
                for place in places:
                    place["requests"] += requests
                    place["errors"] += errors
                    if recent:
                        place["rate"] += requests

        def shown(sums: dict) -> dict:
            return {"rps": round(sums["rate"] / RATE_WINDOW_SECONDS, 2), "requests_last_minute": sums["requests"],
                    "errors_last_minute": sums["errors"]}

        return {**shown(totals), "by_provider": {name: shown(by_provider[name]) for name in sorted(by_provider)}}

    def _latency(self, client: str | None, now: float) -> list[dict]:
        current = int(now) // SECONDS_PER_MINUTE
        first = current - self.window_minutes + 1
        # (provider, model) -> minute -> [count, total samples, ttft count, ttft samples]
        rows: dict[tuple[str, str], dict[int, list]] = {}
        for minute, series_by_key in self._minutes:
            if not first <= minute <= current:
                continue
            for (who, provider, model), series in series_by_key.items():
                if client is not None and who != client:
                    continue
                point = rows.setdefault((provider, model), {}).setdefault(minute, [0, [], 0, []])
                point[0] += series.count
                point[1] += _weigh(series.total, series.count)
                point[2] += series.ttft_count
                point[3] += _weigh(series.ttft, series.ttft_count)
        out = []
        for (provider, model), by_minute in sorted(rows.items()):
            series_out, all_total, all_ttft, count = [], [], [], 0
            for minute in range(first, current + 1):
                point = by_minute.get(minute)
                if point is None:
                    series_out.append({"minute": minute * SECONDS_PER_MINUTE, "count": 0, "total_p50": None,
                                       "total_p95": None, "ttft_p50": None})
                    continue
                count += point[0]
                all_total += point[1]
                all_ttft += point[3]
                series_out.append({"minute": minute * SECONDS_PER_MINUTE, "count": point[0],
                                   "total_p50": _weighted(point[1], 0.5), "total_p95": _weighted(point[1], 0.95),
                                   "ttft_p50": _weighted(point[3], 0.5)})
            out.append({"provider": provider, "model": model, "count": count,
                        "ttft_p50": _weighted(all_ttft, 0.5), "ttft_p95": _weighted(all_ttft, 0.95),
                        "total_p50": _weighted(all_total, 0.5), "total_p95": _weighted(all_total, 0.95),
                        "series": series_out})
        return out

    def _recent_for(self, client: str | None) -> list[dict]:
        return [dict(entry) for entry in reversed(self._recent) if client is None or entry["client"] == client]


def _plain(value: object, limit: int) -> object:
    """A number of a subclass (an IntEnum status) as a plain number; anything else not JSON-plain as None."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)[:limit]
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _upstream_model(entry: dict) -> str:
    """The model the provider ran: `upstream` after "provider/", else the requested model, else "-"."""
    upstream, provider = entry["upstream"], entry["provider"]
    if isinstance(upstream, str) and isinstance(provider, str) and upstream.startswith(provider + "/"):
        return upstream[len(provider) + 1 :] or "-"
    model = entry["model"]
    return model if isinstance(model, str) and model else "-"
