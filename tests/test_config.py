"""Configuration: the .env loader, parsing and validation, and the command line (exit codes, shutdown)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fake_upstream import FakeUpstream, Reply, completion
from loopback import eventually, free_port, request, wait_until_healthy

from server.config import Config, ConfigError, load_environment, parse_env_file
from server.gateway import Gateway
from server.listener import banner
from server.logs import DailyFileHandler, setup_logging

ROOT = Path(__file__).resolve().parent.parent


def test_env_file_understands_comments_quotes_and_export():
    """The .env loader handles comments, export, both quote styles and inline comments."""
    text = """
# a comment
export OPENAI_API_KEY=sk-abc
BIG_MODEL="gpt-4.1 # not a comment"
SMALL_MODEL='gpt-4.1-mini'
MIDDLE_MODEL=gpt-4o   # trailing comment
SYSTEM_PROMPT="line one\\nline \\"two\\""
EMPTY=
not a line
"""
    values = parse_env_file(text)
    assert values == {
        "OPENAI_API_KEY": "sk-abc",
        "BIG_MODEL": "gpt-4.1 # not a comment",
        "SMALL_MODEL": "gpt-4.1-mini",
        "MIDDLE_MODEL": "gpt-4o",
        "SYSTEM_PROMPT": 'line one\nline "two"',
        "EMPTY": "",
    }


def test_real_environment_wins_over_env_file(tmp_path):
    """A variable set in the environment overrides the same one in the .env file."""
    env_file = tmp_path / "custom.env"
    env_file.write_text("PORT=9000\nBIG_MODEL=from-file\n")
    values = load_environment(str(env_file), {"PORT": "9100"})
    assert values["PORT"] == "9100" and values["BIG_MODEL"] == "from-file"


def test_defaults_match_the_documentation():
    """Defaults: 127.0.0.1:8082, INFO, openai preferred, gpt-4.1 / gpt-4.1 / gpt-4.1-mini, 32 MiB bodies."""
    config = Config.from_env({})
    assert (config.host, config.port, config.log_level) == ("127.0.0.1", 8082, "INFO")
    assert (config.big_model, config.middle_model, config.small_model) == ("gpt-4.1", "gpt-4.1", "gpt-4.1-mini")
    assert config.preferred_provider == "openai" and config.max_request_bytes == 32 * 1024 * 1024
    assert Config.from_env({"BIG_MODEL": "b"}).middle_model == "b"


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"PREFERRED_PROVIDER": "nonsense"}, "PREFERRED_PROVIDER"),
        ({"OPENAI_BASE_URL": "ftp://example"}, "OPENAI_BASE_URL"),
        ({"OPENAI_BASE_URL": "not a url"}, "OPENAI_BASE_URL"),
        ({"ALLOW_ANONYMOUS": "perhaps"}, "ALLOW_ANONYMOUS"),
        ({"MODEL_ALIASES": "broken"}, "MODEL_ALIASES"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ],
)
def test_bad_settings_are_reported_naming_the_variable(env, variable):
    """Each invalid setting raises ConfigError whose message names the variable."""
    with pytest.raises(ConfigError, match=variable):
        Config.from_env(env)


def run_cli(args: list[str], env: dict[str, str], timeout: float = 10) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PROXY_", "PREFERRED_", "HOST", "PORT"))}
    return subprocess.run([sys.executable, str(ROOT / "proxy.py"), *args], env={**clean, **env}, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_config_error_exits_2_with_one_line_naming_the_variable():
    """python proxy.py with PORT=abc exits 2 and prints one line naming PORT."""
    result = run_cli([], {"PORT": "abc"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "PORT" in lines[0]


def test_refuses_a_public_bind_without_a_key():
    """Binding 0.0.0.0 with no PROXY_API_KEY exits 2 unless ALLOW_ANONYMOUS=true."""
    result = run_cli(["--host", "0.0.0.0", "--port", "0"], {})
    assert result.returncode == 2 and "PROXY_API_KEY" in result.stderr


def test_sigterm_lets_in_flight_requests_finish_then_exits_0(tmp_path):
    """On SIGTERM the proxy stops accepting, finishes the slow in-flight request, and exits 0."""
    slow = Reply.json(completion("finished"))
    slow.delay_before_head = 1.0
    with FakeUpstream([slow]) as upstream:
        port = free_port()
        env_file = tmp_path / "test.env"
        env_file.write_text(f"OPENAI_API_KEY=k\nOPENAI_BASE_URL={upstream.url}/v1\n")
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PROXY_"))}
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "proxy.py"), "--port", str(port), "--env-file", str(env_file)],
            env=clean, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        )
        try:
            wait_until_healthy(port)
            result = {}

            def call() -> None:
                body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
                answer = request(port, "POST", "/v1/messages", body)
                result["status"], result["body"] = answer.status, answer.json()

            caller = threading.Thread(target=call)
            caller.start()
            assert eventually(lambda: len(upstream.requests) == 1, timeout=5), "the request reached the upstream"
            process.send_signal(signal.SIGTERM)
            caller.join(10)
            assert process.wait(10) == 0
        finally:
            process.kill()
            stderr = process.stderr.read()
    assert result["status"] == 200 and result["body"]["content"][0]["text"] == "finished"
    assert "switchboard" in stderr and "listening on" in stderr


def test_banner_says_loudly_when_no_upstream_is_configured():
    """With nothing configured the banner says the echo provider answers and which variables to set."""
    config = Config.from_env({})
    gateway = Gateway(config)
    text = banner(config, gateway, 8082)
    assert "NO UPSTREAM CONFIGURED" in text and "OPENAI_API_KEY" in text and "echo" in text


def test_log_file_gets_access_lines_and_no_secrets(tmp_path):
    """LOG_FILE (with strftime placeholders) receives the access line; no key appears in it."""
    import logging

    from fake_upstream import RunningProxy
    from test_server import MESSAGE, openai_env

    pattern = str(tmp_path / "logs" / "switchboard-%Y%m%d.log")
    with FakeUpstream([Reply.json(completion("hi"))]) as upstream:
        env = openai_env(upstream, LOG_FILE=pattern, PROXY_API_KEY="inbound-secret")
        with RunningProxy(env) as running:
            setup_logging(running.config)
            try:
                request(running, "POST", "/v1/messages", MESSAGE, {"x-api-key": "inbound-secret"})
                log_path = tmp_path / "logs" / time.strftime("switchboard-%Y%m%d.log")
                running.wait_for(lambda: "status=200" in log_path.read_text())
            finally:
                for handler in logging.getLogger("switchboard").handlers:
                    handler.flush()
    written = (tmp_path / "logs" / time.strftime("switchboard-%Y%m%d.log")).read_text()
    assert "POST /v1/messages model=claude-sonnet-4-5->openai/gpt-4.1 status=200" in written
    assert "inbound-secret" not in written and "sk-upstream-secret" not in written
    logging.getLogger("switchboard").handlers.clear()


def test_dated_log_file_rolls_over_at_midnight_and_keeps_backup_count(tmp_path):
    """At the first record after midnight a new dated file opens and only LOG_FILE_BACKUP_COUNT old ones stay."""
    import logging

    pattern = str(tmp_path / "switchboard-%Y%m%d-%H%M%S.log")
    for stamp in ("20200101-000000", "20200102-000000", "20200103-000000"):
        (tmp_path / f"switchboard-{stamp}.log").write_text("old\n")
    handler = DailyFileHandler(pattern, backup_count=2)
    try:
        first = handler.baseFilename
        record = logging.LogRecord("switchboard", logging.INFO, __file__, 1, "hello", None, None)
        handler.emit(record)
        handler.next_rollover = 0  # pretend midnight has passed
        time.sleep(1.1)  # the next file name differs by its seconds field
        handler.emit(record)
        second = handler.baseFilename
    finally:
        handler.close()
    assert first != second and Path(second).read_text().strip().endswith("hello")
    remaining = sorted(p.name for p in tmp_path.iterdir())
    assert Path(second).name in remaining and len(remaining) == 3  # current + 2 backups


def test_plain_log_file_is_renamed_with_the_date_at_rollover(tmp_path):
    """A LOG_FILE without placeholders rotates like TimedRotatingFileHandler: name.YYYY-MM-DD."""
    import logging

    path = tmp_path / "switchboard.log"
    handler = DailyFileHandler(str(path), backup_count=7)
    try:
        record = logging.LogRecord("switchboard", logging.INFO, __file__, 1, "line", None, None)
        handler.emit(record)
        handler.next_rollover = 0
        handler.emit(record)
    finally:
        handler.close()
    rotated = [p for p in tmp_path.iterdir() if p.name.startswith("switchboard.log.")]
    assert len(rotated) == 1 and path.read_text().count("line") == 1
