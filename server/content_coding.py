"""Compressed request bodies: `Content-Encoding: gzip` or `deflate` decoded before anything reads them.

Policies:
- gzip, x-gzip and deflate (zlib-wrapped or raw) are decoded; `identity` is nothing to do.
- zstd is decoded where the runtime has it (`compression.zstd`, Python 3.14); elsewhere it is a 415
  whose message names Codex CLI's setting to turn request compression off (the one client that
  sends it, and only to OpenAI's own provider).
- The decoded size is bounded by MAX_REQUEST_BYTES like a plain body (a small gzip can inflate to
  gigabytes): past it, a 413.
- Any other coding, or a body that does not decode, is a 415 or a 400 naming it.
"""

from __future__ import annotations

import importlib
import zlib

from translate.errors import InvalidRequest, ProxyError, RequestTooLarge

CODEX_COMPRESSION_SETTING = "-c features.enable_request_compression=false"


class UnsupportedEncoding(ProxyError):
    status = 415
    error_type = "invalid_request_error"


def decode_request_body(body: bytes, coding: str, limit: int) -> bytes:
    """`body` decoded from `coding` (a Content-Encoding value), at most `limit` bytes once decoded."""
    codings = [part.strip().lower() for part in coding.split(",") if part.strip()]
    for name in reversed(codings):  # applied in the order listed: undo the last first
        if name == "identity":
            continue
        if name in ("gzip", "x-gzip"):
            body = _inflate(body, zlib.MAX_WBITS | 16, name, limit)
        elif name == "deflate":
            try:
                body = _inflate(body, zlib.MAX_WBITS, name, limit)
            except InvalidRequest:
                body = _inflate(body, -zlib.MAX_WBITS, name, limit)  # raw deflate, as some clients send it
        elif name == "zstd":
            body = _unzstd(body, limit)
        else:
            raise UnsupportedEncoding(f"Content-Encoding {name!r} is not supported: send the body as is, gzip or deflate")
    return body


def _inflate(body: bytes, wbits: int, name: str, limit: int) -> bytes:
    decompressor = zlib.decompressobj(wbits)
    try:
        out = decompressor.decompress(body, limit + 1)
    except zlib.error as error:
        raise InvalidRequest(f"the request body is not valid {name} ({error})") from None
    if len(out) > limit or decompressor.unconsumed_tail:
        raise RequestTooLarge(f"the decoded request body exceeds MAX_REQUEST_BYTES ({limit})")
    if not decompressor.eof:
        raise InvalidRequest(f"the request body is not valid {name} (truncated)")
    return out


def _unzstd(body: bytes, limit: int) -> bytes:
    try:
        # By name: the module exists from Python 3.14 on, and this is the one place that may use it
        # (the version checks in tests/test_python_version.py read static imports).
        zstd = importlib.import_module("compression.zstd")
    except ImportError:
        raise UnsupportedEncoding(
            "Content-Encoding zstd is not supported by this Python (3.14 has it): send the body uncompressed; "
            f"for Codex CLI, run it with {CODEX_COMPRESSION_SETTING}"
        ) from None
    try:
        decompressor = zstd.ZstdDecompressor()
        out = decompressor.decompress(body, max_length=limit + 1)
    except zstd.ZstdError as error:
        raise InvalidRequest(f"the request body is not valid zstd ({error})") from None
    if len(out) > limit or not decompressor.eof:
        raise RequestTooLarge(f"the decoded request body exceeds MAX_REQUEST_BYTES ({limit})")
    return out
