"""The live dashboard's state: recent requests, request rates and latency percentiles, in memory.

Pure: the gateway calls `Dashboard.record` once per finished request and `Dashboard.snapshot` when
`GET /dashboard/data` asks; nothing here does I/O. The clock is passed in (tests pass a fake one).
With several workers, each worker's `Dashboard.export` (its raw state as plain JSON data) reaches the
others (server/dashboard_endpoints.py moves it through files), and `snapshot(others=...)` computes the
page's numbers over its own state and those exports together.

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
- Merging exports (`snapshot(others=...)`) gives what one Dashboard fed every record would give:
  counts are sums; latency keeps each worker's series apart, each sample weighted by its own series'
  count / samples kept, so percentiles are exact while no series is sampled; "recent" is the union
  sorted by time, newest first (ties: this dashboard's first), cut to `recent_limit`, then filtered
  by client. Two differences, both only past the caps: the union may hold more samples of a series
  than one Dashboard would keep (a better estimate, not a worse one), and each worker folds its own
  series past SERIES_PER_MINUTE into "other".

Known shortcuts: a client's "recent" list holds its records among the last `recent_limit` of all
clients, so a quiet client's history can be pushed out by a busy one; not thread-safe (the gateway
calls it from its event loop only).
"""

from __future__ import annotations

import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from typing import TypedDict

__all__ = ["RECORD_KEYS", "Dashboard", "Export", "check_export", "check_row"]

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
_by_time = itemgetter("time")


class Export(TypedDict):
    """One Dashboard's raw state as plain JSON data (`Dashboard.export`), for another to merge.

    Flat rows, so a writer can serialize (and a reader parse and check) them one at a time and reuse
    the work for rows that did not change.
    """

    time: float  # when it was taken (epoch seconds)
    recent: list[dict]  # the records, oldest first, RECORD_KEYS each
    counts: list[list]  # [second, client, provider, requests, errors]: the last minute's counts
    series: list[list]  # [minute, client, provider, model, count, [total ms], ttft count, [ttft ms]]: the window's
    gauges: dict[str, int]  # the caller's own numbers to sum across exports ({} from `export`)


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
        # The last export's series rows, {(minute, key): (count, row)}: reused while the count is unchanged.
        self._exported: dict[tuple, tuple[int, list]] = {}

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

    # ---- exporting -------------------------------------------------------------------------

    def export(self, now: float | None = None) -> Export:
        """This dashboard's state as plain JSON data: what `snapshot(others=...)` needs, no more.

        Only buckets that can still count at `now` are included. Treat the result as read-only: its
        records are this dashboard's own dicts (never changed once recorded), and a series row that did
        not change since the last export is the same list as then (a writer may reuse its text). Costs
        list copies of the rows, and sample copies only for series that got requests since the last
        call; no sorting. Raises nothing.
        """
        now = self.clock() if now is None else now
        oldest_second = int(now) - COUNT_WINDOW_SECONDS + 1
        oldest_minute = int(now) // SECONDS_PER_MINUTE - self.window_minutes + 1
        counts = [[second, who, provider, requests, errors] for second, by_key in self._seconds if second >= oldest_second
                  for (who, provider), (requests, errors) in by_key.items()]
        series_rows, exported = [], {}
        for minute, series_by_key in self._minutes:
            if minute < oldest_minute:
                continue
            for key, series in series_by_key.items():
                # A series changes only by counting a request, so an equal count means the same samples.
                cached = self._exported.get((minute, key))
                if cached is None or cached[0] != series.count:
                    cached = (series.count, [minute, *key, series.count, series.total.tolist(), series.ttft_count,
                                             series.ttft.tolist()])
                exported[(minute, key)] = cached
                series_rows.append(cached[1])
        self._exported = exported
        return {"time": now, "recent": list(self._recent), "counts": counts, "series": series_rows, "gauges": {}}

    def newest_record(self) -> dict | None:
        """The last record (the same object until another is recorded), or None: tells whether anything changed."""
        return self._recent[-1] if self._recent else None

    # ---- reading ---------------------------------------------------------------------------

    def snapshot(self, *, client: str | None, now: float | None = None, others: Sequence[Export] = ()) -> dict:
        """{"now", "latency", "recent"} as `GET /dashboard/data` shows them, for one client (None: all).

        `others` are other dashboards' exports (from `export`, or read back and passed by
        `check_export`) to count with this one's state, as if this dashboard had recorded their records
        too (see the policies above). Returns fresh lists and dicts (the caller may add keys and
        serialize them); raises nothing.
        """
        now = self.clock() if now is None else now
        return {"now": self._now(client, now, others), "latency": self._latency(client, now, others),
                "recent": self._recent_for(client, others)}

    def _count_rows(self, others: Sequence[Export]) -> Iterator[Sequence]:
        """(second, client, provider, requests, errors) of this dashboard's ring, then of the exports."""
        for second, by_key in self._seconds:
            for (who, provider), (requests, errors) in by_key.items():
                yield second, who, provider, requests, errors
        for other in others:
            yield from other["counts"]

    def _series_rows(self, others: Sequence[Export]) -> Iterator[Sequence]:
        """(minute, client, provider, model, count, total ms, ttft count, ttft ms) of this ring, then of the exports."""
        for minute, series_by_key in self._minutes:
            for (who, provider, model), series in series_by_key.items():
                yield minute, who, provider, model, series.count, series.total, series.ttft_count, series.ttft
        for other in others:
            yield from other["series"]

    def _now(self, client: str | None, now: float, others: Sequence[Export]) -> dict:
        current = int(now)
        totals = {"rate": 0, "requests": 0, "errors": 0}
        by_provider: dict[str, dict] = {}
        for second, who, provider, requests, errors in self._count_rows(others):
            age = current - second
            if not 0 <= age < COUNT_WINDOW_SECONDS or (client is not None and who != client):
                continue
            recent = 1 <= age <= RATE_WINDOW_SECONDS  # whole seconds: the current one is still filling
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

    def _latency(self, client: str | None, now: float, others: Sequence[Export]) -> list[dict]:
        current = int(now) // SECONDS_PER_MINUTE
        first = current - self.window_minutes + 1
        # (provider, model) -> minute -> [count, total samples, ttft count, ttft samples]
        rows: dict[tuple[str, str], dict[int, list]] = {}
        for minute, who, provider, model, count, total, ttft_count, ttft in self._series_rows(others):
            if not first <= minute <= current or (client is not None and who != client):
                continue
            point = rows.setdefault((provider, model), {}).setdefault(minute, [0, [], 0, []])
            point[0] += count
            point[1] += _weigh(total, count)  # each dashboard's series weighed by its own count / samples kept
            point[2] += ttft_count
            point[3] += _weigh(ttft, ttft_count)
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

    def _recent_for(self, client: str | None, others: Sequence[Export]) -> list[dict]:
        newest_first = list(reversed(self._recent))
        if others:
            for other in others:
                newest_first += reversed(other["recent"])
            newest_first.sort(key=_by_time, reverse=True)  # stable: ties keep this dashboard's first
            del newest_first[self.recent_limit :]  # the last recent_limit of all clients, as one dashboard keeps
        return [dict(entry) for entry in newest_first if client is None or entry["client"] == client]


# ---------------------------------------------------------------------------------------------
# Exports read back
# ---------------------------------------------------------------------------------------------


def check_export(value: object) -> Export:
    """An export read back from JSON, checked and rebuilt so that `snapshot(others=...)` can trust it.

    Raises ValueError naming the first thing that is not as `Dashboard.export` writes it; the caller
    skips that export. (A reader that gets the rows one by one checks them with `check_row`.)
    """
    if not isinstance(value, dict):
        raise ValueError("an export is a JSON object")
    if not _is_number(value.get("time")):
        raise ValueError("an export needs a numeric time")
    gauges = value.get("gauges")
    if not isinstance(gauges, dict):
        raise ValueError("gauges is an object")
    return {"time": value["time"], **{part: [check_row(part, row) for row in _listed(value.get(part), part)]
                                      for part in ("recent", "counts", "series")},
            "gauges": {str(name): _nonnegative(number) for name, number in gauges.items()}}


def check_row(part: str, value: object) -> dict | list:
    """One row of an export's "recent", "counts" or "series", checked and rebuilt; raises ValueError.

    A record keeps RECORD_KEYS only, cut as `record` cuts them.
    """
    if part == "recent":
        if not isinstance(value, dict) or not _is_number(value.get("time")):
            raise ValueError("a recent record is an object with a numeric time")
        kept = {}
        for key, limit in _CHAR_LIMITS.items():
            item = value.get(key)
            kept[key] = item[:limit] if isinstance(item, str) else item if item.__class__ in _PLAIN else None
        return kept
    if part == "counts":
        second, who, provider, requests, errors = _fields(value, 5, "a count row")
        return [_whole(second), _name(who), _name(provider), _nonnegative(requests), _nonnegative(errors)]
    if part == "series":
        minute, who, provider, model, count, total, ttft_count, ttft = _fields(value, 8, "a series row")
        if not isinstance(model, str):
            raise ValueError("a series' model is a string")
        return [_whole(minute), _name(who), _name(provider), model, _nonnegative(count), _samples(total), _nonnegative(ttft_count),
                _samples(ttft)]
    raise ValueError(f"an export has no part {part!r}")


def _listed(value: object, what: str) -> list:
    if not isinstance(value, list):
        raise ValueError(f"{what} is a list")
    return value


def _fields(value: object, size: int, what: str) -> list:
    if not isinstance(value, list) or len(value) != size:
        raise ValueError(f"{what} is a list of {size}")
    return value


def _whole(value: object) -> int:
    if value.__class__ is not int:
        raise ValueError("a second or minute is an integer")
    return value


def _nonnegative(value: object) -> int:
    if value.__class__ is not int or value < 0:
        raise ValueError("a count is a whole number, 0 or more")
    return value


def _name(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError("a client or provider is a string or null")
    return value


def _samples(value: object) -> list:
    if not all(_is_number(item) for item in _listed(value, "samples")):
        raise ValueError("samples are numbers")
    return value


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
