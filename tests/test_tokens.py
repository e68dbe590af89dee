"""translate.tokens: the local count_tokens estimate.

Expected integers below are worked out by hand from the weights documented in translate/tokens.py
(sixteenths of a token: a letter run starts at 12 plus 1 a letter, a digit run 16 plus 2 a digit,
a punctuation run 15 plus 1 a character, a line-break run 18 plus 1 a character, a space 0, a CJK
character 15, a Cyrillic letter 9, an emoji 48; totals round half up to whole tokens).
"""

from __future__ import annotations

import base64
import struct
import time
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from translate.tokens import (
    IMAGE_UNKNOWN_SIZE_TOKENS,
    MESSAGE_OVERHEAD_TOKENS,
    PDF_TOKENS_PER_PAGE,
    REQUEST_OVERHEAD_TOKENS,
    TOOL_DEFINITION_OVERHEAD_TOKENS,
    TOOL_RESULT_OVERHEAD_TOKENS,
    TOOL_SYSTEM_PROMPT_TOKENS_AUTO,
    TOOL_SYSTEM_PROMPT_TOKENS_FORCED,
    estimate_input_tokens,
    estimate_text_tokens,
    image_size_from_base64,
    image_tokens_for_size,
    input_breakdown,
    pdf_page_count_from_base64,
)

# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress((b"\x00" + b"\xff" * width) * height)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def image_block(data: bytes, media_type: str = "image/png") -> dict:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": b64(data)}}


def user(content: object) -> dict:
    return {"model": "claude-sonnet-5", "messages": [{"role": "user", "content": content}]}


def coding_tools(count: int = 24) -> list[dict]:
    """Tool definitions about the size of a coding agent's (a paragraph and a small schema each)."""
    description = (
        "Reads a file from the local filesystem. The file_path parameter must be an absolute path. "
        "By default it reads up to 2000 lines from the start; pass offset and limit for long files. "
        "Lines longer than 2000 characters are truncated, and results use cat -n numbering. "
    ) * 3
    schema = {
        "type": "object",
        "properties": {
            "file_path": {"type": "string", "description": "The absolute path to the file to read"},
            "offset": {"type": "number", "exclusiveMinimum": 0, "maximum": 9007199254740991},
            "limit": {"type": "number", "exclusiveMinimum": 0, "maximum": 9007199254740991},
        },
        "required": ["file_path"],
        "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#",
    }
    return [{"name": f"Tool{i}", "description": description, "input_schema": schema} for i in range(count)]


# --------------------------------------------------------------------------------------------
# Text weights, worked by hand
# --------------------------------------------------------------------------------------------


def test_empty_text_is_zero_tokens():
    """An empty string costs nothing."""
    assert estimate_text_tokens("") == 0


def test_two_words_are_two_tokens():
    """'hello world': two letter runs of 12+5 and a free space = 34/16, which rounds to 2."""
    assert estimate_text_tokens("hello world") == 2


def test_letter_digit_and_punctuation_runs_each_cost_about_a_token():
    """'a1.': letter run 13 + digit run 18 + punctuation run 16 = 47/16, which rounds to 3."""
    assert estimate_text_tokens("a1.") == 3


def test_indentation_after_a_line_break_is_one_token_with_it():
    """'if x:\\n    return 1': 14 + 13 + 16 + 19 (break) + 0 (spaces) + 18 + 18 = 98/16 -> 6."""
    assert estimate_text_tokens("if x:\n    return 1") == 6


def test_cjk_characters_cost_about_one_token_each():
    """Four CJK characters: 4 * 15 = 60/16, which rounds to 4 (chars/4 would say 1)."""
    assert estimate_text_tokens("你好世界") == 4


def test_cyrillic_letters_cost_about_half_a_token():
    """Six Cyrillic letters: 6 * 9 = 54/16, which rounds to 3."""
    assert estimate_text_tokens("Привет") == 3


def test_long_text_sums_exactly_across_slices():
    """50,000 emoji (48/16 each) sum to exactly 150,000: the sliced adler32 sum never wraps."""
    assert estimate_text_tokens("😀" * 50_000) == 150_000


def test_lone_surrogates_do_not_raise():
    """A lone surrogate (JSON "\\ud800") is counted, not rejected."""
    assert estimate_text_tokens("a\ud800b") >= 1


def test_json_is_denser_than_prose_of_the_same_length():
    """Compact JSON costs more tokens per character than English prose."""
    prose = "the quick brown fox jumps over the lazy dog " * 20
    payload = '{"id":"a3f9","n":12,"ok":true},' * 28
    assert len(payload) <= len(prose)
    assert estimate_text_tokens(payload) > estimate_text_tokens(prose)


# --------------------------------------------------------------------------------------------
# Monotonicity
# --------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(), st.text())
def test_inserting_text_never_lowers_the_estimate(before, inserted, after):
    """Adding characters anywhere in a text never lowers its estimate."""
    assert estimate_text_tokens(before + inserted + after) >= estimate_text_tokens(before + after)


def test_more_text_means_more_tokens():
    """A paragraph repeated ten times costs about ten times as much."""
    paragraph = "Run the tests before every commit; they must pass. "
    one, ten = estimate_text_tokens(paragraph), estimate_text_tokens(paragraph * 10)
    assert one > 0
    assert 9 * one <= ten <= 11 * one


def test_another_message_raises_the_request_estimate():
    """Appending a turn adds at least its role marker and its text."""
    body = user("What does this function do?")
    longer = {**body, "messages": body["messages"] + [{"role": "assistant", "content": "It parses the config."}]}
    assert estimate_input_tokens(longer) >= estimate_input_tokens(body) + MESSAGE_OVERHEAD_TOKENS + 5


# --------------------------------------------------------------------------------------------
# Request structure
# --------------------------------------------------------------------------------------------


def test_one_short_message_is_text_plus_request_and_turn_overhead():
    """'hello world' as one user turn: 2 text tokens + request 4 + turn 3 = 9."""
    assert REQUEST_OVERHEAD_TOKENS == 4 and MESSAGE_OVERHEAD_TOKENS == 3
    assert estimate_input_tokens(user("hello world")) == 9


def test_docs_count_tokens_example_is_close_to_the_documented_figure():
    """Anthropic's count_tokens example (system + "Hello, Claude") is documented as 14 tokens."""
    body = {"model": "claude-sonnet-5", "system": "You are a scientist", "messages": [{"role": "user", "content": "Hello, Claude"}]}
    assert abs(estimate_input_tokens(body) - 14) <= 2


def test_system_string_and_text_block_list_count_the_same():
    """system as a string equals system as one text block (cache_control is not input)."""
    text = "You are a careful reviewer. Point out bugs first, style last."
    as_string = {"system": text, "messages": [{"role": "user", "content": "Review this."}]}
    as_blocks = {"system": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}], "messages": as_string["messages"]}
    assert estimate_input_tokens(as_string) == estimate_input_tokens(as_blocks)


def test_system_blocks_are_all_counted():
    """Every system block is counted, as Claude Code sends three of them."""
    one = {"system": [{"type": "text", "text": "Block one."}], "messages": []}
    three = {"system": [{"type": "text", "text": "Block one."}, {"type": "text", "text": "Block two is longer than one."}, {"type": "text", "text": "Block three."}], "messages": []}
    assert estimate_input_tokens(three) > estimate_input_tokens(one) + 8


def test_message_content_string_and_text_block_count_the_same():
    """A string content equals the same text in one text block."""
    assert estimate_input_tokens(user("Explain the diff.")) == estimate_input_tokens(user([{"type": "text", "text": "Explain the diff."}]))


def test_system_role_turns_inside_messages_are_counted():
    """Claude Code's role "system" turns count like any other turn."""
    body = user("Hi")
    with_note = {**body, "messages": [{"role": "system", "content": "Agents available: explore, planner."}] + body["messages"]}
    assert estimate_input_tokens(with_note) > estimate_input_tokens(body) + MESSAGE_OVERHEAD_TOKENS


def test_breakdown_total_equals_the_estimate_and_is_deterministic():
    """input_breakdown splits the same total, and the same body always gives the same answer."""
    body = {"system": "Be brief.", "tools": coding_tools(3), "messages": [{"role": "user", "content": [{"type": "text", "text": "List files."}, image_block(png(10, 10))]}]}
    breakdown = input_breakdown(body)
    assert breakdown.total == breakdown.text_tokens + breakdown.fixed_tokens == estimate_input_tokens(body)
    assert breakdown.text_tokens == estimate_text_tokens(breakdown.text)
    assert estimate_input_tokens(body) == estimate_input_tokens(body)


# --------------------------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------------------------


def test_tool_definitions_are_counted_far_above_the_messages():
    """24 tools count more than 10x a bare request: counters that skip tools under-count by 10x."""
    bare = user("Fix the failing test in tests/test_server.py.")
    with_tools = {**bare, "tools": coding_tools(24)}
    assert estimate_input_tokens(with_tools) > 10 * estimate_input_tokens(bare)


def test_tools_add_the_documented_tool_use_system_prompt():
    """One tool adds the 346-token tool prompt, its markup and its name, description and schema."""
    bare = user("hi")
    tool = {"name": "get_weather", "description": "Weather for a city", "input_schema": {"type": "object"}}
    rendered = 'get_weather\nWeather for a city\n{"type":"object"}\nhi'  # tools come first
    text_cost = estimate_text_tokens(rendered) - estimate_text_tokens("hi")
    expected = TOOL_SYSTEM_PROMPT_TOKENS_AUTO + TOOL_DEFINITION_OVERHEAD_TOKENS + text_cost
    assert estimate_input_tokens({**bare, "tools": [tool]}) - estimate_input_tokens(bare) == expected


def test_forced_tool_choice_uses_the_smaller_documented_prompt():
    """tool_choice any/tool uses the 313-token prompt instead of 346."""
    body = {**user("hi"), "tools": coding_tools(2)}
    auto = estimate_input_tokens({**body, "tool_choice": {"type": "auto"}})
    forced = estimate_input_tokens({**body, "tool_choice": {"type": "any"}})
    named = estimate_input_tokens({**body, "tool_choice": {"type": "tool", "name": "Tool0"}})
    assert auto - forced == TOOL_SYSTEM_PROMPT_TOKENS_AUTO - TOOL_SYSTEM_PROMPT_TOKENS_FORCED
    assert named == forced
    assert estimate_input_tokens(body) == auto


def test_server_tools_without_input_schema_are_counted():
    """A web search server tool (type and name only) adds its definition, not nothing."""
    body = user("What changed in the latest release?")
    with_search = {**body, "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]}
    assert estimate_input_tokens(with_search) >= estimate_input_tokens(body) + TOOL_SYSTEM_PROMPT_TOKENS_AUTO + 200


def test_tool_use_input_is_counted():
    """A tool call's arguments are read by the model: a longer command costs more."""
    def call(command: str) -> dict:
        return {"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": command}}]}]}

    assert estimate_input_tokens(call("ls -la /srv/app && git status && python -m pytest -q tests")) > estimate_input_tokens(call("ls")) + 10


# --------------------------------------------------------------------------------------------
# Tool results
# --------------------------------------------------------------------------------------------


def result(content: object) -> dict:
    return user([{"type": "tool_result", "tool_use_id": "toolu_1", "content": content}])


def test_tool_result_nested_text_is_counted():
    """Text inside a tool_result, as a string or as nested blocks, is counted in full."""
    output = "def parse(line):\n    key, _, value = line.partition('=')\n    return key.strip(), value.strip()\n" * 20
    empty = estimate_input_tokens(result([]))
    as_string = estimate_input_tokens(result(output))
    as_blocks = estimate_input_tokens(result([{"type": "text", "text": output}]))
    assert as_string == as_blocks
    assert as_string - empty == estimate_text_tokens(output)


def test_empty_tool_result_still_costs_its_markup():
    """A tool_result with no content costs the result markup."""
    assert estimate_input_tokens(result(None)) == estimate_input_tokens(user([])) + TOOL_RESULT_OVERHEAD_TOKENS


def test_images_inside_tool_results_use_their_header_size():
    """A screenshot inside a tool_result is counted by its dimensions."""
    small = estimate_input_tokens(result([{"type": "text", "text": "screenshot"}, image_block(png(100, 100))]))
    large = estimate_input_tokens(result([{"type": "text", "text": "screenshot"}, image_block(png(1000, 1000))]))
    assert large - small == 1334 - 14


def test_tool_reference_and_unknown_blocks_in_tool_results_are_counted():
    """Blocks of types we do not know are counted as their JSON, not dropped or rejected."""
    plain = estimate_input_tokens(result([]))
    with_reference = estimate_input_tokens(result([{"type": "tool_reference", "tool_name": "mcp__github__search_code"}]))
    assert with_reference > plain


# --------------------------------------------------------------------------------------------
# Images and documents
# --------------------------------------------------------------------------------------------


def test_image_tokens_follow_the_documented_formula():
    """width*height/750 rounded up, with the long edge capped at 1568 and the area at ~1.2 MP."""
    assert image_tokens_for_size(100, 100) == 14  # 10,000 / 750 = 13.3
    assert image_tokens_for_size(1000, 1000) == 1334  # 1,000,000 / 750 = 1333.3
    assert image_tokens_for_size(1092, 1092) == 1590  # the docs' table: 1:1 at 1092 px is ~1,590
    assert 1500 < image_tokens_for_size(4000, 3000) <= 1600
    assert image_tokens_for_size(3000, 200) == image_tokens_for_size(1568, 104)


def test_png_size_is_read_from_its_header():
    """A 100x100 and a 1000x1000 PNG built here give 14 and 1334 tokens."""
    small = estimate_input_tokens(user([image_block(png(100, 100))]))
    large = estimate_input_tokens(user([image_block(png(1000, 1000))]))
    assert image_size_from_base64(b64(png(1000, 1000))) == (1000, 1000)
    assert large - small == 1334 - 14


def test_only_the_image_header_is_decoded():
    """A payload whose tail is not base64 at all still yields its size: only the head is read."""
    data = b64(png(640, 480))[:64] + "é" * 100_000
    assert image_size_from_base64(data) == (640, 480)


def test_gif_webp_and_jpeg_sizes_are_read_from_their_headers():
    """GIF, the three WebP flavours and a JPEG with an APP1 segment before its frame header."""
    gif = b"GIF89a" + struct.pack("<HH", 320, 200) + b"\x00" * 20
    vp8x = b"RIFF\x00\x00\x00\x00WEBPVP8X" + b"\x0a\x00\x00\x00" + b"\x00" * 4 + (799).to_bytes(3, "little") + (599).to_bytes(3, "little") + b"\x00" * 8
    vp8l = b"RIFF\x00\x00\x00\x00WEBPVP8L" + b"\x00\x00\x00\x00\x2f" + ((640 - 1) | ((480 - 1) << 14)).to_bytes(4, "little") + b"\x00" * 8
    vp8 = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 4 + b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 1024, 768) + b"\x00" * 8
    exif = b"Exif\x00\x00" + b"\x01" * 900
    jpeg = b"\xff\xd8" + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, 1080, 1920, 3) + b"\x00" * 64
    assert image_size_from_base64(b64(gif)) == (320, 200)
    assert image_size_from_base64(b64(vp8x)) == (800, 600)
    assert image_size_from_base64(b64(vp8l)) == (640, 480)
    assert image_size_from_base64(b64(vp8)) == (1024, 768)
    assert image_size_from_base64(b64(jpeg)) == (1920, 1080)
    assert image_size_from_base64("data:image/gif;base64," + b64(gif)) == (320, 200)


def test_url_and_unreadable_images_count_as_the_maximum():
    """An image we cannot measure counts as the largest image, 1,600 tokens."""
    base = estimate_input_tokens(user([]))
    url = estimate_input_tokens(user([{"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]))
    junk = estimate_input_tokens(user([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "not base64 at all"}}]))
    assert url - base == junk - base == IMAGE_UNKNOWN_SIZE_TOKENS


def pdf(body: bytes) -> str:
    return b64(b"%PDF-1.7\n" + body + b"\n%%EOF\n")


def test_pdf_pages_are_read_from_a_linearised_header():
    """A linearised PDF's /N gives the page count; each page costs PDF_TOKENS_PER_PAGE."""
    data = pdf(b"1 0 obj\n<< /Linearized 1 /L 91234 /H [ 600 150 ] /O 8 /E 40000 /N 7 /T 90000 >>\nendobj\n" + b"x" * 5000)
    assert pdf_page_count_from_base64(data) == 7
    document = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data}}
    assert estimate_input_tokens(user([document])) - estimate_input_tokens(user([])) == 7 * PDF_TOKENS_PER_PAGE


def test_pdf_pages_are_read_from_a_page_tree_near_the_end():
    """A page tree's /Count near the end of the file gives the page count."""
    data = pdf(b"y" * 20_000 + b"\n2 0 obj\n<< /Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3 >>\nendobj\n")
    assert pdf_page_count_from_base64(data) == 3


def test_pdf_without_visible_page_count_is_guessed_from_its_size():
    """With no page count in sight, 50 KB count as a page (rounded up)."""
    assert pdf_page_count_from_base64(pdf(b"z" * 120_000)) == 3
    assert pdf_page_count_from_base64(pdf(b"")) == 1


def test_text_and_content_documents_count_their_text():
    """Plain-text and content-block documents are counted as text, with their title."""
    text = "Quarterly report. Revenue grew in every region except the south-west. " * 10
    as_text = {"type": "document", "title": "Q3", "source": {"type": "text", "media_type": "text/plain", "data": text}}
    as_content = {"type": "document", "title": "Q3", "source": {"type": "content", "content": [{"type": "text", "text": text}]}}
    assert estimate_input_tokens(user([as_text])) == estimate_input_tokens(user([as_content]))
    assert estimate_input_tokens(user([as_text])) > estimate_input_tokens(user([])) + estimate_text_tokens(text)


# --------------------------------------------------------------------------------------------
# Thinking and other assistant blocks
# --------------------------------------------------------------------------------------------


def test_thinking_text_counts_and_its_signature_does_not():
    """Thinking counts as its text; the signature is opaque and not model input."""
    def turn(thinking: str, signature: str) -> dict:
        return {"messages": [{"role": "assistant", "content": [{"type": "thinking", "thinking": thinking, "signature": signature}]}]}

    short = estimate_input_tokens(turn("Check the parser.", "c2ln"))
    assert estimate_input_tokens(turn("Check the parser.", "c2ln" * 500)) == short
    assert estimate_input_tokens(turn("Check the parser, then the serializer, then the tests.", "c2ln")) > short


def test_redacted_thinking_counts_by_its_length():
    """A redacted_thinking blob of 1,600 base64 characters counts as 300 tokens (16/3 per token)."""
    base = estimate_input_tokens({"messages": [{"role": "assistant", "content": []}]})
    redacted = estimate_input_tokens({"messages": [{"role": "assistant", "content": [{"type": "redacted_thinking", "data": "A" * 1600}]}]})
    assert redacted - base == 300


def test_claude_code_block_zoo_is_counted_without_errors():
    """Every block type Claude Code sends is accepted and adds to the count."""
    body = {
        "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.0;"}, {"type": "text", "text": "You are a coding agent.", "cache_control": {"type": "ephemeral"}}],
        "tools": coding_tools(2) + [{"type": "web_search_20250305", "name": "web_search"}],
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "messages": [
            {"role": "system", "content": "Agents: explore."},
            {"role": "user", "content": [{"type": "text", "text": "Look at this."}, {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Search first.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "QUJD" * 10},
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "release notes"}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [{"type": "web_search_result", "url": "https://example.com", "title": "Notes", "encrypted_content": "ZW5j", "page_age": "1 day"}]},
                {"type": "tool_use", "id": "toolu_2", "name": "Tool0", "input": {"file_path": "/a.py"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "print(1)"}, {"type": "tool_reference", "tool_name": "Tool1"}]},
                {"type": "tool_result", "tool_use_id": "toolu_3", "content": ""},
                {"type": "search_result", "source": "https://example.com/doc", "title": "Doc", "content": [{"type": "text", "text": "Body"}]},
                {"type": "mid_conv_system", "text": "A future block type."},
            ]},
        ],
    }
    total = estimate_input_tokens(body)
    assert total > TOOL_SYSTEM_PROMPT_TOKENS_AUTO + PDF_TOKENS_PER_PAGE + 300


# --------------------------------------------------------------------------------------------
# Odd shapes never raise
# --------------------------------------------------------------------------------------------

KNOWN_KEYS = ["system", "messages", "tools", "tool_choice", "thinking", "output_config", "role", "content", "type", "text", "source", "data", "media_type", "input", "input_schema", "name", "description", "thinking", "title", "format", "schema", "url"]
KNOWN_TYPES = ["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "server_tool_use", "search_result", "base64", "url", "content", "any", "tool", "web_search_20250305", "bash_20250124", "mystery"]

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30) | st.sampled_from(KNOWN_TYPES)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=5), children, max_size=6),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=5), json_values, max_size=8))
def test_arbitrary_json_shapes_never_raise(body):
    """Any JSON-ish dict gives an int >= 0, whatever is in it."""
    tokens = estimate_input_tokens(body)
    assert isinstance(tokens, int) and tokens >= 0


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_arbitrary_content_values_never_raise(content):
    """Any JSON-ish value as a message's content, a system or a tool list gives an int >= 0."""
    for body in (user(content), {"system": content}, {"tools": content}, {"tools": [content]}, {"messages": [{"role": "assistant", "content": [content]}]}):
        assert estimate_input_tokens(body) >= 0


def test_wrong_types_and_hostile_nesting_do_not_raise():
    """Non-dict bodies, wrong field types and very deep nesting are all tolerated."""
    deep: object = "bottom"
    for _ in range(5000):
        deep = [{"type": "tool_result", "content": deep}]
    circular: dict = {"type": "mystery"}
    circular["self"] = circular
    odd_bodies = [
        None,
        [],
        "messages",
        {"messages": "hello"},
        {"messages": [None, 3, "text", {"content": 5}, {"content": {"type": "text", "text": "single block"}}]},
        {"system": 42, "tools": {"name": "x"}, "tool_choice": "any"},
        {"tools": [None, "Bash", {"name": 5, "input_schema": float("nan")}, {"type": 7}]},
        {"messages": [{"role": "user", "content": deep}]},
        {"messages": [{"role": "user", "content": [circular]}]},
        {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": 12}}]}]},
        {"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "base64", "data": "JVBERi0x" + "9" * 9000}}]}]},
    ]
    for body in odd_bodies:
        assert estimate_input_tokens(body) >= 0  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Speed
# --------------------------------------------------------------------------------------------


def test_a_claude_code_sized_request_is_estimated_in_milliseconds():
    """~76 KB with 24 tools in well under 20 ms (the target is 1 ms; this guards against O(n^2))."""
    body = {
        "system": [{"type": "text", "text": "You are a coding agent. Follow the project's conventions. " * 530}],
        "tools": coding_tools(24),
        "messages": [{"role": "user", "content": "Fix the failing test. " * 700}],
    }
    best = min(_timed(body) for _ in range(5))
    assert best < 0.020


def _timed(body: dict) -> float:
    start = time.perf_counter()
    estimate_input_tokens(body)
    return time.perf_counter() - start
