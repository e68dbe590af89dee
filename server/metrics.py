"""Prometheus metrics: a small registry and the text exposition format, hand-written, no dependency.

Pure: the server records numbers here and asks for the text on `GET /metrics`; nothing here reads a
clock or does I/O (durations are measured by the caller).

Policies:
- Every family is declared once below with its type and help text; recording into an undeclared
  name is a programming error (KeyError).
- Label values that clients control (the requested model name) could grow without bound, so each
  label keeps at most `max_label_values` distinct values; later ones are counted as "other".
- Label values are escaped as the format requires (backslash, double quote, newline).
- Secrets never reach a label: labels are front, provider, model, status, kind, reason and, for API
  keys, their fingerprint (`key-` and 8 hex digits of a SHA-256), never the key.
"""

from __future__ import annotations

from bisect import bisect_left

# Latency buckets in seconds: LLM requests run from milliseconds (count_tokens) to minutes.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

FAMILIES = {
    "switchboard_requests_total": ("counter", "Requests answered, by front, provider, model, HTTP status, client and route rule."),
    "switchboard_request_duration_seconds": ("histogram", "Time from the request head to the end of the response."),
    "switchboard_time_to_first_token_seconds": ("histogram", "Time from the request head to the first content byte of a stream."),
    "switchboard_tokens_total": ("counter", "Tokens reported by upstreams, by provider, kind (input, output, cached), client and model."),
    "switchboard_upstream_errors_total": ("counter", "Failed upstream attempts, by provider and kind."),
    "switchboard_upstream_retries_total": ("counter", "Upstream attempts repeated, by provider and reason."),
    "switchboard_fallbacks_total": ("counter", "Requests answered by a fallback model, by provider."),
    "switchboard_active_streams": ("gauge", "Streaming responses in progress."),
    "switchboard_open_connections": ("gauge", "Client connections open."),
    "switchboard_upstream_pool_connections": ("gauge", "Upstream connections in the pool, by state (idle, active)."),
    "switchboard_upstream_key_state": ("gauge", "1 for the state each upstream API key is in (healthy, cooling, disabled), by key fingerprint."),
    "switchboard_upstream_key_requests_total": ("counter", "Requests sent with each upstream API key, by key fingerprint."),
    "switchboard_upstream_key_refusals_total": ("counter", "Answers that refused an upstream API key, by key fingerprint and reason."),
    "switchboard_key_rotations_total": ("counter", "Requests moved to another API key after a refusal, by provider and reason."),
}

Labels = tuple[tuple[str, str], ...]
KNOWN_KEYS_LIMIT = 4096  # series keys remembered by the labels given; the memo starts over when full
INF_BUCKET = 'le="+Inf"'


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if value == int(value):
        return str(int(value))
    return repr(value)


class Metrics:
    """Counters, histograms and gauges keyed by (family, labels)."""

    def __init__(self, buckets: tuple[float, ...] = DEFAULT_BUCKETS, max_label_values: int = 200) -> None:
        self.buckets = buckets
        self.max_label_values = max_label_values
        self._counters: dict[tuple[str, Labels], float] = {}
        self._gauges: dict[tuple[str, Labels], float] = {}
        # Histogram: per series, bucket counts (one per bound, not cumulative), sum and count.
        self._histograms: dict[tuple[str, Labels], list] = {}
        self._seen_values: dict[str, set[str]] = {}
        # (family, labels as given) -> the series key: most requests record the same few series.
        self._keys: dict[tuple, tuple[str, Labels]] = {}

    def _key(self, name: str, labels: dict[str, str]) -> tuple[str, Labels]:
        given = (name, *labels.items())
        key = self._keys.get(given)
        if key is None:
            if len(self._keys) >= KNOWN_KEYS_LIMIT:
                self._keys.clear()  # label values clients control could otherwise grow it without bound
            key = self._keys[given] = (name, self._labels(labels))
        return key

    def _labels(self, labels: dict[str, str]) -> Labels:
        out = []
        for name, value in labels.items():
            value = str(value)
            seen = self._seen_values.setdefault(name, set())
            if value not in seen:
                if len(seen) >= self.max_label_values:
                    value = "other"
                else:
                    seen.add(value)
            out.append((name, value))
        return tuple(out)

    @staticmethod
    def _check(name: str, kind: str) -> None:
        if FAMILIES[name][0] != kind:
            raise KeyError(f"{name} is a {FAMILIES[name][0]}, not a {kind}")

    def inc(self, name: str, value: float = 1, **labels: str) -> None:
        """Add `value` to a counter."""
        self._check(name, "counter")
        key = self._key(name, labels)
        self._counters[key] = self._counters.get(key, 0) + value

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge."""
        self._check(name, "gauge")
        self._gauges[self._key(name, labels)] = value

    def add(self, name: str, value: float, **labels: str) -> None:
        """Move a gauge by `value` (positive or negative)."""
        self._check(name, "gauge")
        key = self._key(name, labels)
        self._gauges[key] = self._gauges.get(key, 0) + value

    def mirror(self, name: str, value: float, **labels: str) -> None:
        """Set a counter or gauge to a total kept elsewhere (a key pool's counts), read at scrape time."""
        kind = FAMILIES[name][0]
        store = self._counters if kind == "counter" else self._gauges
        store[self._key(name, labels)] = value

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        """Record one observation in a histogram."""
        self._check(name, "histogram")
        key = self._key(name, labels)
        series = self._histograms.get(key)
        if series is None:
            series = self._histograms[key] = [[0] * len(self.buckets), 0.0, 0]
        position = bisect_left(self.buckets, seconds)
        if position < len(self.buckets):
            series[0][position] += 1
        series[1] += seconds
        series[2] += 1

    def value(self, name: str, **labels: str) -> float:
        """A counter's or gauge's current value (0 when never recorded); for tests and logs."""
        key = (name, tuple((k, str(v)) for k, v in labels.items()))
        return self._counters.get(key, self._gauges.get(key, 0))

    def render(self) -> str:
        """The Prometheus text exposition (version 0.0.4) of every family that has data."""
        lines: list[str] = []
        for name, (kind, help_text) in FAMILIES.items():
            store = {"counter": self._counters, "gauge": self._gauges, "histogram": self._histograms}[kind]
            series = sorted((labels, value) for (family, labels), value in store.items() if family == name)
            if not series:
                continue
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in series:
                if kind != "histogram":
                    lines.append(f"{name}{_format_labels(labels)} {_number(value)}")
                    continue
                counts, total, count = value
                cumulative = 0
                for bound, bucket_count in zip(self.buckets, counts):
                    cumulative += bucket_count
                    bucket_labels = _format_labels(labels, 'le="' + _number(bound) + '"')
                    lines.append(f"{name}_bucket{bucket_labels} {cumulative}")
                lines.append(f"{name}_bucket{_format_labels(labels, INF_BUCKET)} {count}")
                lines.append(f"{name}_sum{_format_labels(labels)} {repr(float(total))}")
                lines.append(f"{name}_count{_format_labels(labels)} {count}")
        return "\n".join(lines) + "\n"
