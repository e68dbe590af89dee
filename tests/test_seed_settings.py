"""The seeds' settings and current Claude Code's expectations, through a running server.

People migrating from the seed proxies (../shared/seeds) copy their `.env`: each one starts
switchboard and works as that seed's README describes. And Claude Code 2.1.3xx probes
`/api/hello`, offers two credentials at once and picks models from `/v1/models`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time

import pytest

from fake_upstream import FakeUpstream, Reply, RunningProxy, completion
from loopback import request
from server.config import Config, ConfigError, parse_env_file
from server.connection import status_line
from server.gateway import Gateway
from server.listener import banner
from server.logs import DailyFileHandler

COUNT_BODY = {"model": "claude-sonnet-5-5", "messages": [{"role": "user", "content": "hi"}]}


def anthropic_message(text: str = "ok", model: str = "claude-sonnet-5-5") -> dict:
    return {
        "id": "msg_1", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }


# ---------------------------------------------------------------------------------------------
# What Claude Code probes and reads
# ---------------------------------------------------------------------------------------------


def test_api_hello_answers_head_and_get_without_a_key():
    """Claude Code sends HEAD /api/hello before a session, with no key; it must not be a 404 or 401."""
    with RunningProxy({"PROXY_API_KEY": "inbound"}) as proxy:
        assert request(proxy, "HEAD", "/api/hello").status == 200
        answer = request(proxy, "GET", "/api/hello")
    assert answer.status == 200 and answer.body == {"message": "hello"}


def raw_status_line(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        received = b""
        while b"\r\n" not in received:
            data = sock.recv(4096)
            if not data:
                break
            received += data
    return received.split(b"\r\n", 1)[0]


def test_every_response_carries_a_reason_phrase():
    """`HTTP/1.1 404 Not Found`, not `HTTP/1.1 404 `: errors, successes and early refusals alike."""
    with RunningProxy({"PROXY_API_KEY": "inbound"}) as proxy:
        assert raw_status_line(proxy.port, b"GET /nope HTTP/1.1\r\nhost: x\r\n\r\n") == b"HTTP/1.1 404 Not Found"
        assert raw_status_line(proxy.port, b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n") == b"HTTP/1.1 200 OK"
        unauthorized = b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}"
        assert raw_status_line(proxy.port, unauthorized) == b"HTTP/1.1 401 Unauthorized"
        garbage = b"NOT HTTP AT ALL\r\n\r\n"
        assert raw_status_line(proxy.port, garbage) == b"HTTP/1.1 400 Bad Request"
    assert status_line(529) == "HTTP/1.1 529 Overloaded\r\n"
    assert status_line(599) == "HTTP/1.1 599 Unknown\r\n"


def test_models_list_names_the_current_claude_families_and_the_aliases():
    """Claude Code's picker keeps ids starting with "claude": the 5.5 families and the 4.x names are listed."""
    env = {"OPENAI_API_KEY": "sk-x", "MODEL_ALIASES": "fast=openai/gpt-4.1-mini"}
    with RunningProxy(env) as proxy:
        answer = request(proxy, "GET", "/v1/models", headers={"anthropic-version": "2023-06-01"})
    ids = [item["id"] for item in answer.body["data"]]
    for name in ("claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-4-1", "claude-sonnet-4-5",
                 "claude-haiku-4-5", "fast"):
        assert name in ids
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------------------------------------
# Inbound auth: any credential offered may match
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "headers", "status"),
    [
        ({"PROXY_API_KEY": "k"}, {"x-api-key": "k"}, 200),
        ({"PROXY_API_KEY": "k"}, {"authorization": "Bearer k"}, 200),
        # Claude Code with both ANTHROPIC_API_KEY and ANTHROPIC_AUTH_TOKEN set sends both headers.
        ({"PROXY_API_KEY": "k"}, {"x-api-key": "sk-ant-personal", "authorization": "Bearer k"}, 200),
        ({"PROXY_API_KEY": "k"}, {"x-api-key": "k", "authorization": "Bearer other"}, 200),
        ({"PROXY_API_KEY": "k"}, {"x-api-key": "nope", "authorization": "Bearer other"}, 401),
        ({"PROXY_API_KEY": "k"}, {"authorization": "Basic k"}, 401),
        ({"PROXY_API_KEY": "k"}, {}, 401),
        # Seed 000's name for the inbound key.
        ({"ANTHROPIC_AUTH_TOKEN": "t"}, {"authorization": "Bearer t"}, 200),
        ({"ANTHROPIC_AUTH_TOKEN": "t"}, {"x-api-key": "t"}, 200),
        ({"ANTHROPIC_AUTH_TOKEN": "t"}, {"authorization": "Bearer k"}, 401),
        ({"ANTHROPIC_AUTH_TOKEN": "t", "PROXY_API_KEY": "k1,k2"}, {"authorization": "Bearer t"}, 200),
        ({"ANTHROPIC_AUTH_TOKEN": "t", "PROXY_API_KEY": "k1,k2"}, {"x-api-key": "k2"}, 200),
        ({"ANTHROPIC_AUTH_TOKEN": "t", "PROXY_API_KEY": "k1,k2"}, {"x-api-key": "t2"}, 401),
    ],
)
def test_inbound_auth_combinations(env, headers, status):
    with RunningProxy(env) as proxy:
        answer = request(proxy, "POST", "/v1/messages/count_tokens", COUNT_BODY, headers)
    assert answer.status == status
    if status == 401:
        assert answer.body["error"]["type"] == "authentication_error"


def test_anthropic_auth_token_is_a_secret_for_redaction():
    config = Config.from_env({"ANTHROPIC_AUTH_TOKEN": "tok-123", "PROXY_API_KEY": "k"})
    assert config.proxy_api_keys == ("k", "tok-123") and "tok-123" in config.secrets()


# ---------------------------------------------------------------------------------------------
# PREFERRED_PROVIDER=anthropic: passthrough without remapping
# ---------------------------------------------------------------------------------------------


def test_anthropic_preferred_sends_claude_names_unchanged_whatever_the_tiers_say():
    """A .env moved from OpenAI to Anthropic keeps BIG_MODEL=gpt-4.1: it must not reach Anthropic."""
    replies = [Reply.json(anthropic_message(model=name)) for name in ("a", "b", "c")]
    env = {"PREFERRED_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "sk-ant-x", "BIG_MODEL": "gpt-4.1",
           "MIDDLE_MODEL": "gpt-4.1", "SMALL_MODEL": "gpt-4.1-mini"}
    sent = []
    with FakeUpstream(replies) as upstream, RunningProxy(dict(env, ANTHROPIC_BASE_URL=upstream.url)) as proxy:
        for model in ("claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-4-5-20251001"):
            body = json.dumps({"model": model, "max_tokens": 10, "thinking": {"type": "adaptive", "display": "omitted"},
                               "messages": [{"role": "user", "content": "hi"}]}, separators=(",", ":")).encode()
            sent.append(body)
            answer = request(proxy, "POST", "/v1/messages?beta=true", body, {"anthropic-version": "2023-06-01"})
            assert answer.status == 200
    assert [received.body for received in upstream.requests] == sent  # byte for byte


def test_anthropic_preferred_banner_says_claude_names_pass_and_which_tiers_are_ignored():
    config = Config.from_env({"PREFERRED_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "sk-ant-x", "BIG_MODEL": "gpt-4.1"})
    text = banner(config, Gateway(config), 8082)
    assert "haiku  -> anthropic/<name as requested>" in text and "opus   -> anthropic/<name as requested>" in text
    assert "BIG_MODEL not used" in text


def test_aliases_still_remap_on_anthropic():
    env = {"PREFERRED_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "sk-ant-x", "MODEL_ALIASES": "claude-opus-5-5=claude-opus-4-1"}
    with FakeUpstream([Reply.json(anthropic_message())]) as upstream, RunningProxy(dict(env, ANTHROPIC_BASE_URL=upstream.url)) as proxy:
        request(proxy, "POST", "/v1/messages", {"model": "claude-opus-5-5", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert upstream.requests[0].json()["model"] == "claude-opus-4-1"


# ---------------------------------------------------------------------------------------------
# MODEL_NAME: the model of a request that names none
# ---------------------------------------------------------------------------------------------


def test_model_name_fills_in_a_missing_model_on_both_fronts():
    env = {"OPENAI_API_KEY": "sk-x", "MODEL_NAME": "gpt-4.1-mini"}
    with FakeUpstream([Reply.json(completion("one")), Reply.json(completion("two"))]) as upstream, \
            RunningProxy(dict(env, OPENAI_BASE_URL=upstream.url)) as proxy:
        chat = request(proxy, "POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
        messages = request(proxy, "POST", "/v1/messages", {"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status == 200 and chat.body["choices"][0]["message"]["content"] == "one"
    assert messages.status == 200 and messages.body["model"] == "gpt-4.1-mini"
    assert [r.json()["model"] for r in upstream.requests] == ["gpt-4.1-mini", "gpt-4.1-mini"]


def test_without_model_name_a_missing_model_is_still_a_400():
    with RunningProxy({"OPENAI_API_KEY": "sk-x"}) as proxy:
        answer = request(proxy, "POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
    assert answer.status == 400 and "model" in answer.body["error"]["message"]


def test_model_name_on_passthrough_puts_the_model_into_the_body():
    """The raw body has no model: passthrough must not forward it as it came."""
    env = {"PREFERRED_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "sk-ant-x", "MODEL_NAME": "claude-sonnet-5-5"}
    with FakeUpstream([Reply.json(anthropic_message())]) as upstream, RunningProxy(dict(env, ANTHROPIC_BASE_URL=upstream.url)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", {"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert answer.status == 200 and upstream.requests[0].json()["model"] == "claude-sonnet-5-5"


# ---------------------------------------------------------------------------------------------
# A .env from each seed starts switchboard and works as that seed's README describes
# ---------------------------------------------------------------------------------------------


def seed_env(text: str, **urls: str) -> dict[str, str]:
    env = parse_env_file(text)
    env.update(urls)
    env.setdefault("MAX_RETRIES", "0")
    return env


SEED_000_OPENAI = '''
OPENAI_API_KEY="your-openai-key"
# PREFERRED_PROVIDER="openai"
BIG_MODEL="gpt-4.1"
SMALL_MODEL="gpt-4.1-mini"
ANTHROPIC_AUTH_TOKEN="your_anthropic_auth_token"
LOG_LEVEL=INFO
'''


def test_seed_000_openai_env_with_auth_token():
    """Seed 000: Claude Code with ANTHROPIC_AUTH_TOKEN (sent as Bearer); sonnet and opus -> BIG_MODEL."""
    with FakeUpstream([Reply.json(completion("hi")), Reply.json(completion("hi"))]) as upstream, \
            RunningProxy(seed_env(SEED_000_OPENAI, OPENAI_BASE_URL=upstream.url)) as proxy:
        bearer = {"authorization": "Bearer your_anthropic_auth_token"}
        body = {"model": "claude-3-5-sonnet-20241022", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
        assert request(proxy, "POST", "/v1/messages", body, bearer).status == 200
        assert request(proxy, "POST", "/v1/messages", dict(body, model="claude-haiku-4-5"), bearer).status == 200
        assert request(proxy, "POST", "/v1/messages", body).status == 401
    assert [r.json()["model"] for r in upstream.requests] == ["gpt-4.1", "gpt-4.1-mini"]


SEED_000_ANTHROPIC = '''
ANTHROPIC_API_KEY="sk-ant-..."
PREFERRED_PROVIDER="anthropic"
BIG_MODEL="gpt-4.1"
'''


def test_seed_000_anthropic_direct_does_no_remapping():
    with FakeUpstream([Reply.json(anthropic_message())]) as upstream, \
            RunningProxy(seed_env(SEED_000_ANTHROPIC, ANTHROPIC_BASE_URL=upstream.url)) as proxy:
        body = {"model": "claude-3-5-sonnet-20241022", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
        assert request(proxy, "POST", "/v1/messages", body).status == 200
    assert upstream.requests[0].json()["model"] == "claude-3-5-sonnet-20241022"
    assert upstream.requests[0].headers["x-api-key"] == "sk-ant-..."


SEED_001 = '''
OPENAI_API_KEY="sk-your-openai-key"
OPENAI_BASE_URL="https://api.openai.com/v1"
BIG_MODEL="gpt-4o"
MIDDLE_MODEL="gpt-4o"
SMALL_MODEL="gpt-4o-mini"
'''


def test_seed_001_env_maps_the_three_tiers():
    replies = [Reply.json(completion("x")) for _ in range(3)]
    with FakeUpstream(replies) as upstream, RunningProxy(seed_env(SEED_001, OPENAI_BASE_URL=upstream.url)) as proxy:
        for model in ("claude-opus-4-1", "claude-3-5-sonnet-20241022", "claude-3-5-haiku-20241022"):
            body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
            assert request(proxy, "POST", "/v1/messages", body, {"x-api-key": "any-value"}).status == 200
    assert [r.json()["model"] for r in upstream.requests] == ["gpt-4o", "gpt-4o", "gpt-4o-mini"]


def test_seed_001_client_key_in_anthropic_api_key_is_pointed_out():
    """Seed 001 used ANTHROPIC_API_KEY for the key clients send; here it is the upstream key: the banner says so."""
    config = Config.from_env(seed_env(SEED_001 + 'ANTHROPIC_API_KEY="exact-matching-key"\n'))
    assert config.preferred_provider == "openai"
    assert "set PROXY_API_KEY to it instead" in banner(config, Gateway(config), 8082)
    config = Config.from_env(seed_env(SEED_001 + 'ANTHROPIC_API_KEY="sk-ant-api03-real"\n'))
    assert "PROXY_API_KEY to it" not in banner(config, Gateway(config), 8082)


SEED_004 = '''
BASE_URL=https://api.anthropic.com
API_KEY=sk-ant-api03-your-key-here
MODEL_NAME=claude-sonnet-4-20250514
DEFAULT_MAX_TOKENS=16384
SYSTEM_PROMPT=You are a helpful assistant.
PORT=8000
PROXY_API_KEY=my-proxy-secret
'''


def test_seed_004_env_serves_openai_clients_from_anthropic():
    """Seed 004: an OpenAI client, Bearer PROXY_API_KEY, no model in the request -> MODEL_NAME on Anthropic."""
    with FakeUpstream([Reply.json(anthropic_message("Hello!")), Reply.json(anthropic_message("Hi"))]) as upstream:
        env = seed_env(SEED_004, BASE_URL=upstream.url)
        env.pop("PORT")  # the test picks a free port
        with RunningProxy(env) as proxy:
            headers = {"authorization": "Bearer my-proxy-secret"}
            first = request(proxy, "POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "Hello"}]}, headers)
            second = request(proxy, "POST", "/v1/chat/completions",
                             {"model": "claude-opus-4-20250514", "messages": [{"role": "user", "content": "Hello"}]}, headers)
            refused = request(proxy, "POST", "/v1/chat/completions", {"messages": []})
    assert first.status == 200 and first.body["choices"][0]["message"]["content"] == "Hello!"
    assert second.status == 200 and refused.status == 401
    sent = [r.json() for r in upstream.requests]
    assert [body["model"] for body in sent] == ["claude-sonnet-4-20250514", "claude-opus-4-20250514"]
    assert sent[0]["system"][0]["text"] == "You are a helpful assistant."  # SYSTEM_PROMPT, no system message given
    assert upstream.requests[0].headers["x-api-key"] == "sk-ant-api03-your-key-here"


def test_seed_004_names_do_not_override_ours():
    config = Config.from_env({"ANTHROPIC_API_KEY": "sk-ant-ours", "API_KEY": "sk-ant-theirs", "BASE_URL": "http://127.0.0.1:9"})
    anthropic = config.providers["anthropic"]
    assert anthropic.api_key == "sk-ant-ours" and anthropic.base_url == "https://api.anthropic.com"


# ---------------------------------------------------------------------------------------------
# LOG_FILE_PATTERN (seed 000): a stable file name, renamed by the pattern at midnight
# ---------------------------------------------------------------------------------------------


def log_record(text: str) -> logging.LogRecord:
    return logging.LogRecord("switchboard", logging.INFO, __file__, 1, text, None, None)


def midnight_of(year: int, month: int, day: int) -> float:
    return time.mktime((year, month, day, 0, 0, 0, 0, 0, -1))


def test_log_file_pattern_renames_the_day_file_at_midnight_and_keeps_backup_count(tmp_path):
    for day in ("20200101", "20200102", "20200103"):
        (tmp_path / f"proxy-{day}.log").write_text("old\n")
    path = tmp_path / "proxy.log"
    handler = DailyFileHandler(str(path), backup_count=2, rotated="proxy-%Y%m%d.log")
    try:
        handler.emit(log_record("before midnight"))
        handler.next_rollover = midnight_of(2026, 12, 7)  # the file holds 6 December
        handler.emit(log_record("after midnight"))
    finally:
        handler.close()
    assert "before midnight" in (tmp_path / "proxy-20261206.log").read_text()
    assert path.read_text().strip().endswith("after midnight") and "before" not in path.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proxy-20200103.log", "proxy-20261206.log", "proxy.log"]


def test_log_file_left_from_an_earlier_day_is_rotated_under_that_day(tmp_path):
    """The process was stopped over midnight: the old lines go to the day they were written."""
    path = tmp_path / "proxy.log"
    path.write_text("written on the 3rd\n")
    third = midnight_of(2026, 12, 3) + 12 * 3600
    os.utime(path, (third, third))
    handler = DailyFileHandler(str(path), backup_count=7, rotated="proxy-%Y%m%d.log")
    try:
        handler.emit(log_record("today"))
    finally:
        handler.close()
    assert (tmp_path / "proxy-20261203.log").read_text() == "written on the 3rd\n"
    assert "today" in path.read_text()


def test_log_file_pattern_is_wired_from_the_settings(tmp_path):
    config = Config.from_env({"LOG_FILE": str(tmp_path / "p.log"), "LOG_FILE_PATTERN": "p-%Y%m%d.log"})
    assert config.log_file_pattern == "p-%Y%m%d.log"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOG_FILE_PATTERN": "p-%Y%m%d.log"}, "needs LOG_FILE"),
        ({"LOG_FILE": "p.log", "LOG_FILE_PATTERN": "p.log.old"}, "no strftime placeholder"),
    ],
)
def test_log_file_pattern_mistakes_stop_the_start(env, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_env(env)
