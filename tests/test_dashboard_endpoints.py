"""The dashboard's HTTP side: the page's headers, the data endpoint's shape, sessions, and no secret or
prompt text in anything it serves. (The page in a real browser: tests/test_dashboard_browser.py.)"""

from __future__ import annotations

import dataclasses
import json
import os
import time

from fake_upstream import FakeUpstream, Received, Reply, RunningProxy, completion, text_stream
from loopback import eventually, request

from server.dashboard import Dashboard
from server.dashboard_endpoints import LIVE_STALE_SECONDS, LiveFileWriter

PROMPT_TEXT = "PROMPT-TEXT-7f3a9 what is the launch code"
COMPLETION_TEXT = "COMPLETION-TEXT-c41d the code is 0000"
SECRETS = ("sk-upstream-secret-1", "sk-alice-secret-2", "sk-bob-secret-3", "sk-admin-secret-4")


def answer(received: Received) -> Reply:
    if received.json().get("stream"):
        return Reply.sse(text_stream([COMPLETION_TEXT], prompt_tokens=30, completion_tokens=5))
    return Reply.json(completion(COMPLETION_TEXT, prompt_tokens=30, completion_tokens=5))


def env(upstream: FakeUpstream, tmp_path, **extra: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": SECRETS[0], "OPENAI_BASE_URL": upstream.url + "/v1", "PREFERRED_PROVIDER": "openai",
            "PROXY_API_KEY": f"alice:{SECRETS[1]},bob:{SECRETS[2]}", "ADMIN_API_KEY": SECRETS[3],
            "USAGE_DB": str(tmp_path / "usage.db"), **extra}


def ask(proxy: RunningProxy, key: str, stream: bool = False) -> None:
    body = {"model": "gpt-4.1", "max_tokens": 16, "stream": stream, "messages": [{"role": "user", "content": PROMPT_TEXT}]}
    assert request(proxy, "POST", "/v1/messages", body, {"x-api-key": key}).status == 200


def login(proxy: RunningProxy, key: str) -> str:
    answered = request(proxy, "POST", "/dashboard/login", {"key": key})
    assert answered.status == 204, answered.body
    return answered.headers["set-cookie"].split(";")[0]


def data(proxy: RunningProxy, cookie: str | None = None) -> dict:
    answered = request(proxy, "GET", "/dashboard/data", headers={"cookie": cookie} if cookie else None)
    assert answered.status == 200, answered.body
    return answered.json()


def test_the_page_is_one_document_under_a_strict_policy(tmp_path):
    with FakeUpstream(answer) as upstream, RunningProxy(env(upstream, tmp_path)) as proxy:
        page = request(proxy, "GET", "/dashboard")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert b"<html" in page.raw and b"https://" not in page.raw.split(b"</head>")[0]


def test_without_keys_on_loopback_the_data_just_opens():
    with FakeUpstream(answer) as upstream, RunningProxy({"OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": upstream.url + "/v1"}) as proxy:
        seen = data(proxy)
    assert seen["viewer"] == {"client": "default", "admin": True} and seen["sessions"] is False
    assert seen["worker"] == {"pid": os.getpid(), "of": 1, "merged": 1}
    assert seen["tokens"] == {"ledger": False, "today": [], "week": []}  # the tests' proxies run without a ledger


def test_a_session_cookie_is_set_only_for_a_real_key_and_holds_no_key(tmp_path):
    with FakeUpstream(answer) as upstream, RunningProxy(env(upstream, tmp_path)) as proxy:
        assert request(proxy, "GET", "/dashboard/data").status == 401
        assert request(proxy, "POST", "/dashboard/login", {"key": "sk-wrong"}).status == 401
        form = request(proxy, "POST", "/dashboard/login", b"key=" + SECRETS[1].encode(),
                       {"content-type": "application/x-www-form-urlencoded"})
        assert form.status == 400  # a cross-site form cannot log anyone in
        answered = request(proxy, "POST", "/dashboard/login", {"key": SECRETS[1]})
        cookie_line = answered.headers["set-cookie"]
        cookie = cookie_line.split(";")[0]
        assert {"HttpOnly", "SameSite=Strict", "Path=/dashboard"} <= {part.strip() for part in cookie_line.split(";")}
        assert all(secret not in cookie_line for secret in SECRETS)
        assert data(proxy, cookie)["viewer"] == {"client": "alice", "admin": False}
        client, admin, expiry, mac = cookie.split("=", 1)[1].rsplit(".", 3)
        forged = f"switchboard_session={client}.1.{expiry}.{mac}"  # claims admin
        later = f"switchboard_session={client}.{admin}.{int(expiry) + 3600}.{mac}"  # extends itself
        expired_at = str(int(time.time()) - 1)
        assert request(proxy, "GET", "/dashboard/data", headers={"cookie": forged}).status == 401
        assert request(proxy, "GET", "/dashboard/data", headers={"cookie": later}).status == 401
        assert request(proxy, "GET", "/dashboard/data",
                       headers={"cookie": f"switchboard_session={client}.{admin}.{expired_at}.{mac}"}).status == 401
        behind_tls = request(proxy, "POST", "/dashboard/login", {"key": SECRETS[1]}, {"x-forwarded-proto": "https"})
        assert "Secure" in behind_tls.headers["set-cookie"] and "Secure" not in cookie_line
        logout = request(proxy, "POST", "/dashboard/logout", {})
        assert logout.status == 204 and "Max-Age=0" in logout.headers["set-cookie"]
        # curl: the key in its usual header works too.
        assert request(proxy, "GET", "/dashboard/data", headers={"x-api-key": SECRETS[3]}).json()["viewer"]["admin"] is True


def test_named_clients_see_their_own_requests_and_admins_all(tmp_path):
    with FakeUpstream(answer) as upstream, RunningProxy(env(upstream, tmp_path)) as proxy:
        for _ in range(3):
            ask(proxy, SECRETS[1])
        ask(proxy, SECRETS[2], stream=True)
        alice, admin = login(proxy, SECRETS[1]), login(proxy, SECRETS[3])
        assert eventually(lambda: data(proxy, admin)["tokens"]["today"], timeout=5)  # the ledger flushed
        as_alice, as_admin = data(proxy, alice), data(proxy, admin)
    assert [row["client"] for row in as_alice["recent"]] == ["alice"] * 3
    assert sorted(row["client"] for row in as_admin["recent"]) == ["alice", "alice", "alice", "bob"]
    assert {row["client"] for row in as_alice["tokens"]["today"]} == {"alice"}
    assert {row["client"]: row["requests"] for row in as_admin["tokens"]["today"]} == {"alice": 3, "bob": 1}
    newest = as_admin["recent"][0]
    assert (newest["client"], newest["front"], newest["status"], newest["stream"]) == ("bob", "anthropic", 200, True)
    assert (newest["input_tokens"], newest["output_tokens"]) == (30, 5)
    assert newest["ttft_ms"] is not None and newest["ms"] >= newest["ttft_ms"]
    assert as_admin["now"]["requests_last_minute"] == 4 and as_alice["now"]["requests_last_minute"] == 3
    (row,) = [row for row in as_admin["latency"] if row["model"] == "gpt-4.1"]
    assert row["count"] == 4 and row["total_p50"] is not None
    assert as_admin["providers"][0]["name"] == "openai" and "routes" in as_admin


def test_no_secret_and_no_prompt_or_completion_text_in_anything_served(tmp_path):
    with FakeUpstream(answer) as upstream, RunningProxy(env(upstream, tmp_path, OPENAI_API_KEY=",".join(SECRETS[:1] + ("sk-upstream-second-5",)))) as proxy:
        ask(proxy, SECRETS[1])
        ask(proxy, SECRETS[2], stream=True)
        admin = login(proxy, SECRETS[3])
        assert eventually(lambda: data(proxy, admin)["tokens"]["today"], timeout=5)
        served = json.dumps(data(proxy, admin)) + request(proxy, "GET", "/dashboard").raw.decode()
    for secret in (*SECRETS, "sk-upstream-second-5", PROMPT_TEXT, COMPLETION_TEXT, "launch code"):
        assert secret not in served
    assert "key-" in served  # the upstream keys, by fingerprint


def test_errors_are_listed_with_their_message(tmp_path):
    def refusing(received: Received) -> Reply:
        return Reply.json({"error": {"message": "model gpt-nope does not exist", "type": "invalid_request_error"}}, status=404)

    with FakeUpstream(refusing) as upstream, RunningProxy(env(upstream, tmp_path)) as proxy:
        request(proxy, "POST", "/v1/messages", {"model": "gpt-nope", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]},
                {"x-api-key": SECRETS[1]})
        (row,) = data(proxy, login(proxy, SECRETS[1]))["recent"]
    assert row["status"] == 404 and "does not exist" in row["error"]


def test_dashboard_off_removes_the_routes(tmp_path):
    with FakeUpstream(answer) as upstream, RunningProxy(env(upstream, tmp_path, DASHBOARD="off")) as proxy:
        assert request(proxy, "GET", "/dashboard").status == 404
        assert request(proxy, "GET", "/dashboard/data", headers={"x-api-key": SECRETS[3]}).status == 404


def test_with_a_share_directory_a_worker_publishes_its_numbers_and_merges_the_others(tmp_path):
    """The worker writes <pid>.json; another worker's fresh file is counted (its gauges summed, each
    client still seeing its own rows), a stale one is not; the worker's file goes when it stops."""
    share = tmp_path / "live"
    share.mkdir(mode=0o700)
    other = Dashboard()
    for index in range(2):
        other.record({"time": time.time(), "client": "bob", "provider": "openai", "upstream": "openai/gpt-4.1",
                      "status": 200, "ms": 50.0 + index, "request_id": f"req_other_{index}"})
    export = other.export()
    export["gauges"] = {"open_streams": 2, "queue_waits": 1, "pool_idle": 3, "pool_active": 4}
    other_file = share / "999999999.json"  # no process of this test has that pid
    with FakeUpstream(answer) as upstream:
        proxy = RunningProxy(env(upstream, tmp_path, WORKERS="2"))
        proxy.config = dataclasses.replace(proxy.config, live_share_dir=str(share))
        with proxy:
            own_file = share / f"{os.getpid()}.json"
            assert eventually(own_file.exists, timeout=5)
            ask(proxy, SECRETS[1])
            LiveFileWriter(str(other_file)).write(export)
            admin, alice = login(proxy, SECRETS[3]), login(proxy, SECRETS[1])
            merged, as_alice = data(proxy, admin), data(proxy, alice)
            assert eventually(lambda: '"req_' in own_file.read_text(), timeout=5)  # its own record, published
            os.utime(other_file, (time.time() - LIVE_STALE_SECONDS - 1,) * 2)
            alone = data(proxy, admin)
    assert merged["worker"] == {"pid": os.getpid(), "of": 2, "merged": 2}
    assert merged["now"]["requests_last_minute"] == 3
    # Newest first, whichever worker had it: alice asked after the other worker's two were recorded.
    assert [row["client"] for row in merged["recent"]] == ["alice", "bob", "bob"]
    assert [row["request_id"] for row in merged["recent"][1:]] == ["req_other_1", "req_other_0"]
    assert merged["now"]["open_streams"] == 2 and merged["now"]["queue_waits"] == 1
    assert merged["now"]["pool"]["idle"] >= 3 and merged["now"]["pool"]["active"] >= 4
    (row,) = [row for row in merged["latency"] if row["model"] == "gpt-4.1"]
    assert row["count"] == 3
    assert [item["client"] for item in as_alice["recent"]] == ["alice"] and as_alice["now"]["requests_last_minute"] == 1
    assert alone["worker"]["merged"] == 1 and alone["now"]["requests_last_minute"] == 1
    assert not own_file.exists() and other_file.exists()


def test_the_banner_says_where_the_dashboard_is_unless_it_is_off():
    from server.config import Config
    from server.gateway import Gateway
    from server.listener import banner

    on, off = Config.from_env({}), Config.from_env({"DASHBOARD": "off"})
    assert "dashboard: http://127.0.0.1:8082/dashboard" in str(banner(on, Gateway(on), 8082))
    assert "dashboard" not in str(banner(off, Gateway(off), 8082))
