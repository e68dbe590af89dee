"""One family of errors for the whole proxy, and the two envelopes it is rendered into.

Policies:
- Every failure the proxy reports is a `ProxyError` carrying an HTTP status and an Anthropic error
  type. It may be raised anywhere (translators, upstream client, handlers) and is rendered into the
  front's envelope in exactly one place (server/connection.py, with each dialect's envelope declared
  in translate/dialects.py), or, once a stream has started, by the stream translator's `fail()`.
- Upstream error responses keep their meaning: `error_from_upstream` maps the status and keeps the
  upstream's message. A context-length error becomes a 400 whose message contains
  "prompt is too long", the only text Claude Code recognises before it compacts a session.
- Messages are plain sentences meant for the person reading the client's error, never stack traces.
"""

from __future__ import annotations

import json

# Anthropic error types by HTTP status (PROTOCOLS.md 1.7).
ANTHROPIC_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    414: "invalid_request_error",
    429: "rate_limit_error",
    431: "invalid_request_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    508: "api_error",
    529: "overloaded_error",
}

# OpenAI error types and codes by Anthropic error type (PROTOCOLS.md 2.4, 3.6).
OPENAI_TYPE_BY_ANTHROPIC_TYPE = {
    "invalid_request_error": ("invalid_request_error", None),
    "authentication_error": ("authentication_error", "invalid_api_key"),
    "billing_error": ("insufficient_quota", "insufficient_quota"),
    "permission_error": ("permission_error", None),
    "not_found_error": ("not_found_error", "model_not_found"),
    "conflict_error": ("conflict_error", None),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit_error": ("rate_limit_error", "rate_limit_exceeded"),
    "api_error": ("server_error", None),
    "overloaded_error": ("server_error", "overloaded"),
    "timeout_error": ("timeout_error", "timeout"),
}

# Upstream statuses worth retrying (or falling back from) while nothing has reached the client.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 529})
# A 429 that means "out of money", not "slow down": retrying cannot help.
NOT_RETRYABLE_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})


class ProxyError(Exception):
    """An error to report to the client: an HTTP status, an Anthropic error type and a message.

    `param` names the offending request field when known; `retry_after` is passed on to the client
    as the `retry-after` header. `retryable` marks failures worth another attempt (connect errors,
    429, 500, 502, 503, 529) while nothing has reached the client yet.
    """

    status = 500
    error_type = "api_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        retry_after: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        # The upstream's own error response, kept so passthrough can return it untouched.
        self.upstream_status: int | None = None
        self.upstream_body: bytes | None = None
        self.upstream_content_type: str | None = None
        self.message = message
        if status is not None:
            self.status = status
        if error_type is not None:
            self.error_type = error_type
        elif status is not None:
            self.error_type = ANTHROPIC_TYPE_BY_STATUS.get(status, type(self).error_type)
        self.param = param
        self.code = code
        self.retry_after = retry_after


class InvalidRequest(ProxyError):
    status = 400
    error_type = "invalid_request_error"


class AuthenticationFailed(ProxyError):
    status = 401
    error_type = "authentication_error"


class NotFound(ProxyError):
    status = 404
    error_type = "not_found_error"


class RequestTooLarge(ProxyError):
    status = 413
    error_type = "request_too_large"


class UpstreamUnavailable(ProxyError):
    """The upstream could not be reached or broke the protocol (connect, read or write failure)."""

    status = 502
    error_type = "api_error"


class UpstreamTimeout(ProxyError):
    """The upstream was silent for longer than the configured timeout."""

    status = 504
    error_type = "timeout_error"


class Overloaded(ProxyError):
    status = 529
    error_type = "overloaded_error"


# ---------------------------------------------------------------------------------------------
# Envelopes
# ---------------------------------------------------------------------------------------------


def anthropic_error_body(error: ProxyError) -> dict:
    """The Anthropic error envelope: {"type": "error", "error": {"type", "message"}}."""
    return {"type": "error", "error": {"type": error.error_type, "message": error.message}}


def chat_error_body(error: ProxyError) -> dict:
    """The OpenAI error envelope: {"error": {"message", "type", "param", "code"}}."""
    openai_type, code = OPENAI_TYPE_BY_ANTHROPIC_TYPE.get(error.error_type, ("server_error", None))
    return {
        "error": {
            "message": error.message,
            "type": openai_type,
            "param": error.param,
            "code": error.code or code,
        }
    }


def chat_status(error: ProxyError) -> int:
    """The status an OpenAI client should see: it knows no 529, so overload becomes 503."""
    return 503 if error.status == 529 else error.status


# ---------------------------------------------------------------------------------------------
# Upstream error responses
# ---------------------------------------------------------------------------------------------


def _first_error_object(parsed: object) -> dict | None:
    # Google wraps errors in a JSON array; OpenAI and Anthropic use {"error": {...}}.
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    if isinstance(parsed, dict):
        inner = parsed.get("error")
        if isinstance(inner, dict):
            return inner
        if isinstance(inner, str):
            return {"message": inner}
        if "message" in parsed or "detail" in parsed:
            return {"message": parsed.get("message") or parsed.get("detail")}
    return None


def upstream_error_message(body: bytes) -> tuple[str, str | None, str | None]:
    """Extract (message, code, param) from an upstream error body of any known shape."""
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    error = _first_error_object(parsed)
    if error is None:
        return (text[:2000] or "no error message from upstream"), None, None
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = json.dumps(error)[:2000]
    code = error.get("code")
    if code is None:
        code = error.get("status") or error.get("type")
    param = error.get("param")
    return message, (str(code) if code is not None else None), (param if isinstance(param, str) else None)


def is_context_length_error(message: str, code: str | None) -> bool:
    """True when an upstream error says the prompt does not fit the model's context."""
    # OpenAI: code context_length_exceeded. vLLM: "This model's maximum context length is ...".
    # Gemini: "The input token count (N) exceeds the maximum number of tokens allowed (M)".
    # Ollama: "the input length exceeds the context length".
    if code == "context_length_exceeded":
        return True
    lowered = message.lower()
    if "prompt is too long" in lowered:
        return True
    if "context" in lowered and any(word in lowered for word in ("exceed", "too long", "maximum", "limit")):
        return True
    return "token" in lowered and any(word in lowered for word in ("too many", "exceeds the maximum"))


def error_from_upstream(status: int, body: bytes, *, provider: str, retry_after: str | None = None) -> ProxyError:
    """Map an upstream error response to a ProxyError with the status a client should see.

    Statuses keep their meaning (400, 401, 403, 404, 413, 429, 500, 502, 503, 504, 508, 529); 422 becomes
    400, 408 becomes 504, other 5xx become 500 and other 4xx become 400. The upstream's own message is kept, prefixed with the provider name.
    """
    message, code, param = upstream_error_message(body)
    upstream_status = status
    if status in (400, 413, 422) and is_context_length_error(message, code):
        error = InvalidRequest(f"prompt is too long: {message}", code="context_length_exceeded", param=param)
        error.upstream_status = upstream_status  # the upstream said it: a Responses stream reports it in-stream
        return error
    if status == 422:
        status = 400
    elif status == 408:
        status = 504
    elif status >= 500 and status not in (502, 503, 504, 508, 529):
        status = 500
    elif status >= 400 and status not in ANTHROPIC_TYPE_BY_STATUS:
        status = 400
    error = ProxyError(
        f"{provider} upstream: {message}",
        status=status,
        code=code,
        param=param,
        retry_after=retry_after if status == 429 else None,
        retryable=status in RETRYABLE_STATUSES and code not in NOT_RETRYABLE_CODES,
    )
    error.upstream_status = upstream_status
    return error
