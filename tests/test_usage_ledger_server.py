"""The usage ledger through the server: named clients, every front, restarts, workers, kill -9, budgets.

The ledger module itself is tested in tests/test_ledger.py; here the totals are checked against the
requests actually made through the gateway.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import anthropic
import openai
import pytest

from fake_upstream import FakeUpstream, Received, Reply, RunningProxy, completion, text_stream
from loopback import eventually, free_port, request, wait_until_healthy
from server.ledger import query
from test_config import ROOT

PROMPT, COMPLETION = 11, 7  # what the fake upstream reports for every answer
TODAY = time.strftime("%Y-%m-%d", time.gmtime())
KEYS = "alice:sk-alice-1,bob:sk-bob-2"


def answer(received: Received) -> Reply:
    body = received.json()
    if body.get("stream"):
        return Reply.sse(text_stream(["Hel", "lo"], prompt_tokens=PROMPT, completion_tokens=COMPLETION))
    return Reply.json(completion("Hello", prompt_tokens=PROMPT, completion_tokens=COMPLETION))


def env(upstream: FakeUpstream, db, **extra: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-up", "OPENAI_BASE_URL": upstream.url + "/v1", "PREFERRED_PROVIDER": "openai",
            "PROXY_API_KEY": KEYS, "ADMIN_API_KEY": "sk-admin-9", "USAGE_DB": str(db), **extra}


def one_of_each(url: str, key: str) -> int:
    """A streamed and a whole request on each front; returns how many were made."""
    claude = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, timeout=10)
    gpt = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=10)
    ask = [{"role": "user", "content": "Hi"}]
    claude.messages.create(model="gpt-4.1", max_tokens=16, messages=ask)
    with claude.messages.stream(model="gpt-4.1", max_tokens=16, messages=ask) as events:
        events.get_final_message()
    gpt.chat.completions.create(model="gpt-4.1", messages=ask)
    list(gpt.chat.completions.create(model="gpt-4.1", messages=ask, stream=True, stream_options={"include_usage": True}))
    gpt.responses.create(model="gpt-4.1", input="Hi")
    with gpt.responses.stream(model="gpt-4.1", input="Hi") as events:
        events.get_final_response()
    return 6


def usage(proxy: RunningProxy, key: str, query_string: str = "since=today&group_by=client") -> dict:
    answered = request(proxy, "GET", f"/v1/usage?{query_string}", headers={"x-api-key": key})
    assert answered.status == 200, answered.body
    return answered.json()


def test_totals_match_the_requests_made_on_every_front_stream_or_not(tmp_path):
    db = tmp_path / "usage.db"
    with FakeUpstream(answer) as upstream, RunningProxy(env(upstream, db)) as proxy:
        made = one_of_each(proxy.url, "sk-alice-1") + one_of_each(proxy.url, "sk-bob-2")
        everyone = usage(proxy, "sk-admin-9", "since=today&group_by=client,front")
        alice_alone = usage(proxy, "sk-alice-1", "since=1d&group_by=client,model")
    rows = {(row["client"], row["front"]): row for row in everyone["data"]}
    assert set(rows) == {(client, front) for client in ("alice", "bob") for front in ("anthropic", "chat", "responses")}
    for row in rows.values():
        assert (row["requests"], row["errors"]) == (2, 0)
        assert row["input_tokens"] == 2 * PROMPT and row["output_tokens"] == 2 * COMPLETION
    assert sum(row["requests"] for row in rows.values()) == made == 12
    # A named client sees only its own rows, whatever it asks for.
    assert [(row["client"], row["model"], row["requests"]) for row in alice_alone["data"]] == [("alice", "gpt-4.1", 6)]


def test_a_named_client_cannot_read_another_clients_rows(tmp_path):
    with FakeUpstream(answer) as upstream, RunningProxy(env(upstream, tmp_path / "usage.db")) as proxy:
        one_of_each(proxy.url, "sk-bob-2")
        asked = usage(proxy, "sk-alice-1", "since=today&group_by=client&client=bob")
        admin = usage(proxy, "sk-admin-9", "since=today&group_by=client&client=bob")
        bad = request(proxy, "GET", "/v1/usage?group_by=prompt", headers={"x-api-key": "sk-admin-9"})
        anonymous = request(proxy, "GET", "/v1/usage")
    assert asked["data"] == [] and asked["client"] == "alice"
    assert [(row["client"], row["requests"]) for row in admin["data"]] == [("bob", 6)]
    assert bad.status == 400 and "group by" in bad.json()["error"]["message"]
    assert anonymous.status == 401


def test_errors_are_counted_and_the_ledger_survives_a_restart(tmp_path):
    db = tmp_path / "usage.db"

    def failing(received: Received) -> Reply:
        return Reply.json({"error": {"message": "bad"}}, status=400)

    with FakeUpstream(answer) as upstream, RunningProxy(env(upstream, db)) as proxy:
        one_of_each(proxy.url, "sk-alice-1")
    with FakeUpstream(failing) as upstream, RunningProxy(env(upstream, db)) as proxy:
        request(proxy, "POST", "/v1/messages", {"model": "gpt-4.1", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]},
                {"x-api-key": "sk-alice-1"})
        rows = usage(proxy, "sk-admin-9")["data"]
    assert [(row["client"], row["requests"], row["errors"]) for row in rows] == [("alice", 7, 1)]


def test_the_terminal_table_reads_the_file(tmp_path):
    db = tmp_path / "usage.db"
    with FakeUpstream(answer) as upstream, RunningProxy(env(upstream, db)) as proxy:
        one_of_each(proxy.url, "sk-alice-1")
    printed = subprocess.run([sys.executable, str(ROOT / "proxy.py"), "usage", "--since", "7d", "--group-by", "client,model",
                              "--json", str(db)], capture_output=True, text=True, timeout=30)
    assert printed.returncode == 0, printed.stderr
    rows = json.loads(printed.stdout)
    assert [(row["client"], row["model"], row["requests"]) for row in rows] == [("alice", "gpt-4.1", 6)]
    table = subprocess.run([sys.executable, str(ROOT / "proxy.py"), "usage", str(db)], capture_output=True, text=True,
                           timeout=30)
    assert table.returncode == 0 and "alice" in table.stdout and "total" in table.stdout


def test_a_daily_budget_answers_429_in_the_clients_dialect_once_spent(tmp_path):
    budget = str(2 * (PROMPT + COMPLETION))  # two requests' worth
    with FakeUpstream(answer) as upstream, RunningProxy(env(upstream, tmp_path / "usage.db",
                                                            CLIENT_DAILY_TOKEN_LIMIT=f"alice={budget}")) as proxy:
        ask = {"model": "gpt-4.1", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}
        statuses = [request(proxy, "POST", "/v1/messages", ask, {"x-api-key": "sk-alice-1"}).status for _ in range(2)]
        refused = request(proxy, "POST", "/v1/messages", ask, {"x-api-key": "sk-alice-1"})
        chat = request(proxy, "POST", "/v1/chat/completions", {"model": "gpt-4.1", "messages": [{"role": "user", "content": "x"}]},
                       {"x-api-key": "sk-alice-1"})
        bob = request(proxy, "POST", "/v1/messages", ask, {"x-api-key": "sk-bob-2"})
    assert statuses == [200, 200]
    assert refused.status == 429 and refused.json()["error"]["type"] == "rate_limit_error"
    message = refused.json()["error"]["message"]
    assert "'alice'" in message and "budget" in message and "00:00 UTC" in message
    assert 0 < int(refused.headers["retry-after"]) <= 86401
    assert chat.status == 429 and chat.json()["error"]["code"] == "daily_token_budget_exceeded"
    assert bob.status == 200  # only alice's budget is set
    assert len(upstream.requests) == 3


# ---------------------------------------------------------------------------------------------
# Real processes: workers, kill -9, a bad file at start
# ---------------------------------------------------------------------------------------------


def spawn(tmp_path, port: int, upstream: FakeUpstream, db, *args: str) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PROXY_", "ANTHROPIC_", "USAGE_"))}
    settings = dict(clean, SHUTDOWN_GRACE="2", OPENAI_API_KEY="sk-up", OPENAI_BASE_URL=upstream.url + "/v1",
                    PREFERRED_PROVIDER="openai", PROXY_API_KEY=KEYS, USAGE_DB=str(db))
    return subprocess.Popen([sys.executable, str(ROOT / "proxy.py"), "--port", str(port), *args], env=settings,
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True)


def ask(port: int, key: str, times: int) -> None:
    body = {"model": "gpt-4.1", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}
    for _ in range(times):
        assert request(port, "POST", "/v1/messages", body, {"x-api-key": key}).status == 200


def requests_in(db) -> dict[str, int]:
    return {row["client"]: row["requests"] for row in query([str(db)], since=TODAY, group_by=("client",))}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="--workers needs fork()")
def test_two_workers_share_one_ledger_file(tmp_path):
    db, port = tmp_path / "usage.db", free_port()
    with FakeUpstream(answer) as upstream:
        process = spawn(tmp_path, port, upstream, db, "--workers", "2")
        try:
            wait_until_healthy(port, process=process)
            ask(port, "sk-alice-1", 20)
            ask(port, "sk-bob-2", 10)
            process.send_signal(signal.SIGTERM)
            assert process.wait(15) == 0
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert requests_in(db) == {"alice": 20, "bob": 10}


def test_kill_9_loses_at_most_the_last_flush_interval(tmp_path):
    """Promised: a kill -9 loses at most what came in the last second (the flush interval)."""
    db, port = tmp_path / "usage.db", free_port()
    with FakeUpstream(answer) as upstream:
        process = spawn(tmp_path, port, upstream, db)
        try:
            wait_until_healthy(port, process=process)
            ask(port, "sk-alice-1", 5)
            time.sleep(1.6)  # past one flush interval: these five are on disk
            ask(port, "sk-bob-2", 3)  # within the window: may be lost
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    counted = requests_in(db)
    assert counted.get("alice") == 5
    assert counted.get("bob", 0) in (0, 3)  # a flush is one transaction: all three or none


@pytest.mark.parametrize("contents", [b"this is not a database, just text" * 100, None], ids=["corrupt", "unwritable"])
def test_an_unusable_explicit_ledger_stops_the_start_naming_usage_db(tmp_path, contents):
    if contents is None:
        (tmp_path / "afile").write_text("x")
        db = tmp_path / "afile" / "usage.db"  # under a regular file: unwritable even for root
    else:
        db = tmp_path / "usage.db"
        db.write_bytes(contents)
    with FakeUpstream(answer) as upstream:
        process = spawn(tmp_path, free_port(), upstream, db)
        code = process.wait(15)
    assert code == 2
    assert "USAGE_DB" in process.stderr.read()


def test_a_locked_ledger_never_fails_a_request(tmp_path):
    """Another process holds the file's write lock: requests are answered, the sums wait, nothing is lost."""
    db = tmp_path / "usage.db"
    with FakeUpstream(answer) as upstream, RunningProxy(env(upstream, db)) as proxy:
        holder = sqlite3.connect(db, timeout=0.1)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            ask(proxy.port, "sk-alice-1", 3)
            time.sleep(1.2)  # a flush fails (after its busy timeout) and keeps the sums
        finally:
            holder.rollback()
            holder.close()
        assert eventually(lambda: requests_in(db).get("alice") == 3, timeout=10)


def test_budgets_without_a_usable_default_ledger_are_reported_loudly(tmp_path, caplog, monkeypatch):
    """The default ledger file cannot be written (the working directory is not writable): the gateway
    starts, and says at ERROR that the budgets it was given cannot be enforced."""
    import logging

    (tmp_path / "afile").write_text("x")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("server.ledger.DEFAULT_PATH", str(tmp_path / "afile" / "usage.db"))
    caplog.set_level(logging.WARNING)
    with FakeUpstream(answer) as upstream, RunningProxy({
        "OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": upstream.url + "/v1", "CLIENT_DAILY_TOKEN_LIMIT": "1000",
        "USAGE_DB": "",  # blank is unset: the default file (RunningProxy turns the ledger off otherwise)
    }) as proxy:
        assert request(proxy, "GET", "/health").status == 200
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert any("budgets are not enforced" in message for message in errors), caplog.text
