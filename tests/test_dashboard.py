"""The live dashboard's state (server/dashboard.py) and its page (server/dashboard_page.py), in memory."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser

import pytest

from server.dashboard import RECORD_KEYS, SAMPLES_PER_SERIES, SERIES_PER_MINUTE, Dashboard, check_export, check_row
from server.dashboard_endpoints import LIVE_STALE_SECONDS, LiveFileReader, LiveFileWriter
from server.dashboard_page import PAGE

NOW = 1_750_000_020.5  # 20.5 s into a minute
MINUTE = NOW // 60 * 60  # the current minute's start


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def entry(**fields: object) -> dict:
    """A successful non-stream request by alice to openai/gpt-4.1, with `fields` changed."""
    value = {
        "time": NOW, "client": "alice", "front": "anthropic", "route_rule": None, "provider": "openai",
        "model": "claude-sonnet-4-5", "upstream": "openai/gpt-4.1", "status": 200, "input_tokens": 11,
        "output_tokens": 7, "cache_read_tokens": 0, "cache_write_tokens": 0, "ms": 100, "ttft_ms": None,
        "stream": False, "request_id": "req_1", "error": None,
    }
    value.update(fields)
    return value


def latency_row(snapshot: dict, provider: str = "openai", model: str = "gpt-4.1") -> dict:
    rows = [row for row in snapshot["latency"] if (row["provider"], row["model"]) == (provider, model)]
    assert len(rows) == 1, snapshot["latency"]
    return rows[0]


# ---------------------------------------------------------------------------------------------
# Now: rates and counts
# ---------------------------------------------------------------------------------------------


def test_rps_counts_the_last_ten_whole_seconds_and_the_minute_counts_sixty():
    """rps is the 10 whole seconds before the current one over 10; the last-minute counts reach back 60 s."""
    dashboard = Dashboard(clock=FakeClock())
    for age in range(1, 11):  # 2 requests in each of the 10 seconds before this one
        dashboard.record(entry(time=NOW - age))
        dashboard.record(entry(time=NOW - age))
    for age in (0, 0, 0, 11, 30, 59):
        dashboard.record(entry(time=NOW - age))
    dashboard.record(entry(time=NOW - 61))
    now = dashboard.snapshot(client=None)["now"]
    assert now["rps"] == 2.0
    assert now["requests_last_minute"] == 26
    assert dashboard.snapshot(client=None, now=NOW + 1)["now"]["rps"] == 2.1  # the 3 at NOW are now whole, 2 aged out
    assert now["errors_last_minute"] == 0
    assert dashboard.snapshot(client=None, now=NOW + 120)["now"]["requests_last_minute"] == 0


def test_errors_are_statuses_of_400_and_above_counted_per_provider():
    """A 4xx or 5xx is an error; a request refused before routing counts in the totals only."""
    dashboard = Dashboard(clock=FakeClock())
    dashboard.record(entry(status=200))
    dashboard.record(entry(status=399))
    dashboard.record(entry(status=429, error="rate limited"))
    dashboard.record(entry(status=502, provider="anthropic", upstream="anthropic/claude-sonnet-5"))
    dashboard.record(entry(status=401, provider="-", upstream="-", error="invalid key"))
    now = dashboard.snapshot(client=None, now=NOW + 1)["now"]
    assert (now["requests_last_minute"], now["errors_last_minute"]) == (5, 3)
    assert now["by_provider"] == {
        "anthropic": {"rps": 0.1, "requests_last_minute": 1, "errors_last_minute": 1},
        "openai": {"rps": 0.3, "requests_last_minute": 3, "errors_last_minute": 1},
    }


# ---------------------------------------------------------------------------------------------
# Latency
# ---------------------------------------------------------------------------------------------


def test_percentiles_are_nearest_rank_over_the_window():
    """Total times 1..100 ms give p50 50 and p95 95; TTFT comes from streams only; None without data."""
    dashboard = Dashboard(clock=FakeClock())
    for ms in range(1, 101):
        stream = ms % 2 == 0
        dashboard.record(entry(ms=ms, stream=stream, ttft_ms=ms / 2 if stream else None, time=NOW - ms))
    row = latency_row(dashboard.snapshot(client=None))
    assert row["count"] == 100
    assert (row["total_p50"], row["total_p95"]) == (50.0, 95.0)
    assert (row["ttft_p50"], row["ttft_p95"]) == (25.0, 48.0)  # streams: 2, 4, ..., 100 ms over 2

    quiet = Dashboard(clock=FakeClock())
    quiet.record(entry(ms=250))
    row = latency_row(quiet.snapshot(client=None))
    assert (row["total_p50"], row["total_p95"], row["ttft_p50"], row["ttft_p95"]) == (250.0, 250.0, None, None)


def test_latency_rows_are_per_provider_and_upstream_model_and_skip_errors():
    """Rows are keyed by provider and the model after "provider/"; failed answers are not timed."""
    dashboard = Dashboard(clock=FakeClock())
    dashboard.record(entry(model="sonnet", upstream="openai/gpt-4.1", ms=100))
    dashboard.record(entry(model="haiku", upstream="openai/gpt-4.1-mini", ms=20))
    dashboard.record(entry(model="haiku", upstream="openai/gpt-4.1-mini", ms=5, status=429))
    dashboard.record(entry(model="x", upstream="-", provider="-", ms=1, status=401))
    dashboard.record(entry(model="odd", upstream=None, ms=7))  # no upstream: the requested model stands in
    rows = dashboard.snapshot(client=None)["latency"]
    assert [(row["provider"], row["model"], row["count"], row["total_p50"]) for row in rows] == [
        ("openai", "gpt-4.1", 1, 100.0), ("openai", "gpt-4.1-mini", 1, 20.0), ("openai", "odd", 1, 7.0),
    ]


def test_series_has_one_point_per_minute_of_the_window_oldest_first():
    """A 5-minute window gives 5 points, empty minutes included, each at its minute's start."""
    dashboard = Dashboard(clock=FakeClock(), window_seconds=300)
    dashboard.record(entry(time=MINUTE - 240 + 5, ms=10, stream=True, ttft_ms=4))
    dashboard.record(entry(time=MINUTE + 1, ms=30))
    dashboard.record(entry(time=MINUTE + 2, ms=50))
    dashboard.record(entry(time=MINUTE - 300, ms=99999))  # just outside the window
    row = latency_row(dashboard.snapshot(client=None))
    assert [point["minute"] for point in row["series"]] == [MINUTE - 240, MINUTE - 180, MINUTE - 120, MINUTE - 60, MINUTE]
    first, *middle, last = row["series"]
    assert first == {"minute": MINUTE - 240, "count": 1, "total_p50": 10.0, "total_p95": 10.0, "ttft_p50": 4.0}
    assert all(point["count"] == 0 and point["total_p50"] is None for point in middle)
    assert last == {"minute": MINUTE, "count": 2, "total_p50": 30.0, "total_p95": 50.0, "ttft_p50": None}
    assert (row["count"], row["total_p95"]) == (3, 50.0)
    later = dashboard.snapshot(client=None, now=NOW + 600)
    assert later["latency"] == []


def test_a_busy_minute_is_not_outvoted_by_a_quiet_one():
    """Kept samples are weighted by the requests they stand for when minutes are merged."""
    dashboard = Dashboard(clock=FakeClock())
    for index in range(5000):
        dashboard.record(entry(time=MINUTE - 60 + index % 60, ms=100))
    for _ in range(20):
        dashboard.record(entry(time=MINUTE, ms=1000))
    row = latency_row(dashboard.snapshot(client=None))
    assert row["count"] == 5020
    assert (row["total_p50"], row["total_p95"]) == (100.0, 100.0)  # 20 slow of 5020 is under 5%
    assert row["series"][-1]["total_p50"] == 1000.0


def test_sampled_percentiles_stay_close_and_repeat_exactly():
    """Past the reservoir's size percentiles are estimates, near the truth and the same every run."""
    def fill() -> dict:
        dashboard = Dashboard(clock=FakeClock())
        for index in range(20000):
            dashboard.record(entry(ms=(index * 7919) % 1000 + 1))  # 1..1000 ms, evenly, shuffled
        return dashboard.snapshot(client=None)

    first, second = fill(), fill()
    assert first == second
    row = latency_row(first)
    assert row["count"] == 20000
    assert 400 <= row["total_p50"] <= 600
    assert 880 <= row["total_p95"] <= 1000


# ---------------------------------------------------------------------------------------------
# Per-client views, recent requests, bounded memory
# ---------------------------------------------------------------------------------------------


def test_a_client_sees_only_its_own_requests_and_none_sees_all():
    """recent, now and latency are filtered by client; client=None (admin) sees every record."""
    dashboard = Dashboard(clock=FakeClock())
    for index in range(3):
        dashboard.record(entry(client="alice", request_id=f"req_a{index}", ms=100))
    for index in range(2):
        dashboard.record(entry(client="bob", request_id=f"req_b{index}", ms=900, status=500 if index else 200))
    alice = dashboard.snapshot(client="alice")
    assert [item["request_id"] for item in alice["recent"]] == ["req_a2", "req_a1", "req_a0"]
    assert (alice["now"]["requests_last_minute"], alice["now"]["errors_last_minute"]) == (3, 0)
    assert latency_row(alice)["total_p95"] == 100.0
    bob = dashboard.snapshot(client="bob")
    assert [item["client"] for item in bob["recent"]] == ["bob", "bob"]
    assert (bob["now"]["requests_last_minute"], bob["now"]["errors_last_minute"]) == (2, 1)
    assert latency_row(bob)["count"] == 1
    everyone = dashboard.snapshot(client=None)
    assert len(everyone["recent"]) == 5
    assert everyone["now"]["requests_last_minute"] == 5
    assert latency_row(everyone)["count"] == 4
    nobody = dashboard.snapshot(client="carol")
    assert nobody == {"now": {"rps": 0.0, "requests_last_minute": 0, "errors_last_minute": 0, "by_provider": {}},
                      "latency": [], "recent": []}


def test_recent_is_newest_first_and_holds_at_most_the_limit():
    """The last recent_limit records, newest first."""
    dashboard = Dashboard(clock=FakeClock(), recent_limit=5)
    for index in range(12):
        dashboard.record(entry(request_id=f"req_{index}"))
    assert [item["request_id"] for item in dashboard.snapshot(client=None)["recent"]] == [f"req_{i}" for i in (11, 10, 9, 8, 7)]


def test_recent_keeps_only_the_listed_keys():
    """Unknown keys (a prompt, headers) are dropped, missing ones are None, long strings are cut."""
    dashboard = Dashboard(clock=FakeClock())
    dashboard.record(entry(prompt="secret prompt text", completion="secret answer", headers={"x-api-key": "k"},
                           error="x" * 5000, model="m" * 5000))
    dashboard.record({"status": 200, "client": "bob"})
    newest, first = dashboard.snapshot(client=None)["recent"]
    assert tuple(first) == RECORD_KEYS
    assert "secret" not in json.dumps([newest, first])
    assert len(first["error"]) == 300 and len(first["model"]) == 200
    assert tuple(newest) == RECORD_KEYS
    assert newest["client"] == "bob" and newest["time"] == NOW  # a record without a time is stamped now
    assert newest["request_id"] is None and newest["ms"] is None


def test_snapshots_are_fresh_json_values():
    """A snapshot serializes as JSON, and changing it does not change the dashboard."""
    dashboard = Dashboard(clock=FakeClock())
    dashboard.record(entry(stream=True, ttft_ms=12.5))
    snapshot = dashboard.snapshot(client=None)
    json.dumps(snapshot, allow_nan=False)
    snapshot["recent"][0]["client"] = "mallory"
    snapshot["recent"].clear()
    assert dashboard.snapshot(client=None)["recent"][0]["client"] == "alice"


def test_memory_stays_bounded_under_many_records():
    """Rings keep their length, series and samples per minute are capped, recent keeps its limit."""
    clock = FakeClock()
    dashboard = Dashboard(clock=clock, recent_limit=50, window_seconds=300)
    for index in range(60000):
        clock.now = NOW + index / 20  # 20 requests a second for 50 minutes
        dashboard.record(entry(time=clock.now, client=f"client{index % 7}", model=f"model-{index}",
                               upstream=f"openai/model-{index % 500}", ms=index % 3000, stream=True, ttft_ms=index % 700,
                               request_id=f"req_{index}"))
    assert len(dashboard._recent) == 50
    assert len(dashboard._seconds) == 60
    assert len(dashboard._minutes) == 5
    for _, series_by_key in dashboard._minutes:
        assert len(series_by_key) <= SERIES_PER_MINUTE + 7  # plus one "other" per client
        for series in series_by_key.values():
            assert len(series.total) <= SAMPLES_PER_SERIES and len(series.ttft) <= SAMPLES_PER_SERIES
    snapshot = dashboard.snapshot(client=None)
    window_start = clock.now // 60 * 60 - 4 * 60  # the current minute and the 4 before it
    in_window = sum(1 for index in range(60000) if NOW + index / 20 >= window_start)
    assert sum(row["count"] for row in snapshot["latency"]) == in_window
    assert len(snapshot["recent"]) == 50
    assert snapshot["now"]["rps"] == 20.0
    assert dashboard.snapshot(client=None, now=clock.now + 11)["now"]["rps"] == 0.0


def test_late_records_count_where_their_bucket_still_holds_their_time():
    """A record older than what its ring slot now holds is listed in recent but not counted."""
    dashboard = Dashboard(clock=FakeClock(), window_seconds=120)
    dashboard.record(entry(time=NOW))
    dashboard.record(entry(time=NOW - 60, request_id="late"))  # same second slot, a minute older
    dashboard.record(entry(time=NOW - 120, request_id="later"))  # same minute slot, two minutes older
    snapshot = dashboard.snapshot(client=None)
    assert snapshot["now"]["requests_last_minute"] == 1  # "late" lost its second slot to NOW
    assert latency_row(snapshot)["count"] == 2  # "late" is in the window; "later" lost its minute slot
    assert [item["request_id"] for item in snapshot["recent"]] == ["later", "late", "req_1"]


def test_settings_are_checked():
    """A recent limit under 1 or a window under a minute is a ValueError."""
    with pytest.raises(ValueError, match="recent_limit"):
        Dashboard(recent_limit=0)
    with pytest.raises(ValueError, match="window_seconds"):
        Dashboard(window_seconds=30)


# ---------------------------------------------------------------------------------------------
# Several workers: exports merged into one view
# ---------------------------------------------------------------------------------------------


def traffic(count: int = 400, seed: int = 7) -> list[dict]:
    """Records of two clients over a 15-minute window, oldest first, each at its own time: several
    providers and models, streams, errors and refusals; fewer than SAMPLES_PER_SERIES per series and minute."""
    rng = random.Random(seed)
    records = []
    for index in range(count):
        age = rng.uniform(0, 59) if index % 3 == 0 else rng.uniform(0, 15 * 60 - 21)  # a third in the last minute
        provider, model = rng.choice([("openai", "gpt-4.1"), ("openai", "gpt-4.1-mini"), ("anthropic", "claude-sonnet-5")])
        stream = rng.random() < 0.5
        status = rng.choice([200] * 8 + [429, 502])
        record = entry(time=NOW - age, client=rng.choice(["alice", "bob"]), provider=provider, upstream=f"{provider}/{model}",
                       status=status, ms=round(rng.uniform(5, 3000), 1), stream=stream,
                       ttft_ms=round(rng.uniform(1, 500), 1) if stream else None, request_id=f"req_{index}")
        if index % 37 == 0:
            record.update(provider="-", upstream="-", status=401, error="invalid key")  # refused before routing
        records.append(record)
    return sorted(records, key=lambda record: record["time"])


def fed(records: list[dict], **settings: object) -> Dashboard:
    dashboard = Dashboard(clock=FakeClock(), **settings)
    for record in records:
        dashboard.record(record)
    return dashboard


def through_json(export: dict) -> dict:
    """An export as another worker reads it back: serialized, parsed, checked."""
    return check_export(json.loads(json.dumps(export)))


@pytest.mark.parametrize("recent_limit", [500, 25])
def test_dashboards_merged_through_exports_equal_one_dashboard_fed_every_record(recent_limit):
    """Split between workers or fed to one: the same now counts, latency rows with percentiles, recent
    order and limit, for every viewer."""
    records = traffic()
    rng = random.Random(11)
    parts: list[list[dict]] = [[], [], []]
    for record in records:
        parts[rng.randrange(3)].append(record)
    assert all(parts)
    one = fed(records, recent_limit=recent_limit)
    first, second, third = (fed(part, recent_limit=recent_limit) for part in parts)
    exports = [through_json(dashboard.export(NOW)) for dashboard in (second, third)]
    for now in (NOW, NOW + 1, NOW + 45):
        for client in (None, "alice", "bob", "carol"):
            expected = one.snapshot(client=client, now=now)
            assert first.snapshot(client=client, now=now, others=exports) == expected, (now, client)
            # As the endpoint merges: an empty dashboard over every worker's export, its own included.
            merger = Dashboard(recent_limit=recent_limit)
            assert merger.snapshot(client=client, now=now, others=[first.export(now), *exports]) == expected
    everyone = one.snapshot(client=None, now=NOW)
    assert first.snapshot(client=None, now=NOW)["now"] != everyone["now"]  # a worker alone sees less
    assert everyone["now"]["requests_last_minute"] > 100 and everyone["now"]["errors_last_minute"] > 0
    assert len(everyone["latency"]) == 3 and all(row["ttft_p95"] is not None for row in everyone["latency"])
    assert len(everyone["recent"]) == min(recent_limit, len(records))
    assert [item["time"] for item in everyone["recent"]] == sorted((item["time"] for item in everyone["recent"]), reverse=True)


def test_an_export_holds_what_can_still_count_and_reuses_unchanged_series_rows():
    """Seconds and minutes past the windows are left out; a series row is the same list until its series
    counts another request; an export survives JSON unchanged."""
    dashboard = Dashboard(clock=FakeClock(), window_seconds=180)
    minute = int(MINUTE) // 60
    dashboard.record(entry(time=MINUTE - 60, request_id="old"))  # its second is past the last minute, its minute is not
    dashboard.record(entry(time=MINUTE - 121, request_id="older"))  # its minute is past the window too
    dashboard.record(entry(time=NOW, stream=True, ttft_ms=3.5))
    first = dashboard.export(NOW)
    assert [row[0] for row in first["counts"]] == [int(NOW)]
    assert sorted((row[0], row[4]) for row in first["series"]) == [(minute - 1, 1), (minute, 1)]
    assert [item["request_id"] for item in first["recent"]] == ["old", "older", "req_1"]  # oldest first
    assert through_json(first) == first and first["gauges"] == {}
    again = dashboard.export(NOW)
    assert len(again["series"]) == 2 and all(a is b for a, b in zip(first["series"], again["series"]))
    dashboard.record(entry(time=NOW, ms=7))
    changed = {row[0]: row for row in dashboard.export(NOW)["series"]}
    before = {row[0]: row for row in first["series"]}
    assert changed[minute - 1] is before[minute - 1]  # the earlier minute did not change
    assert changed[minute] is not before[minute] and changed[minute][4] == 2 and changed[minute][5] == [100.0, 7.0]


@pytest.mark.parametrize("bad", [
    None, [], {}, {"time": "now", "recent": [], "counts": [], "series": [], "gauges": {}},
    {"time": NOW, "recent": {}, "counts": [], "series": [], "gauges": {}},
    {"time": NOW, "recent": [{"client": "alice"}], "counts": [], "series": [], "gauges": {}},
    {"time": NOW, "recent": [], "counts": [[1, "alice", "openai", 1]], "series": [], "gauges": {}},
    {"time": NOW, "recent": [], "counts": [[1, "alice", "openai", -1, 0]], "series": [], "gauges": {}},
    {"time": NOW, "recent": [], "counts": [[1.5, "alice", "openai", 1, 0]], "series": [], "gauges": {}},
    {"time": NOW, "recent": [], "counts": [[1, 7, "openai", 1, 0]], "series": [], "gauges": {}},
    {"time": NOW, "recent": [], "counts": [[1, "alice", "openai", True, 0]], "series": [], "gauges": {}},
    {"time": NOW, "recent": [], "counts": [], "series": [[1, "alice", "openai", None, 1, [5.0], 0, []]], "gauges": {}},
    {"time": NOW, "recent": [], "counts": [], "series": [[1, "alice", "openai", "m", 1, ["5"], 0, []]], "gauges": {}},
    {"time": NOW, "recent": [], "counts": [], "series": [], "gauges": {"open_streams": "2"}},
    {"time": NOW, "recent": [], "counts": [], "series": []},
], ids=lambda bad: json.dumps(bad)[:60])
def test_a_malformed_export_is_refused(bad):
    """Anything not shaped as `export` writes it is a ValueError, never a crash later in `snapshot`."""
    with pytest.raises(ValueError):
        check_export(bad)


def test_a_record_read_back_keeps_the_listed_keys_cut_to_size():
    """Unknown keys go, strings are cut as `record` cuts them, values that are not plain become None."""
    kept = check_row("recent", {"time": NOW, "client": "a" * 500, "prompt": "secret", "ms": [1], "status": 200})
    assert tuple(kept) == RECORD_KEYS
    assert len(kept["client"]) == 200 and kept["ms"] is None and kept["status"] == 200 and "secret" not in json.dumps(kept)


def live_export(*request_ids: str, gauges: dict | None = None) -> dict:
    dashboard = Dashboard(clock=FakeClock())
    for request_id in request_ids:
        dashboard.record(entry(request_id=request_id))
    export = dashboard.export(NOW)
    export["gauges"] = gauges or {"open_streams": 1}
    return export


def test_the_reader_skips_its_own_stale_garbage_and_partial_files(tmp_path):
    """Only other pids' whole, well-formed files touched in the last LIVE_STALE_SECONDS are read."""
    now = time.time()
    fresh = live_export("req_fresh", gauges={"open_streams": 2, "pool_idle": 1})
    LiveFileWriter(str(tmp_path / "101.json")).write(fresh)
    LiveFileWriter(str(tmp_path / "102.json")).write(live_export("req_stale"))
    os.utime(tmp_path / "102.json", (now - LIVE_STALE_SECONDS - 1,) * 2)  # a dead worker's leftovers
    LiveFileWriter(str(tmp_path / "103.json")).write(live_export("req_own"))  # the reader's own
    whole = (tmp_path / "101.json").read_bytes()
    (tmp_path / "104.json").write_bytes(whole[: len(whole) // 2])  # cut short
    (tmp_path / "105.json").write_bytes(b"not json at all\n")
    (tmp_path / "106.json").write_bytes(whole.replace(b"req_fresh", b"req_\xff"))  # not ASCII
    (tmp_path / "107.json").write_bytes(whole.replace(b',"alice","openai","gpt-4.1",', b',7,"openai","gpt-4.1",'))  # not an export
    assert (tmp_path / "107.json").read_bytes() != whole
    (tmp_path / "108.json").write_bytes(b"")
    (tmp_path / "109.json.tmp").write_bytes(whole)  # a write in progress
    (tmp_path / "notes.json").write_bytes(whole)
    (tmp_path / "110.json").mkdir()  # unreadable
    reader = LiveFileReader(str(tmp_path), own_pid=103)
    (found,) = reader.read(now)
    assert found == through_json(fresh)
    assert LiveFileReader(str(tmp_path / "gone"), own_pid=1).read(now) == []


def test_the_writer_replaces_touches_and_removes_its_file_and_the_reader_reuses_rows(tmp_path):
    """A rewrite is read whole; a touch keeps the file fresh (and rewrites it if it went); rows read before
    are not parsed again; remove takes the file away."""
    path = str(tmp_path / "101.json")
    writer, reader = LiveFileWriter(path), LiveFileReader(str(tmp_path), own_pid=1)
    export = live_export("req_1", "req_2")
    writer.write(export)
    (first,) = reader.read(time.time())
    later = live_export("req_1", "req_2", "req_3")
    writer.write(later)
    (second,) = reader.read(time.time())
    assert [item["request_id"] for item in second["recent"]] == ["req_1", "req_2", "req_3"]
    assert second["recent"][0] is first["recent"][0]  # the same line: checked once
    os.utime(path, (time.time() - 60,) * 2)
    assert reader.read(time.time()) == []
    writer.touch()
    assert len(reader.read(time.time())) == 1
    os.remove(path)
    writer.touch()
    assert reader.read(time.time()) == [through_json(later)]
    writer.remove()
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

TEXT = PAGE.decode("utf-8")
HOOK_IDS = ("now-rps", "now-streams", "recent-count", "tokens-today-total", "login-form", "login-error", "logout",
            "recent-filter", "login-key")


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of each script and style element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._inside: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._inside = tag

    def handle_endtag(self, tag: str) -> None:
        self._inside = None

    def handle_data(self, data: str) -> None:
        if self._inside == "script":
            self.scripts.append(data)
        elif self._inside == "style":
            self.styles.append(data)


def parsed() -> Elements:
    parser = Elements()
    parser.feed(TEXT)
    parser.close()
    return parser


def test_page_is_one_html_document_with_inline_style_and_script():
    """One document, UTF-8 declared, one inline style and one inline script (no src)."""
    assert TEXT.startswith("<!doctype html>") and TEXT.rstrip().endswith("</html>")
    assert TEXT.count("<html") == 1 and TEXT.count("</html>") == 1
    elements = parsed()
    names = [tag for tag, _ in elements.tags]
    assert names.count("script") == 1 and names.count("style") == 1
    assert ("meta", {"charset": "utf-8"}) in elements.tags
    assert all("src" not in attrs for tag, attrs in elements.tags if tag == "script")
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in elements.tags


def test_page_names_nothing_outside_itself():
    """No src, href or action leaves the gateway; no @import, no url() but data:; the only absolute URL is SVG's namespace."""
    for tag, attrs in parsed().tags:
        for name in ("src", "href", "action", "formaction", "poster", "data"):
            value = (attrs.get(name) or "").strip()
            assert not re.match(r"(?i)([a-z][a-z0-9+.-]*:)?//", value), (tag, name, value)
            assert not value or value.startswith(("/dashboard", "data:")), (tag, name, value)
    assert not re.search(r"""(?i)\b(src|href|action)\s*=\s*["']?\s*(https?:)?//""", TEXT)
    assert "@import" not in TEXT
    assert all(target.startswith("data:") for target in re.findall(r"url\(\s*['\"]?([^'\")]*)", TEXT))
    assert set(re.findall(r"(?i)\b(?:https?|wss?|ftp):[^\s'\"<>)]*", TEXT)) == {"http://www.w3.org/2000/svg"}


def test_page_script_needs_no_eval_and_stores_nothing():
    """No eval, Function, string timers or inline handlers (the CSP allows none); no storage, no cookies read."""
    script = "".join(parsed().scripts)
    for forbidden in ("eval(", "new Function", "Function(", "localStorage", "sessionStorage", "document.cookie",
                      "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "javascript:", "import("):
        assert forbidden not in TEXT, forbidden
    assert not re.search(r"set(Timeout|Interval)\(\s*['\"`]", script)
    for tag, attrs in parsed().tags:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
    assert set(re.findall(r"fetch\(\s*'([^']*)'", script)) == {"/dashboard/data", "/dashboard/login", "/dashboard/logout"}
    assert len(re.findall(r"\bfetch\(", script)) == 3


def test_page_has_the_hooks_tests_and_the_login_rely_on():
    """The ids exist once each; the key input is a password with no name, so no form submission carries it."""
    ids = [attrs.get("id") for _, attrs in parsed().tags if attrs.get("id")]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for hook in HOOK_IDS:
        assert hook in ids, hook
    key_input = next(attrs for tag, attrs in parsed().tags if attrs.get("id") == "login-key")
    assert key_input["type"] == "password" and "name" not in key_input
    assert all("name" not in attrs for tag, attrs in parsed().tags if tag == "input")
    assert "data-request-id" in TEXT and "invalid key" in TEXT and "usage ledger off (USAGE_DB=off)" in TEXT
    assert "prefers-color-scheme: dark" in TEXT


@pytest.mark.skipif(shutil.which("node") is None, reason="node not found: the page's script is not syntax-checked")
def test_page_script_parses(tmp_path):
    """node --check accepts the inline script."""
    script = tmp_path / "dashboard.js"
    script.write_text("".join(parsed().scripts))
    result = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
