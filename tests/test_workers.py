"""--workers N: processes sharing the port, restarted when they die, all stopped on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import pytest

from loopback import eventually, free_port, request, wait_until_healthy
from test_config import ROOT

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="--workers needs fork()")


def health(port: int) -> dict:
    return request(port, "GET", "/health", timeout=5).json()


def worker_pids(port: int, attempts: int = 60) -> set[int]:
    """The pids that answer /health over many fresh connections (the kernel spreads them).

    A connection queued on a worker at the moment it is killed is reset: that one is skipped.
    """
    pids = set()
    for _ in range(attempts):
        try:
            pids.add(health(port)["pid"])
        except OSError:
            continue
    return pids


def test_workers_share_the_port_restart_when_killed_and_stop_on_sigterm(tmp_path):
    """Two workers answer on one port; a killed worker is replaced; SIGTERM stops everything with exit 0."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PROXY_", "ANTHROPIC_"))}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "proxy.py"), "--port", str(port), "--workers", "2"],
        env=dict(clean, SHUTDOWN_GRACE="2"), cwd=tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        wait_until_healthy(port)
        assert eventually(lambda: len(worker_pids(port)) == 2), "both workers answer"
        first = worker_pids(port)
        assert process.pid not in first
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        assert eventually(lambda: len(pids := worker_pids(port)) == 2 and victim not in pids), "the dead worker is replaced"
        replaced = worker_pids(port)
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        assert worker_pids_alive(first | replaced) == []
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the supervisor and its workers
    stderr = process.stderr.read()
    assert "starting 2 workers" in stderr and "restarting it" in stderr


def worker_pids_alive(pids: set[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive


def test_workers_leave_when_their_supervisor_is_killed_outright(tmp_path):
    """SIGKILL on the supervisor: its workers notice within seconds and exit instead of lingering, and the
    last one out removes the dashboard's share directory the supervisor can no longer remove."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PROXY_", "ANTHROPIC_"))}
    temporary = tmp_path / "tmp"  # where the supervisor makes the share directory
    temporary.mkdir()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "proxy.py"), "--port", str(port), "--workers", "2"],
        env=dict(clean, SHUTDOWN_GRACE="1", TMPDIR=str(temporary)), cwd=tmp_path, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_healthy(port)
        assert len(list(temporary.glob("switchboard-live-*"))) == 1
        assert eventually(lambda: len(worker_pids(port)) == 2)
        workers = worker_pids(port)
        process.kill()
        process.wait(5)
        assert eventually(lambda: worker_pids_alive(workers) == [], timeout=8)
        assert list(temporary.glob("switchboard-live-*")) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
