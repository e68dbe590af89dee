"""--workers N and the dashboard: every worker's live numbers, whichever worker answers the page.

Real processes: `proxy.py --workers 2` with the kernel spreading fresh connections over the workers.
The supervisor's share directory lands in a TMPDIR under the test's own directory, so the test
finds it (and sees it go) without looking at anything else in the machine's temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fake_upstream import FakeUpstream, Received, Reply, completion
from loopback import eventually, free_port, request, wait_until_healthy
from test_config import ROOT

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="--workers needs fork()")

REQUESTS = 20


def answer(received: Received) -> Reply:
    return Reply.json(completion("Hello", prompt_tokens=11, completion_tokens=7))


def spawn(tmp_path: Path, port: int, upstream: FakeUpstream) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PROXY_", "ANTHROPIC_", "ADMIN_", "USAGE_"))}
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    settings = dict(clean, SHUTDOWN_GRACE="2", OPENAI_API_KEY="sk-up", OPENAI_BASE_URL=upstream.url + "/v1",
                    PREFERRED_PROVIDER="openai", USAGE_DB=str(tmp_path / "usage.db"), TMPDIR=str(temporary))
    with open(tmp_path / "stderr.log", "w") as log:  # a file, not a pipe: nobody reads it while it runs
        return subprocess.Popen([sys.executable, str(ROOT / "proxy.py"), "--port", str(port), "--workers", "2"],
                                env=settings, cwd=tmp_path, stderr=log, start_new_session=True)


def share_dirs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "tmp").glob("switchboard-live-*"))


def worker_pids(port: int, attempts: int = 40) -> set[int]:
    """The pids that answer /health over fresh connections (the kernel spreads them)."""
    pids = set()
    for _ in range(attempts):
        with contextlib.suppress(OSError):  # a connection queued on a worker as it was killed
            pids.add(request(port, "GET", "/health", timeout=5).json()["pid"])
    return pids


def dashboard_data(port: int) -> dict | None:
    try:
        answered = request(port, "GET", "/dashboard/data", timeout=5)
    except OSError:
        return None
    assert answered.status == 200, answered.body
    return answered.json()


def records_per_worker(share: Path) -> dict[int, int]:
    """The records each worker's file holds (a line that is an object, after the head line)."""
    counts = {}
    for path in share.glob("*.json"):
        with contextlib.suppress(OSError):
            lines = path.read_text().splitlines()[1:]
            counts[int(path.name.split(".")[0])] = sum(line.startswith("{") for line in lines)
    return counts


def answers_from_every_worker(port: int, workers: set[int], attempts: int = 80) -> dict[int, list[dict]]:
    """/dashboard/data over fresh connections until each of `workers` has answered (or attempts run out)."""
    seen: dict[int, list[dict]] = {}
    for _ in range(attempts):
        data = dashboard_data(port)
        if data is not None:
            seen.setdefault(data["worker"]["pid"], []).append(data)
        if set(seen) >= workers and sum(map(len, seen.values())) >= 6:
            break
    return seen


def test_every_worker_answers_the_dashboard_with_the_numbers_of_all_workers(tmp_path):
    """20 requests spread over 2 workers: every answer counts all 20 and lists them; a killed worker's
    numbers leave with it; SIGTERM stops everything with exit 0 and removes the share directory."""
    port = free_port()
    body = {"model": "gpt-4.1", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}
    with FakeUpstream(answer) as upstream:
        process = spawn(tmp_path, port, upstream)
        try:
            wait_until_healthy(port, process=process)
            (share,) = share_dirs(tmp_path)
            assert stat.S_IMODE(share.stat().st_mode) == 0o700
            assert eventually(lambda: len(worker_pids(port)) == 2), "both workers answer"
            workers = worker_pids(port)

            request_ids = set()
            for _ in range(REQUESTS):  # each on a fresh connection: the kernel spreads them
                answered = request(port, "POST", "/v1/messages", body)
                assert answered.status == 200, answered.body
                request_ids.add(answered.headers["request-id"])
            assert eventually(lambda: sum(records_per_worker(share).values()) == REQUESTS, timeout=5)
            per_worker = records_per_worker(share)
            assert set(per_worker) == workers and all(per_worker.values()), per_worker  # both served some

            def complete(data: dict | None) -> bool:
                return (data is not None and data["worker"]["merged"] == 2 and data["now"]["requests_last_minute"] == REQUESTS
                        and {row["request_id"] for row in data["recent"]} == request_ids)

            assert eventually(lambda: complete(dashboard_data(port)), timeout=5)
            answers = answers_from_every_worker(port, workers)
            assert set(answers) == workers
            for data in (data for pid_answers in answers.values() for data in pid_answers):
                assert complete(data), (data["worker"], data["now"])
                assert data["worker"]["of"] == 2 and len(data["recent"]) == REQUESTS
                assert [row["time"] for row in data["recent"]] == sorted((row["time"] for row in data["recent"]), reverse=True)
                (row,) = [row for row in data["latency"] if row["model"] == "gpt-4.1"]
                assert row["count"] == REQUESTS and row["total_p50"] is not None

            # A worker killed outright: the supervisor removes its file, its replacement publishes, and the
            # live numbers are the survivor's (in-memory numbers die with their process).
            victim = min(workers)
            survivor_records = per_worker[max(workers)]
            os.kill(victim, signal.SIGKILL)
            assert eventually(lambda: not (share / f"{victim}.json").exists(), timeout=5)

            def after_the_crash(data: dict | None) -> bool:
                return (data is not None and data["worker"]["pid"] != victim and data["worker"]["merged"] == 2
                        and data["now"]["requests_last_minute"] == survivor_records and len(data["recent"]) == survivor_records)

            assert eventually(lambda: after_the_crash(dashboard_data(port)), timeout=10)
            assert len(list(share.glob("*.json"))) == 2

            process.send_signal(signal.SIGTERM)
            assert process.wait(15) == 0
            assert share_dirs(tmp_path) == []
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)  # the supervisor and its workers
    stderr = (tmp_path / "stderr.log").read_text()
    assert "starting 2 workers" in stderr and "Traceback" not in stderr
