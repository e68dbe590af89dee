"""The live dashboard in a real browser: headless Chromium driven by selenium, against the real gateway.

The proxy runs in a thread (fake_upstream.RunningProxy) with two client keys, an admin key and a
usage ledger, in front of a fake OpenAI upstream. The browser loads /dashboard, is refused the data,
logs in through the page's form (a wrong key first), and must then show the signed-in client's
traffic only: its requests, a request rate, and the tokens the upstream reported, as recorded by the
ledger. Then it logs out, logs in as admin and sees everyone's. Nothing the browser logged may be
SEVERE but the 401s the login flow provokes on purpose. A screenshot goes to tests/output/.

The test skips, saying what is missing, when selenium, Chromium or chromedriver is not installed
(Debian: `apt-get install chromium chromium-driver`; `pip install selenium`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fake_upstream import FakeUpstream, Received, Reply, RunningProxy, completion, text_stream
from loopback import request

from server.dashboard_page import PAGE

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "output"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; "
       "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
WAIT_SECONDS = 15
ALICE, BOB, ADMIN = "sk-alice-1", "sk-bob-2", "sk-admin-9"
PROMPT = "prompt-text-5d81c0"  # neither may ever appear on the page
ANSWER = "completion-text-a3f7e2"
TOKENS_PER_ANSWER = 11 + 7  # completion() and text_stream() report 11 prompt and 7 completion tokens


def executable(path: str, name: str) -> str | None:
    if os.access(path, os.X_OK):
        return path
    return shutil.which(name)


@pytest.fixture
def browser():
    """A headless Chromium with its console log kept; skipped when something it needs is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium not installed: pip install selenium")
    chromium = executable(CHROMIUM, "chromium")
    if chromium is None:
        pytest.skip(f"chromium not found at {CHROMIUM} or on PATH: apt-get install chromium")
    chromedriver = executable(CHROMEDRIVER, "chromedriver")
    if chromedriver is None:
        pytest.skip(f"chromedriver not found at {CHROMEDRIVER} or on PATH: apt-get install chromium-driver")
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1440,1400", "--disable-extensions", "--no-first-run", "--disable-background-networking"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def answer(received: Received) -> Reply:
    """The fake OpenAI upstream: a 400 for a prompt asking for one, else a whole or streamed answer."""
    body = received.json()
    if b"please fail" in received.body:
        return Reply.json({"error": {"message": "the fake upstream refuses this", "type": "invalid_request_error"}}, status=400)
    if body.get("stream"):
        return Reply.sse(text_stream([ANSWER[:9], ANSWER[9:]]))
    return Reply.json(completion(ANSWER))


def ask(proxy: RunningProxy, key: str, *, stream: bool = False, text: str = PROMPT) -> tuple[int, str]:
    """One Anthropic Messages request with `key` as x-api-key; returns (status, the request id it was given)."""
    body = {"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": stream, "messages": [{"role": "user", "content": text}]}
    response = request(proxy, "POST", "/v1/messages", body, {"x-api-key": key, "anthropic-version": "2023-06-01"})
    return response.status, response.headers.get("request-id", "")


class Page:
    """What the test reads from and does on the dashboard page."""

    def __init__(self, driver) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.by = By
        self.wait = WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.1)
        self.console: list[dict] = []

    def text(self, element_id: str) -> str:
        return self.driver.find_element(self.by.ID, element_id).text

    def shown(self, element_id: str) -> bool:
        return self.driver.find_element(self.by.ID, element_id).is_displayed()

    def number(self, element_id: str) -> float | None:
        """The element's text as a number (thousands separators removed); None for "–" or empty."""
        text = self.text(element_id).replace(",", "").strip()
        try:
            return float(text)
        except ValueError:
            return None

    def until(self, condition, message: str):
        """Wait for `condition(page)` to be truthy; fails naming `message` and what the page showed."""
        try:
            return self.wait.until(lambda _driver: condition(self))
        except Exception as failure:  # TimeoutException, with the page's state for the reader
            raise AssertionError(f"timed out waiting for {message}; status line: {self.text('status')!r}") from failure

    def log_in(self, key: str) -> None:
        field = self.driver.find_element(self.by.ID, "login-key")
        field.clear()
        field.send_keys(key)
        self.driver.find_element(self.by.ID, "login-submit").click()

    def rows(self) -> list:
        return self.driver.find_elements(self.by.CSS_SELECTOR, "#recent-table tr[data-request-id]")

    def drain_console(self) -> None:
        self.console += self.driver.get_log("browser")


def unexpected(entries: list[dict]) -> list[dict]:
    """SEVERE console entries, but for the 401s of the data poll before login and of the wrong key."""
    def expected(entry: dict) -> bool:
        message = entry.get("message", "")
        return entry.get("source") == "network" and " 401 " in message and ("/dashboard/data" in message or "/dashboard/login" in message)

    return [entry for entry in entries if entry.get("level") == "SEVERE" and not expected(entry)]


def test_dashboard_logs_in_and_shows_only_the_clients_own_traffic(browser, tmp_path):
    """Login form, "invalid key", then alice's requests, rate and ledger tokens; admin sees all; no console errors."""
    env = {
        "OPENAI_API_KEY": "sk-up", "PROXY_API_KEY": f"alice:{ALICE},bob:{BOB}", "ADMIN_API_KEY": ADMIN,
        "USAGE_DB": str(tmp_path / "usage.db"),
    }
    with FakeUpstream(answer) as upstream, RunningProxy({**env, "OPENAI_BASE_URL": upstream.url + "/v1"}) as proxy:
        # The contract the page relies on, read with an independent client.
        served = request(proxy, "GET", "/dashboard")
        assert served.status == 200 and served.raw == PAGE
        assert served.headers["content-security-policy"] == CSP
        assert served.headers["content-type"].startswith("text/html")
        assert request(proxy, "GET", "/dashboard/data").status == 401

        page = Page(browser)
        browser.get(proxy.url + "/dashboard")
        page.until(lambda p: p.shown("login-form"), "the login form")
        assert not page.shown("board")

        page.log_in("sk-not-a-key")
        page.until(lambda p: p.text("login-error") == "invalid key", '"invalid key"')
        page.log_in(ALICE)
        page.until(lambda p: p.shown("board") and p.text("viewer") == "alice", "alice's dashboard")
        assert not page.shown("login-form") and page.shown("logout")

        alice_ids = []
        for stream in (False, False, True, True, False):
            status, request_id = ask(proxy, ALICE, stream=stream)
            assert status == 200
            alice_ids.append(request_id)
        status, failed_id = ask(proxy, ALICE, text="please fail")
        assert status == 400
        for _ in range(2):
            assert ask(proxy, BOB)[0] == 200
        alice_count = len(alice_ids) + 1

        page.until(lambda p: p.text("recent-count") == str(alice_count), f"#recent-count to show alice's {alice_count}")
        rows = {row.get_attribute("data-request-id"): row for row in page.rows()}
        assert {row.get_attribute("data-client") for row in rows.values()} == {"alice"}
        assert set(rows) == {failed_id, *alice_ids}
        failed_row = rows[failed_id]
        assert failed_row.get_attribute("data-status") == "400" and "err" in failed_row.get_attribute("class").split()
        message = failed_row.find_element(page.by.XPATH, "following-sibling::tr[1]")
        assert "errmsg" in message.get_attribute("class").split() and message.text.strip(), "no error message under the failed row"
        page.until(lambda p: (p.number("now-rps") or 0) > 0, "#now-rps above 0")
        assert page.number("now-streams") is not None
        alice_tokens = len(alice_ids) * TOKENS_PER_ANSWER  # the failed request reported none
        page.until(lambda p: p.number("tokens-today-total") == alice_tokens, f"tokens today to reach {alice_tokens:,}")
        page.until(lambda p: browser.find_elements(page.by.CSS_SELECTOR, "#latency-table tr[data-provider='openai'] svg path"),
                   "a latency chart for openai")
        page.until(lambda p: p.text("recent-count") == str(alice_count), "#recent-count to stay at alice's own")

        # The filter box narrows the rows shown and #recent-count with them.
        box = browser.find_element(page.by.ID, "recent-filter")
        box.send_keys(failed_id)
        page.until(lambda p: p.text("recent-count") == "1", "the filter to leave one row")
        box.clear()
        box.send_keys(" ")
        page.until(lambda p: p.text("recent-count") == str(alice_count), "the cleared filter to show every row")

        shown = browser.find_element(page.by.TAG_NAME, "body").text
        assert PROMPT not in shown and ANSWER not in shown and PROMPT not in browser.page_source
        OUTPUT.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(OUTPUT / "dashboard.png"))

        browser.find_element(page.by.ID, "logout").click()
        page.until(lambda p: p.shown("login-form"), "the login form after logging out")
        assert page.text("recent-count") == "–" or not page.shown("board")
        page.log_in(ADMIN)
        everyone = alice_count + 2
        page.until(lambda p: p.shown("board") and p.text("recent-count") == str(everyone), f"admin's {everyone} requests")
        assert {row.get_attribute("data-client") for row in page.rows()} == {"alice", "bob"}
        all_tokens = (len(alice_ids) + 2) * TOKENS_PER_ANSWER
        page.until(lambda p: p.number("tokens-today-total") == all_tokens, f"admin's tokens today to reach {all_tokens:,}")
        browser.save_screenshot(str(OUTPUT / "dashboard-admin.png"))

        page.drain_console()
        assert not unexpected(page.console), unexpected(page.console)
