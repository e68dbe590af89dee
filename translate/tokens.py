"""A local, deterministic estimate of the input tokens of an Anthropic Messages request.

`POST /v1/messages/count_tokens` is answered from this module with no network call. Claude Code
calls it often (dozens of times in its first second) and decides when to compact a conversation
from the answer, so the estimate must be fast, must never fail on a body it does not understand,
and must count everything the model will read: system, messages, tool definitions and images.

Policies and known shortcuts:
- The request is rendered once into one plain text, in Anthropic's prompt order: every tool as
  name, description and compact JSON `input_schema`; the system blocks; each message's text, tool
  calls as name plus compact JSON input, and tool results. Pieces are joined by newlines. That
  text is estimated in one pass; everything that is not text (images, PDFs, markup around turns
  and tools) is a fixed number of tokens added beside it. `input_breakdown()` returns both
  halves, which is how the accuracy bench compares the text half against a real tokenizer.
- Text is estimated per byte, from the byte's class and whether it starts a run of its class:
  letters, digits, ASCII punctuation, line breaks, spaces, and the lead bytes of multi-byte UTF-8
  characters by script (accented Latin, other alphabets, general punctuation and symbols, CJK and
  kana, Hangul, emoji). A letter run is roughly a word and costs most of a token; long words cost
  a little more per letter; a CJK character costs about one token. The weights were fitted by
  non-negative least squares against the legacy (Claude 2 era) BPE tokenizer, the only Claude
  tokenizer published (see `bench/token_accuracy.py`); current models tokenize differently, so
  the figures are indicative. Weights are never negative, so adding text never lowers the count.
- Speed: the per-byte work is done in C by the standard library: `bytes.translate` maps bytes to
  class bits, one big-integer shift finds where runs start, a second `translate` maps each
  (class, run start) byte to its weight, and `zlib.adler32` over 1 KiB slices sums the weights
  (its low half is the plain byte sum modulo 65521, exact while a slice sums below that).
  Python-level loops and regular expressions are 5 to 10 times slower on a 76 KB request.
- Tools: when any tool is present Anthropic adds a tool-use system prompt of a documented size,
  346 tokens with `tool_choice` auto or none and 313 with any or tool (current Claude models; the
  tool-use docs list it per model). Each tool adds a few tokens of markup. Server tools
  (`web_search_*`, `bash_*`, ...) have no schema here: their documented or guessed definition size
  is added instead.
- Images: Anthropic's documented rule, tokens = width * height / 750, after scaling the long edge
  down to 1568 px and the area down to 1.2 megapixels (~1,600 tokens, the largest sizes in the
  docs' table). Width and height come from the first bytes of the base64 data (PNG, GIF, WebP,
  JPEG; a JPEG's frame header is found by decoding only the few bytes of each segment header).
  A URL, a file id, or an unreadable header counts as the maximum, 1,600 tokens.
- PDFs: each page costs text (the docs say 1,500 to 3,000 tokens) plus the page image; we count
  3,000 a page. The page count is read from a linearised PDF's `/N` or a page tree's `/Count` in
  the first and last few KiB; otherwise it is guessed from the size at 50 KB a page. Decoding
  a whole PDF to count `/Type /Page` would cost milliseconds per megabyte.
- Thinking blocks count as their text (Anthropic may drop those of earlier turns; counting them
  errs high, which makes a client compact a little early rather than run into "prompt is too
  long"). A `redacted_thinking` blob counts as the text it would decode to: 3 bytes per 4 base64
  characters, 4 bytes per token. Signatures and `cache_control` are not model input.
- Unknown block types and odd shapes are counted as their compact JSON; values of the wrong
  type are skipped. Nesting deeper than `MAX_NESTING` is ignored. Nothing here raises.
"""

from __future__ import annotations

import binascii
import json
import re
import zlib
from dataclasses import dataclass

# --------------------------------------------------------------------------------------------
# Fixed costs (tokens)
# --------------------------------------------------------------------------------------------

# Start and end of the prompt. With MESSAGE_OVERHEAD_TOKENS this puts the docs' count_tokens
# example (system "You are a scientist", one user turn "Hello, Claude": 14 tokens) within one.
REQUEST_OVERHEAD_TOKENS = 4
# The role marker of each turn ("\n\nHuman: " is 3 to 4 tokens in the legacy tokenizer).
MESSAGE_OVERHEAD_TOKENS = 3
# Markup around a tool call or a tool result (invoke/parameter or result tags). Assumed.
TOOL_USE_OVERHEAD_TOKENS = 10
TOOL_RESULT_OVERHEAD_TOKENS = 8
# Markup around each tool definition in the tool-use system prompt. Assumed.
TOOL_DEFINITION_OVERHEAD_TOKENS = 8
# Anthropic docs ("Tool use system prompt token count", Claude 4 family and later).
TOOL_SYSTEM_PROMPT_TOKENS_AUTO = 346
TOOL_SYSTEM_PROMPT_TOKENS_FORCED = 313
# Definitions Anthropic inserts for its own tools, by `type` prefix. bash and text_editor are
# documented (245 and 700 input tokens), computer use too (735, plus its system prompt ~466);
# the rest is a guess of the same order.
SERVER_TOOL_DEFINITION_TOKENS = (
    ("bash_", 245),
    ("text_editor_", 700),
    ("computer_", 1200),
)
SERVER_TOOL_DEFAULT_DEFINITION_TOKENS = 300

IMAGE_PIXELS_PER_TOKEN = 750
IMAGE_MAX_LONG_EDGE_PX = 1568
IMAGE_MAX_PIXELS = 1_200_000
IMAGE_UNKNOWN_SIZE_TOKENS = 1600

PDF_TOKENS_PER_PAGE = 3000
PDF_BYTES_PER_PAGE_GUESS = 50_000
# How much of a PDF's start and end is decoded to look for its page count.
PDF_PROBE_BYTES = 4096

# `redacted_thinking.data`: base64 (3 bytes per 4 characters) of roughly 4 bytes of text a token.
REDACTED_THINKING_CHARS_PER_TOKEN = 16 / 3

# Content nested deeper than this (tool_result -> document -> content -> ...) is ignored; real
# requests use three or four levels, and the limit keeps recursion bounded on hostile input.
MAX_NESTING = 12

# --------------------------------------------------------------------------------------------
# Text: byte classes and weights
# --------------------------------------------------------------------------------------------

# Class bits of a byte (low nibble). The four one-bit classes are the ones whose runs matter;
# their "run starts here" bits are computed into the high nibble. Lead bytes of multi-byte
# characters use codes of two or three bits, which are never run classes (their start bits are
# ignored); continuation bytes and spaces are 0, so an ASCII character after a multi-byte one
# still starts its run.
_LETTER, _DIGIT, _PUNCT, _BREAK = 1, 2, 4, 8
_LEAD_LATIN = 3  # C2-C5: accented Latin letters, Latin-1 symbols
_LEAD_GREEK = 11  # CD-CF: combining marks, Greek
_LEAD_ALPHABET = 10  # C6-CC, D0-DF: Latin extended, IPA, Cyrillic, Armenian, Hebrew, Arabic, ...
_LEAD_SYMBOL = 5  # E2: general punctuation, arrows, maths, box drawing, dingbats
_LEAD_OTHER3 = 12  # E0-E1, EE-EF: Indic, Thai, ..., private use, fullwidth forms
_LEAD_CJK = 6  # E3-E9: CJK punctuation, kana, CJK ideographs
_LEAD_HANGUL = 7  # EA-ED: Hangul syllables (and surrogates passed through)
_LEAD_FOUR = 9  # F0-F7: emoji and other supplementary-plane characters

# Weights in sixteenths of a token, fitted by non-negative least squares against the legacy
# Claude BPE tokenizer on prose, source code, JSON, tool schemas and seven other languages
# (bench/token_accuracy.py has the requests), then rounded. Read: a word costs 12/16 for starting
# plus 1/16 a letter; a run of punctuation 15/16 plus 1/16 a character; a number 16/16 plus 2/16
# a digit; a line break 18/16 for a run plus 1/16 each; a space between words nothing. Lead bytes
# carry the whole cost of their character: Cyrillic 9/16, CJK 15/16, Greek 21/16, Hangul 22/16,
# an accented Latin letter 44/16 (it splits the word around it), an emoji 48/16. The scripts the
# fit saw little of (Thai, Devanagari: "other 3-byte") were set by hand from a few sentences.
TEXT_WEIGHT_UNITS_PER_TOKEN = 16
_RUN_START_WEIGHT = {_LETTER: 12, _DIGIT: 16, _PUNCT: 15, _BREAK: 18}
_CHAR_WEIGHT = {
    0: 0,  # space (and UTF-8 continuation bytes, which the lead byte pays for)
    _LETTER: 1,
    _DIGIT: 2,
    _PUNCT: 1,
    _BREAK: 1,
    _LEAD_LATIN: 44,
    _LEAD_ALPHABET: 9,
    _LEAD_GREEK: 21,
    _LEAD_SYMBOL: 24,
    _LEAD_OTHER3: 20,
    _LEAD_CJK: 15,
    _LEAD_HANGUL: 22,
    _LEAD_FOUR: 48,
}
# Slice length for the adler32 sum: the largest byte weight times this stays below 65521.
_SUM_SLICE_BYTES = 1024


def _byte_class(byte: int) -> int:
    if byte < 0x80:
        char = chr(byte)
        if char.isalpha():
            return _LETTER
        if char.isdigit():
            return _DIGIT
        if char == " ":
            return 0
        if char in "\n\r\t" or byte < 0x20 or byte == 0x7F:
            return _BREAK
        return _PUNCT
    if byte < 0xC0:
        return 0
    if byte < 0xC6:
        return _LEAD_LATIN
    if 0xCD <= byte <= 0xCF:
        return _LEAD_GREEK
    if byte < 0xE0:
        return _LEAD_ALPHABET
    if byte == 0xE2:
        return _LEAD_SYMBOL
    if 0xE3 <= byte <= 0xE9:
        return _LEAD_CJK
    if 0xEA <= byte <= 0xED:
        return _LEAD_HANGUL
    if byte < 0xF0:
        return _LEAD_OTHER3
    return _LEAD_FOUR


def _code_weight(code: int) -> int:
    char_class, starts = code & 0x0F, code >> 4
    weight = _CHAR_WEIGHT.get(char_class, 0)
    if char_class in _RUN_START_WEIGHT and starts & char_class:
        weight += _RUN_START_WEIGHT[char_class]
    return weight


_CLASS_OF_BYTE = bytes(_byte_class(b) for b in range(256))
_WEIGHT_OF_CODE = bytes(_code_weight(code) for code in range(256))
assert max(_WEIGHT_OF_CODE) * _SUM_SLICE_BYTES < 65521


def estimate_text_tokens(text: str) -> int:
    """Estimated tokens of `text` alone (no message or request overhead); 0 for "".

    Deterministic and monotone: appending or inserting characters never lowers the result.
    """
    if not text:
        return 0
    # surrogatepass: a lone surrogate (from JSON "\\ud800") must not raise.
    data = text.encode("utf-8", "surrogatepass")
    classes = int.from_bytes(data.translate(_CLASS_OF_BYTE), "little")
    # Shifting by one byte lines each byte up with the class bits of the byte before it: a class
    # bit set in a byte and clear in the one before marks the start of a run.
    run_starts = classes ^ (classes & (classes << 8))
    codes = (classes | (run_starts << 4)).to_bytes(len(data), "little")
    weights = memoryview(codes.translate(_WEIGHT_OF_CODE))
    units = 0
    for start in range(0, len(weights), _SUM_SLICE_BYTES):
        # adler32 starting from 0 keeps the plain byte sum (mod 65521) in its low 16 bits.
        units += zlib.adler32(weights[start : start + _SUM_SLICE_BYTES], 0) & 0xFFFF
    return (units + TEXT_WEIGHT_UNITS_PER_TOKEN // 2) // TEXT_WEIGHT_UNITS_PER_TOKEN


# --------------------------------------------------------------------------------------------
# Images and documents
# --------------------------------------------------------------------------------------------


def image_tokens_for_size(width: int, height: int) -> int:
    """Tokens Anthropic bills for an image of `width` x `height` pixels (documented formula)."""
    if width <= 0 or height <= 0:
        return IMAGE_UNKNOWN_SIZE_TOKENS
    scale = min(1.0, IMAGE_MAX_LONG_EDGE_PX / max(width, height))
    w, h = width * scale, height * scale
    if w * h > IMAGE_MAX_PIXELS:
        area_scale = (IMAGE_MAX_PIXELS / (w * h)) ** 0.5
        w, h = w * area_scale, h * area_scale
    # Whole pixels (rounding down keeps the area within the cap), then round tokens up.
    pixels = max(1, int(w)) * max(1, int(h))
    return -(-pixels // IMAGE_PIXELS_PER_TOKEN)


def _base64_payload(data: str) -> str:
    # Some clients send a whole data URL; the payload follows the first comma.
    if data.startswith("data:"):
        return data.partition(",")[2]
    return data


def _decode_window(payload: str, offset: int, length: int) -> bytes:
    """Bytes [offset, offset + length) of the base64 `payload`, decoding only that window."""
    first_group = offset // 3
    last_group = -(-(offset + length) // 3)
    chunk = payload[first_group * 4 : last_group * 4]
    try:
        raw = binascii.a2b_base64(chunk)
    except (binascii.Error, ValueError):
        return b""
    skip = offset - first_group * 3
    return raw[skip : skip + length]


def _jpeg_size(payload: str) -> tuple[int, int] | None:
    position = 2  # after SOI
    for _ in range(64):  # APP and other segments before the frame header; bounded on junk
        header = _decode_window(payload, position, 9)
        if len(header) < 4 or header[0] != 0xFF:
            return None
        marker = header[1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if len(header) < 9:
                return None
            return int.from_bytes(header[7:9], "big"), int.from_bytes(header[5:7], "big")
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        position += 2 + int.from_bytes(header[2:4], "big")
    return None


def image_size_from_base64(data: str) -> tuple[int, int] | None:
    """(width, height) read from the header of a base64 PNG, GIF, WebP or JPEG, else None.

    Decodes a few dozen bytes (a JPEG: a few bytes per segment header), never the whole image.
    """
    payload = _base64_payload(data)
    head = _decode_window(payload, 0, 32)
    size: tuple[int, int] | None = None
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
        size = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    elif head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        size = int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:
        chunk = head[12:16]
        if chunk == b"VP8X":
            size = 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
        elif chunk == b"VP8L":
            bits = int.from_bytes(head[21:25], "little")
            size = 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        elif chunk == b"VP8 ":  # key frame: 3-byte tag, 3-byte start code, then 14-bit sizes
            width, height = int.from_bytes(head[26:28], "little"), int.from_bytes(head[28:30], "little")
            size = width & 0x3FFF, height & 0x3FFF
    elif head[:2] == b"\xff\xd8":
        size = _jpeg_size(payload)
    if size is None or not (0 < size[0] <= 100_000 and 0 < size[1] <= 100_000):
        return None
    return size


def _image_tokens(source: object) -> int:
    if isinstance(source, dict) and source.get("type") == "base64":
        data = source.get("data")
        if isinstance(data, str):
            size = image_size_from_base64(data)
            if size is not None:
                return image_tokens_for_size(*size)
    return IMAGE_UNKNOWN_SIZE_TOKENS


# At most 5 digits: Python refuses to parse very long digit strings, and no PDF has 10^5 pages.
_PDF_LINEARIZED_PAGES = re.compile(rb"/Linearized\b[^>]*?/N\s+(\d{1,5})\b")
_PDF_PAGE_TREE_COUNT = re.compile(
    rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d{1,5})\b|/Count\s+(\d{1,5})\b[^>]*?/Type\s*/Pages\b"
)


def pdf_page_count_from_base64(data: str) -> int:
    """Pages of a base64 PDF: from its header or page tree if visible near either end, else
    guessed from its size at PDF_BYTES_PER_PAGE_GUESS. Always at least 1."""
    payload = _base64_payload(data)
    size_bytes = len(payload) * 3 // 4
    head = _decode_window(payload, 0, PDF_PROBE_BYTES)
    found = _PDF_LINEARIZED_PAGES.search(head)
    if found:
        return max(1, int(found.group(1)))
    tail = _decode_window(payload, max(0, size_bytes - PDF_PROBE_BYTES), PDF_PROBE_BYTES)
    counts = [int(a or b) for window in (head, tail) for a, b in _PDF_PAGE_TREE_COUNT.findall(window)]
    if counts:
        return max(1, max(counts))
    return max(1, -(-size_bytes // PDF_BYTES_PER_PAGE_GUESS))


# --------------------------------------------------------------------------------------------
# Request walk
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputBreakdown:
    """An estimate split into the rendered text and the fixed costs beside it."""

    text: str  # everything the estimate reads as text, pieces joined by "\n"
    text_tokens: int  # estimate_text_tokens(text)
    fixed_tokens: int  # images, documents, turn and tool markup, tool-use system prompt

    @property
    def total(self) -> int:
        return self.text_tokens + self.fixed_tokens


class _Tally:
    """Accumulates text pieces and fixed tokens during one walk of a request."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.fixed_tokens = 0


# Configuration only: encode() keeps no state between calls. Non-ASCII stays as characters, since
# "\u00e9" escapes would be counted as six ASCII characters.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), skipkeys=True, default=str)


def _compact_json(value: object) -> str:
    try:
        return _COMPACT_JSON.encode(value)
    except (ValueError, TypeError, RecursionError):  # circular, or nested past the C stack
        return ""


def _add_text(value: object, tally: _Tally) -> None:
    if isinstance(value, str):
        if value:
            tally.texts.append(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        # Through the encoder, which turns an int too long to print into "" instead of raising.
        _add_text(_compact_json(value), tally)


def _add_content(content: object, tally: _Tally, depth: int) -> None:
    """A `content` field: a string, a list of blocks, or (leniently) a single block."""
    if depth > MAX_NESTING:
        return
    if isinstance(content, str):
        _add_text(content, tally)
    elif isinstance(content, list):
        for block in content:
            _add_block(block, tally, depth + 1)
    elif isinstance(content, dict):
        _add_block(content, tally, depth + 1)


def _add_document(block: dict, tally: _Tally, depth: int) -> None:
    _add_text(block.get("title"), tally)
    _add_text(block.get("context"), tally)
    source = block.get("source")
    if not isinstance(source, dict):
        tally.fixed_tokens += PDF_TOKENS_PER_PAGE
        return
    kind, data = source.get("type"), source.get("data")
    if kind == "text":
        _add_text(data, tally)
    elif kind == "content":
        _add_content(source.get("content"), tally, depth)
    elif kind == "base64" and isinstance(data, str):
        tally.fixed_tokens += PDF_TOKENS_PER_PAGE * pdf_page_count_from_base64(data)
    else:  # url, file id, or unknown: one page, as we cannot see it
        tally.fixed_tokens += PDF_TOKENS_PER_PAGE


def _add_block(block: object, tally: _Tally, depth: int) -> None:
    if depth > MAX_NESTING:
        return
    if not isinstance(block, dict):
        _add_text(block, tally)
        return
    kind = block.get("type")
    if kind == "text":
        _add_text(block.get("text"), tally)
    elif kind == "image":
        tally.fixed_tokens += _image_tokens(block.get("source"))
    elif kind == "document":
        _add_document(block, tally, depth)
    elif kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
        tally.fixed_tokens += TOOL_USE_OVERHEAD_TOKENS
        _add_text(block.get("name"), tally)
        tool_input = block.get("input")
        if isinstance(tool_input, str):  # a client that forgot to parse its partial JSON
            _add_text(tool_input, tally)
        elif tool_input:
            _add_text(_compact_json(tool_input), tally)
    elif kind == "tool_result":
        tally.fixed_tokens += TOOL_RESULT_OVERHEAD_TOKENS
        _add_content(block.get("content"), tally, depth)
    elif kind == "thinking":
        _add_text(block.get("thinking"), tally)
    elif kind == "redacted_thinking":
        data = block.get("data")
        if isinstance(data, str):
            tally.fixed_tokens += int(len(data) / REDACTED_THINKING_CHARS_PER_TOKEN)
    elif kind == "search_result":
        _add_text(block.get("source"), tally)
        _add_text(block.get("title"), tally)
        _add_content(block.get("content"), tally, depth)
    else:
        # Unknown or pass-through types (web_search_tool_result, tool_reference, container_upload,
        # a future block): the model reads something like their fields, so count their JSON.
        if isinstance(kind, str) and kind.endswith("_tool_result"):
            tally.fixed_tokens += TOOL_RESULT_OVERHEAD_TOKENS
        fields = {k: v for k, v in block.items() if k not in ("cache_control", "signature")}
        _add_text(_compact_json(fields), tally)


def _add_system(system: object, tally: _Tally) -> None:
    if isinstance(system, str):
        _add_text(system, tally)
    elif isinstance(system, list):
        # Text blocks are joined like a string prompt: one block equals the same string.
        for block in system:
            if isinstance(block, dict) and block.get("type", "text") == "text":
                _add_text(block.get("text"), tally)
            else:
                _add_block(block, tally, 1)


def _add_messages(messages: object, tally: _Tally) -> None:
    if not isinstance(messages, list):
        return
    for message in messages:
        if not isinstance(message, dict):
            continue
        tally.fixed_tokens += MESSAGE_OVERHEAD_TOKENS
        _add_content(message.get("content"), tally, 0)


def _server_tool_tokens(tool_type: str) -> int:
    for prefix, tokens in SERVER_TOOL_DEFINITION_TOKENS:
        if tool_type.startswith(prefix):
            return tokens
    return SERVER_TOOL_DEFAULT_DEFINITION_TOKENS


def _add_tools(tools: object, tool_choice: object, tally: _Tally) -> None:
    if not isinstance(tools, list) or not tools:
        return
    forced = isinstance(tool_choice, dict) and tool_choice.get("type") in ("any", "tool")
    tally.fixed_tokens += TOOL_SYSTEM_PROMPT_TOKENS_FORCED if forced else TOOL_SYSTEM_PROMPT_TOKENS_AUTO
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        tally.fixed_tokens += TOOL_DEFINITION_OVERHEAD_TOKENS
        tool_type = tool.get("type")
        schema = tool.get("input_schema")
        if schema is None and isinstance(tool_type, str) and tool_type != "custom":
            # A server tool: Anthropic supplies its definition; its config is read as JSON.
            tally.fixed_tokens += _server_tool_tokens(tool_type)
            _add_text(_compact_json({k: v for k, v in tool.items() if k != "cache_control"}), tally)
            continue
        _add_text(tool.get("name"), tally)
        _add_text(tool.get("description"), tally)
        if schema is not None:
            _add_text(_compact_json(schema), tally)


def _add_output_format(output_config: object, tally: _Tally) -> None:
    # Structured outputs put the JSON schema in front of the model.
    if isinstance(output_config, dict):
        output_format = output_config.get("format")
        if isinstance(output_format, dict) and output_format.get("schema") is not None:
            _add_text(_compact_json(output_format.get("schema")), tally)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def input_breakdown(body: object) -> InputBreakdown:
    """The estimate for an Anthropic Messages (or count_tokens) request body, split into the
    rendered text with its token estimate and the fixed costs. Never raises; a body that is not
    a dict counts as an empty request."""
    tally = _Tally()
    if isinstance(body, dict):
        tally.fixed_tokens += REQUEST_OVERHEAD_TOKENS
        # `tool_choice` only picks the size of the tool-use prompt; `thinking` adds no input.
        _add_tools(body.get("tools"), body.get("tool_choice"), tally)
        _add_system(body.get("system"), tally)
        _add_messages(body.get("messages"), tally)
        _add_output_format(body.get("output_config"), tally)
    text = "\n".join(tally.texts)
    return InputBreakdown(
        text=text, text_tokens=estimate_text_tokens(text), fixed_tokens=tally.fixed_tokens
    )


def estimate_input_tokens(body: dict) -> int:
    """Estimated `input_tokens` for `body`, an Anthropic Messages / count_tokens request.

    Counts system, messages (all block types, tool results recursively), tool definitions with
    the tool-use system prompt, images and PDFs. Returns an int >= 0; never raises, whatever the
    shape of `body`. The answer for `POST /v1/messages/count_tokens` is {"input_tokens": <this>}.
    """
    return input_breakdown(body).total
