"""The key pool (upstreams/keys.py): spreading requests, resting refused keys, and never showing a key."""

from __future__ import annotations

import email.utils
import json
import logging

import pytest

from translate.errors import ProxyError
from upstreams import keys as keys_module
from upstreams.keys import (
    AllKeysCooling,
    KeyPool,
    Verdict,
    classify,
    fingerprint,
    parse_keys,
)

KEY_A = "sk-test-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
KEY_B = "sk-test-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
KEY_C = "sk-test-cccccccccccccccccccccccccccccccc"
ALL_KEYS = (KEY_A, KEY_B, KEY_C)
WALL_NOW = 1_700_000_000.0


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_pool(keys=ALL_KEYS, **options) -> tuple[KeyPool, FakeClock]:
    clock = FakeClock()
    return KeyPool(keys, provider="openai", clock=clock, wall_clock=lambda: WALL_NOW, **options), clock


def body(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.fixture
def key_log(caplog, monkeypatch):
    """caplog records of the pool's logger, even after setup_logging stopped `switchboard` propagating."""
    monkeypatch.setattr(logging.getLogger("switchboard"), "propagate", True)
    caplog.set_level(logging.DEBUG, logger="switchboard.keys")
    return caplog


# Bodies as the providers send them.
OPENAI_QUOTA = body({"error": {
    "message": "You exceeded your current quota, please check your plan and billing details.",
    "type": "insufficient_quota", "param": None, "code": "insufficient_quota",
}})
OPENAI_RATE_LIMIT = body({"error": {
    "message": "Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000. Please try again in 2s.",
    "type": "tokens", "param": None, "code": "rate_limit_exceeded",
}})
OPENAI_INVALID_KEY = body({"error": {
    "message": "Incorrect API key provided: sk-test-***aaaa.",
    "type": "invalid_request_error", "code": "invalid_api_key",
}})
ANTHROPIC_CREDIT = body({"type": "error", "error": {
    "type": "invalid_request_error",
    "message": "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to "
               "upgrade or purchase credits.",
}})
ANTHROPIC_OVERLOADED = body({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
ANTHROPIC_BAD_REQUEST = body({"type": "error", "error": {
    "type": "invalid_request_error", "message": "max_tokens: Field required",
}})
GEMINI_QUOTA_MESSAGE = ("You exceeded your current quota, please check your plan and billing details. For more "
                        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.")


def gemini_429(quota_id: str | None, message: str = GEMINI_QUOTA_MESSAGE, retry_delay: str | None = "37s") -> bytes:
    details: list[dict] = []
    if quota_id:
        details.append({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
            {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
             "quotaId": quota_id, "quotaValue": "50"},
        ]})
    if retry_delay:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    # The OpenAI-compatible endpoint wraps Google's error in a JSON array.
    return body([{"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED", "details": details}}])


GEMINI_DAILY = gemini_429("GenerateRequestsPerDayPerProjectPerModel-FreeTier")
GEMINI_PER_MINUTE = gemini_429("GenerateRequestsPerMinutePerProjectPerModel-FreeTier")
GEMINI_INVALID_KEY = body([{"error": {
    "code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                 "domain": "googleapis.com"}],
}}])


# ---------------------------------------------------------------------------------------------
# Parsing the setting
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ()),
        ("", ()),
        ("  ", ()),
        ("sk-one", ("sk-one",)),
        ("sk-one,sk-two", ("sk-one", "sk-two")),
        (" sk-one , sk-two ,", ("sk-one", "sk-two")),
        (",,sk-one,,", ("sk-one",)),
        ("sk-two,sk-one,sk-two", ("sk-two", "sk-one")),
    ],
    ids=["none", "empty", "blank", "single", "two", "spaces-and-trailing-comma", "empty-parts", "duplicates"],
)
def test_parse_keys_splits_strips_drops_empties_and_deduplicates_in_order(value, expected):
    """A comma-separated setting becomes the ordered tuple of distinct keys."""
    assert parse_keys(value) == expected


def test_a_pool_needs_a_key_and_counts_a_repeated_key_once():
    """An empty pool is a configuration error; the same key given twice is one key."""
    with pytest.raises(ValueError, match="at least one key"):
        KeyPool([], provider="openai")
    pool, _ = make_pool([KEY_A, KEY_A, KEY_B])
    assert len(pool) == 2
    assert pool.secrets() == [KEY_A, KEY_B]


# ---------------------------------------------------------------------------------------------
# Spreading requests
# ---------------------------------------------------------------------------------------------


def test_round_robin_spreads_requests_evenly_over_healthy_keys():
    """Picks cycle through the keys in order, so each gets the same share."""
    pool, _ = make_pool()
    picked = [pool.pick().secret for _ in range(300)]
    assert picked[:6] == [KEY_A, KEY_B, KEY_C, KEY_A, KEY_B, KEY_C]
    assert {key: picked.count(key) for key in ALL_KEYS} == {KEY_A: 100, KEY_B: 100, KEY_C: 100}
    assert [row["requests"] for row in pool.snapshot()] == [100, 100, 100]


def test_round_robin_skips_a_cooling_key_and_takes_it_back_after_its_rest():
    """A resting key gets no requests; the others share the load until it is back."""
    pool, clock = make_pool()
    pool.report(pool.keys[1], 429, OPENAI_RATE_LIMIT, retry_after="5")
    assert [pool.pick().secret for _ in range(4)] == [KEY_A, KEY_C, KEY_A, KEY_C]
    clock.advance(5)
    assert {pool.pick().secret for _ in range(3)} == set(ALL_KEYS)


def test_a_single_key_pool_works_like_a_single_key(monkeypatch):
    """One key is picked every time, without hashing or reading the clock, and is counted."""
    clock = FakeClock()
    pool = KeyPool([KEY_A], provider="anthropic", clock=clock)
    banner = f"1 key: {fingerprint(KEY_A)} healthy"

    def no_hashing(*_args):
        raise AssertionError("pick() must not hash")

    def no_clock():
        raise AssertionError("pick() of a healthy key must not read the clock")

    monkeypatch.setattr(keys_module.hashlib, "sha256", no_hashing)
    pool.clock = no_clock
    assert all(pool.pick().secret == KEY_A for _ in range(1000))
    pool.clock = clock
    assert pool.report(pool.keys[0], 200) is Verdict.ACCEPTED
    assert pool.snapshot()[0]["requests"] == 1000
    assert pool.describe() == banner


# ---------------------------------------------------------------------------------------------
# Rate limits
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "error_body", "expected_rest"),
    [
        ("30", OPENAI_RATE_LIMIT, 30.0),
        ("2.5", OPENAI_RATE_LIMIT, 2.5),
        (email.utils.formatdate(WALL_NOW + 45, usegmt=True), OPENAI_RATE_LIMIT, 45.0),
        (None, OPENAI_RATE_LIMIT, 10.0),
        ("soon", OPENAI_RATE_LIMIT, 10.0),
        (None, b"", 10.0),
        (None, GEMINI_PER_MINUTE, 37.0),
        ("3", GEMINI_PER_MINUTE, 3.0),
        ("86400", OPENAI_RATE_LIMIT, 3600.0),
    ],
    ids=["seconds", "fractional-seconds", "http-date", "default", "bad-header", "no-body", "gemini-retry-delay",
         "header-beats-retry-delay", "capped-at-quota-cooldown"],
)
def test_a_rate_limited_key_rests_for_its_retry_after_then_comes_back(retry_after, error_body, expected_rest):
    """A 429 rests the key for retry-after (seconds or date), else the body's delay, else the default."""
    pool, clock = make_pool([KEY_A])
    key = pool.pick()
    assert pool.report(key, 429, error_body, retry_after=retry_after) is Verdict.RATE_LIMITED
    row = pool.snapshot()[0]
    assert row["state"] == "cooling"
    assert row["cooling_until"] == pytest.approx(expected_rest)
    assert row["rate_limited"] == 1 and row["quota_exhausted"] == 0 and row["failures"] == 1
    clock.advance(expected_rest - 0.5)
    with pytest.raises(AllKeysCooling) as caught:
        pool.pick()
    assert caught.value.retry_after_seconds == pytest.approx(0.5)
    clock.advance(0.5)
    assert pool.pick() is key
    assert pool.snapshot()[0]["state"] == "healthy"


def test_the_rate_limit_cooldown_is_configurable():
    """Without a retry-after the key rests for `rate_limit_cooldown`."""
    pool, _ = make_pool([KEY_A], rate_limit_cooldown=2.0)
    pool.report(pool.pick(), 429, OPENAI_RATE_LIMIT)
    assert pool.snapshot()[0]["cooling_until"] == pytest.approx(2.0)


# ---------------------------------------------------------------------------------------------
# Spent quotas
# ---------------------------------------------------------------------------------------------


QUOTA_CASES = [
    (429, OPENAI_QUOTA),
    (400, ANTHROPIC_CREDIT),
    (429, GEMINI_DAILY),
    (429, gemini_429(None, retry_delay=None)),
    (429, body({"error": {"message": "quota", "type": "insufficient_quota"}})),
    (400, body({"error": {"message": "Billing hard limit has been reached", "code": "billing_hard_limit_reached"}})),
    (402, b""),
    (403, body({"error": {"message": "The billing account for this project is disabled."}})),
    (429, b"insufficient_quota"),
]
QUOTA_IDS = ["openai", "anthropic-credit", "gemini-per-day", "gemini-quota-wording", "openai-type-only",
             "billing-hard-limit", "402", "403-billing", "plain-text"]


@pytest.mark.parametrize(("status", "error_body"), QUOTA_CASES, ids=QUOTA_IDS)
def test_a_spent_quota_rests_the_key_for_the_long_cooldown(status, error_body):
    """Quota and billing errors rest the key for an hour, whatever retry-after says."""
    pool, clock = make_pool([KEY_A, KEY_B])
    key = pool.pick()
    assert pool.report(key, status, error_body, retry_after="20") is Verdict.QUOTA_EXHAUSTED
    row = pool.snapshot()[0]
    assert (row["state"], row["cooling_until"], row["quota_exhausted"], row["rate_limited"]) == (
        "cooling", pytest.approx(3600.0), 1, 0)
    assert {pool.pick().secret for _ in range(4)} == {KEY_B}
    clock.advance(3600)
    assert {pool.pick().secret for _ in range(4)} == {KEY_A, KEY_B}


def test_the_quota_cooldown_is_configurable():
    """`quota_cooldown` sets how long a key with a spent quota rests."""
    pool, _ = make_pool([KEY_A], quota_cooldown=600.0)
    pool.report(pool.pick(), 429, OPENAI_QUOTA)
    assert pool.snapshot()[0]["cooling_until"] == pytest.approx(600.0)


def test_a_late_rate_limit_never_shortens_a_quota_rest():
    """An answer to a request sent before the key rested extends its rest at most."""
    pool, clock = make_pool([KEY_A])
    key = pool.pick()
    pool.report(key, 429, OPENAI_QUOTA)
    clock.advance(100)
    pool.report(key, 429, OPENAI_RATE_LIMIT, retry_after="5")
    pool.report(key, 200)
    assert pool.snapshot()[0]["cooling_until"] == pytest.approx(3500.0)


def test_a_rest_is_logged_when_it_starts_and_when_a_spent_quota_lengthens_it(key_log):
    """Answers to requests in flight when a key started resting add no lines; a spent quota does."""
    pool, _ = make_pool([KEY_A])
    key = pool.pick()
    for _ in range(3):
        pool.report(key, 429, OPENAI_RATE_LIMIT, retry_after="5")
    pool.report(key, 429, OPENAI_QUOTA)
    pool.report(key, 429, OPENAI_QUOTA)
    lines = [(record.levelno, record.getMessage()) for record in key_log.records]
    assert lines == [
        (logging.INFO, f"provider=openai key={fingerprint(KEY_A)} cooling 5s: rate limited (429)"),
        (logging.WARNING, f"provider=openai key={fingerprint(KEY_A)} cooling 3600s: quota or credit spent (429)"),
    ]
    assert pool.snapshot()[0]["cooling_until"] == pytest.approx(3600.0)


@pytest.mark.parametrize(
    ("status", "error_body", "expected"),
    [
        (200, b"", Verdict.ACCEPTED),
        (200, b'{"choices": [{"message": {"content": "billing insufficient_quota"}}]}', Verdict.ACCEPTED),
        (429, OPENAI_QUOTA, Verdict.QUOTA_EXHAUSTED),
        (429, OPENAI_RATE_LIMIT, Verdict.RATE_LIMITED),
        (429, GEMINI_DAILY, Verdict.QUOTA_EXHAUSTED),
        (429, GEMINI_PER_MINUTE, Verdict.RATE_LIMITED),
        (429, gemini_429(None, "Resource has been exhausted (e.g. check quota).", None), Verdict.RATE_LIMITED),
        (429, gemini_429(None, "Resource exhausted. Please try again later.", None), Verdict.RATE_LIMITED),
        (400, ANTHROPIC_CREDIT, Verdict.QUOTA_EXHAUSTED),
        (400, ANTHROPIC_BAD_REQUEST, Verdict.NOT_THE_KEY),
        (400, GEMINI_INVALID_KEY, Verdict.REJECTED),
        (401, OPENAI_INVALID_KEY, Verdict.REJECTED),
        (403, b"<html>Forbidden</html>", Verdict.REJECTED),
        (404, b"", Verdict.NOT_THE_KEY),
        (500, OPENAI_QUOTA, Verdict.NOT_THE_KEY),
        (529, ANTHROPIC_OVERLOADED, Verdict.NOT_THE_KEY),
    ],
    ids=["ok", "ok-body-is-never-read", "openai-quota", "openai-rate-limit", "gemini-daily", "gemini-per-minute",
         "gemini-old-wording", "vertex-wording", "anthropic-credit", "bad-request", "gemini-invalid-key", "401",
         "403-html", "404", "500-quota-wording", "529"],
)
def test_classify_reads_what_each_provider_says_about_the_key(status, error_body, expected):
    """Each provider's answer gets the verdict the module docstring promises."""
    assert classify(status, error_body)[0] is expected


# ---------------------------------------------------------------------------------------------
# Refused keys, and answers that are not the key's fault
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "error_body"), [(401, OPENAI_INVALID_KEY), (403, b""), (400, GEMINI_INVALID_KEY)],
                         ids=["401", "403", "gemini-400-api-key-invalid"])
def test_a_refused_key_is_disabled_until_restart_and_logged_once(key_log, status, error_body):
    """401/403 disable the key for good; repeated reports log one ERROR line, by fingerprint."""
    pool, clock = make_pool([KEY_A, KEY_B])
    key = pool.keys[0]
    for _ in range(3):
        assert pool.report(key, status, error_body) is Verdict.REJECTED
    pool.report(key, 429, OPENAI_RATE_LIMIT)
    pool.report(key, 200)
    errors = [record for record in key_log.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert fingerprint(KEY_A) in errors[0].getMessage() and "disabled until restart" in errors[0].getMessage()
    clock.advance(10 * 86400)
    assert pool.snapshot()[0]["state"] == "disabled"
    assert pool.snapshot()[0]["cooling_until"] is None
    assert {pool.pick().secret for _ in range(4)} == {KEY_B}


@pytest.mark.parametrize("status", [500, 502, 503, 504, 529, 404, 408, 413, 422])
def test_provider_trouble_and_bad_requests_do_not_rest_the_key(status):
    """5xx (529 included) and request errors leave the key healthy and its failure count alone."""
    pool, _ = make_pool([KEY_A])
    error_body = ANTHROPIC_OVERLOADED if status == 529 else b'{"error": {"message": "boom"}}'
    assert pool.report(pool.pick(), status, error_body, retry_after="60") is Verdict.NOT_THE_KEY
    assert pool.snapshot()[0]["state"] == "healthy"
    assert pool.snapshot()[0]["failures"] == 0
    assert pool.pick().secret == KEY_A


def test_a_success_resets_the_count_of_consecutive_failures():
    """`failures` counts answers that blamed the key since its last success."""
    pool, clock = make_pool([KEY_A])
    key = pool.pick()
    pool.report(key, 429, OPENAI_RATE_LIMIT, retry_after="1")
    pool.report(key, 429, OPENAI_RATE_LIMIT, retry_after="1")
    assert pool.snapshot()[0]["failures"] == 2
    clock.advance(1)
    pool.report(pool.pick(), 200)
    row = pool.snapshot()[0]
    assert (row["failures"], row["rate_limited"], row["state"]) == (0, 2, "healthy")


# ---------------------------------------------------------------------------------------------
# Retries with `avoid`, and no usable key
# ---------------------------------------------------------------------------------------------


def test_a_retry_avoids_the_keys_it_already_tried():
    """`avoid` sends a retry to a key not tried yet, and the rotation goes on from there."""
    pool, _ = make_pool()
    first = pool.pick()
    second = pool.pick(avoid={first})
    third = pool.pick(avoid={first, second})
    assert len({first.secret, second.secret, third.secret}) == 3
    assert pool.pick(avoid={pool.keys[0]}).secret == KEY_B


def test_a_retry_falls_back_to_an_avoided_key_when_it_is_the_only_usable_one():
    """With every other key resting, the avoided key is still better than no answer."""
    pool, _ = make_pool()
    pool.report(pool.keys[1], 429, OPENAI_QUOTA)
    pool.report(pool.keys[2], 401, OPENAI_INVALID_KEY)
    assert pool.pick(avoid={pool.keys[0]}).secret == KEY_A
    assert pool.pick(avoid=set(pool.keys)).secret == KEY_A


def test_every_key_cooling_raises_with_the_earliest_moment_one_is_back():
    """AllKeysCooling is a retryable 429 whose retry-after is the shortest remaining rest."""
    pool, clock = make_pool()
    pool.report(pool.keys[0], 429, OPENAI_QUOTA)
    pool.report(pool.keys[1], 429, OPENAI_RATE_LIMIT, retry_after="30")
    pool.report(pool.keys[2], 429, OPENAI_RATE_LIMIT, retry_after="12")
    clock.advance(2)
    with pytest.raises(AllKeysCooling) as caught:
        pool.pick()
    error = caught.value
    assert isinstance(error, ProxyError)
    assert error.provider == "openai"
    assert error.retry_after_seconds == pytest.approx(10.0)
    assert (error.status, error.error_type, error.retry_after, error.retryable) == (429, "rate_limit_error", "10", True)
    assert "openai" in error.message and "10 seconds" in error.message
    clock.advance(10)
    assert pool.pick().secret == KEY_C


def test_every_key_disabled_raises_without_a_retry_after():
    """With no key left to wait for, retry_after is None and the error is the provider's 401."""
    pool, _ = make_pool([KEY_A, KEY_B])
    pool.report(pool.keys[0], 401, OPENAI_INVALID_KEY)
    pool.report(pool.keys[1], 403, b"")
    with pytest.raises(AllKeysCooling) as caught:
        pool.pick()
    error = caught.value
    assert error.retry_after_seconds is None and error.retry_after is None
    assert (error.status, error.error_type, error.retryable) == (401, "authentication_error", False)


def test_disabled_and_cooling_keys_together_wait_for_the_cooling_one():
    """A disabled key does not count toward retry_after; a resting one does."""
    pool, _ = make_pool([KEY_A, KEY_B])
    pool.report(pool.keys[0], 401, OPENAI_INVALID_KEY)
    pool.report(pool.keys[1], 429, OPENAI_RATE_LIMIT, retry_after="7")
    with pytest.raises(AllKeysCooling) as caught:
        pool.pick()
    assert caught.value.retry_after_seconds == pytest.approx(7.0)


# ---------------------------------------------------------------------------------------------
# Reporting, and never showing a key
# ---------------------------------------------------------------------------------------------


def test_snapshot_and_describe_show_each_key_by_fingerprint_and_state():
    """The snapshot has one row per key; describe() is one banner line."""
    pool, _ = make_pool()
    pool.pick()
    pool.report(pool.keys[1], 429, OPENAI_RATE_LIMIT, retry_after="12")
    pool.report(pool.keys[2], 401, OPENAI_INVALID_KEY)
    assert pool.snapshot() == [
        {"fingerprint": fingerprint(KEY_A), "state": "healthy", "cooling_until": None, "requests": 1,
         "rate_limited": 0, "quota_exhausted": 0, "failures": 0},
        {"fingerprint": fingerprint(KEY_B), "state": "cooling", "cooling_until": pytest.approx(12.0), "requests": 0,
         "rate_limited": 1, "quota_exhausted": 0, "failures": 1},
        {"fingerprint": fingerprint(KEY_C), "state": "disabled", "cooling_until": None, "requests": 0,
         "rate_limited": 0, "quota_exhausted": 0, "failures": 1},
    ]
    assert pool.describe() == (
        f"3 keys: {fingerprint(KEY_A)} healthy, {fingerprint(KEY_B)} cooling 12s, {fingerprint(KEY_C)} disabled"
    )


def test_a_fingerprint_is_a_short_stable_hash():
    """`key-` and 8 hex digits, the same for the same key, different for different keys."""
    assert fingerprint(KEY_A) == fingerprint(KEY_A)
    assert fingerprint(KEY_A) != fingerprint(KEY_B)
    assert fingerprint(KEY_A).startswith("key-") and len(fingerprint(KEY_A)) == 12
    int(fingerprint(KEY_A)[4:], 16)


def test_no_key_appears_in_any_repr_str_snapshot_banner_log_or_error(key_log):
    """Keys are shown by fingerprint only, everywhere the pool writes text."""
    pool, clock = make_pool()
    shown = [repr(pool), str(pool)]
    for key in pool.keys:
        shown += [repr(key), str(key), f"{key}", f"{key!r}"]
    pool.report(pool.keys[0], 429, OPENAI_RATE_LIMIT, retry_after="5")
    pool.report(pool.keys[1], 429, OPENAI_QUOTA)
    pool.report(pool.keys[2], 401, OPENAI_INVALID_KEY)
    pool.report(pool.keys[2], 403, b"")
    shown += [repr(pool), json.dumps(pool.snapshot()), pool.describe()]
    with pytest.raises(AllKeysCooling) as caught:
        pool.pick()
    shown += [str(caught.value), repr(caught.value), caught.value.message]
    clock.advance(5)
    pool.pick()
    shown += [record.getMessage() for record in key_log.records]
    assert key_log.records, "the pool logs its steps"
    text = "\n".join(shown)
    for secret in ALL_KEYS:
        assert secret not in text
        assert secret[-8:] not in text
    for secret in ALL_KEYS:
        assert fingerprint(secret) in text
