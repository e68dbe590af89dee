"""A fast fake LLM upstream for the load benchmark, run as its own process on 127.0.0.1.

    python bench/fake_upstream.py [--port 0] [--events-per-write 1] [--max-seconds 1800]

Prints `PORT <n>` once listening. Exits on SIGTERM/SIGINT, when its standard input closes (the
benchmark that started it is gone), or after --max-seconds.

Policies:
- Speed over generality: a raw asyncio Protocol, no HTTP library. It understands what the proxy,
  wrk and the built-in load generator send: requests with Content-Length, keep-alive, no pipelining
  surprises (pipelined requests are answered in order all the same).
- Every answer is precomputed once per (dialect, model, stream) and cached as bytes; serving it is
  a dict lookup and one `write` per write group.
- What to answer is keyed on the body, because the proxy forwards only the body: the model name
  (`bench-json`, `bench-s<N>`, `bench-s<N>p<ms>`) and the `"stream": true` flag. Path decides the
  dialect: `.../chat/completions` is OpenAI, `/v1/messages` Anthropic, `/v1/messages/count_tokens`
  a fixed count, `GET /health` a small JSON.
- Streams: the head and the first event go in one write, then each following event is one chunked
  frame in its own write (`--events-per-write` groups them), so a client sees events arrive one by
  one as from a real model, not one blob. With `p<ms>` the writes are paced that far apart; without
  it they are written back to back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import threading

MODEL_PATTERN = re.compile(rb'"model"\s*:\s*"([^"]*)"')
STREAM_PATTERN = re.compile(rb'"stream"\s*:\s*true')
KIND_PATTERN = re.compile(rb"bench-(?:(json)|s(\d+)(?:p(\d+))?)")
CONTENT_LENGTH_PATTERN = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
CONNECTION_CLOSE_PATTERN = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)
HEAD_END = b"\r\n\r\n"
CHUNKED_END = b"0\r\n\r\n"
CREATED = 1735689600
# Token-sized pieces of text; a stream cycles through them.
WORDS = [" The", " proxy", " reuses", " one", " upstream", " connection", " per", " request,", " so", " latency", " stays", " low."]
JSON_ANSWER = "".join(WORDS * 3).strip()
INPUT_TOKENS = 1200


# =============================================================================================
# Precomputed answers
# =============================================================================================


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _frame(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _json_response(body: bytes, status: int = 200) -> bytes:
    reason = b"OK" if status == 200 else b"Error"
    return b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (status, reason, len(body), body)


SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"


def openai_completion(model: str) -> bytes:
    return _dumps({
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": JSON_ANSWER}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": INPUT_TOKENS, "completion_tokens": len(WORDS) * 3, "total_tokens": INPUT_TOKENS + len(WORDS) * 3},
    })


def openai_stream_events(model: str, text_events: int) -> list[bytes]:
    """role chunk, `text_events` content chunks, finish chunk, usage chunk, [DONE]."""
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED, "model": model}

    def chunk(delta: dict, finish: str | None = None) -> bytes:
        return b"data: " + _dumps(dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": finish}])) + b"\n\n"

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": WORDS[i % len(WORDS)]}) for i in range(text_events)]
    events.append(chunk({}, "stop"))
    usage = {"prompt_tokens": INPUT_TOKENS, "completion_tokens": text_events, "total_tokens": INPUT_TOKENS + text_events}
    events.append(b"data: " + _dumps(dict(base, choices=[], usage=usage)) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def anthropic_message(model: str) -> bytes:
    return _dumps({
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": JSON_ANSWER}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": len(WORDS) * 3},
    })


def anthropic_stream_events(model: str, text_events: int) -> list[bytes]:
    """message_start, one text block of `text_events` deltas, message_delta, message_stop."""

    def event(value: dict) -> bytes:
        return b"event: " + value["type"].encode() + b"\ndata: " + _dumps(value) + b"\n\n"

    message = {
        "id": "msg_bench", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1},
    }
    events = [
        event({"type": "message_start", "message": message}),
        event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    events += [
        event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": WORDS[i % len(WORDS)]}})
        for i in range(text_events)
    ]
    events.append(event({"type": "content_block_stop", "index": 0}))
    events.append(event({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": text_events}}))
    events.append(event({"type": "message_stop"}))
    return events


def responses_answer(model: str) -> bytes:
    return _dumps(_response_object(model, "completed", [{
        "type": "message", "id": "msg_bench", "role": "assistant", "status": "completed",
        "content": [{"type": "output_text", "text": JSON_ANSWER, "annotations": []}],
    }], len(WORDS) * 3))


def _response_object(model: str, status: str, output: list, output_tokens: int) -> dict:
    return {
        "id": "resp_bench", "object": "response", "created_at": CREATED, "status": status, "model": model,
        "output": output, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
        "usage": {"input_tokens": INPUT_TOKENS, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": INPUT_TOKENS + output_tokens},
    }


def responses_stream_events(model: str, text_events: int) -> list[bytes]:
    """created, in_progress, one message item of `text_events` text deltas, completed (OpenAI's order)."""
    sequence = iter(range(1 << 30))

    def event(value: dict) -> bytes:
        value = dict(value, sequence_number=next(sequence))
        return b"event: " + value["type"].encode() + b"\ndata: " + _dumps(value) + b"\n\n"

    shell = _response_object(model, "in_progress", [], 0)
    at = {"item_id": "msg_bench", "output_index": 0, "content_index": 0}
    item = {"type": "message", "id": "msg_bench", "role": "assistant", "status": "in_progress", "content": []}
    text = "".join(WORDS[i % len(WORDS)] for i in range(text_events))
    part = {"type": "output_text", "text": text, "annotations": []}
    events = [
        event({"type": "response.created", "response": shell}),
        event({"type": "response.in_progress", "response": shell}),
        event({"type": "response.output_item.added", "output_index": 0, "item": item}),
        event({"type": "response.content_part.added", **at, "part": dict(part, text="")}),
    ]
    events += [event({"type": "response.output_text.delta", **at, "delta": WORDS[i % len(WORDS)], "logprobs": []})
               for i in range(text_events)]
    done_item = dict(item, status="completed", content=[part])
    events += [
        event({"type": "response.output_text.done", **at, "text": text, "logprobs": []}),
        event({"type": "response.content_part.done", **at, "part": part}),
        event({"type": "response.output_item.done", "output_index": 0, "item": done_item}),
        event({"type": "response.completed", "response": _response_object(model, "completed", [done_item], text_events)}),
    ]
    return events


class Answer:
    """Precomputed bytes for one kind of request: `writes[0]` carries the head; `pace` seconds between writes."""

    __slots__ = ("writes", "pace")

    def __init__(self, writes: list[bytes], pace: float = 0.0) -> None:
        self.writes = writes
        self.pace = pace


def build_answer(dialect: str, model: bytes, stream: bool, events_per_write: int) -> Answer:
    """The answer for a request on `dialect` ("openai", "responses", "anthropic" or "count") naming `model`."""
    name = model.decode("utf-8", "replace")
    if dialect == "count":
        return Answer([_json_response(_dumps({"input_tokens": 18000}))])
    kind = KIND_PATTERN.search(model)
    if kind is None:
        error = {"error": {"message": f"fake upstream: unknown model {name!r} (use bench-json or bench-s<N>)"}}
        return Answer([_json_response(_dumps(error), status=404)])
    if not stream:
        body = {"openai": openai_completion, "responses": responses_answer, "anthropic": anthropic_message}[dialect](name)
        return Answer([_json_response(body)])
    text_events = int(kind.group(2)) if kind.group(2) else 1
    pace = int(kind.group(3)) / 1000 if kind.group(3) else 0.0
    streams = {"openai": openai_stream_events, "responses": responses_stream_events, "anthropic": anthropic_stream_events}
    events = streams[dialect](name, text_events)
    frames = [_frame(e) for e in events]
    groups = [b"".join(frames[i : i + events_per_write]) for i in range(0, len(frames), events_per_write)]
    groups[0] = SSE_HEAD + groups[0]
    groups[-1] += CHUNKED_END
    return Answer(groups, pace)


HEALTH = Answer([_json_response(b'{"status":"ok"}')])
NOT_FOUND = Answer([_json_response(b'{"error":{"message":"fake upstream: no such path"}}', status=404)])


# =============================================================================================
# The server
# =============================================================================================


class UpstreamProtocol(asyncio.Protocol):
    """One client connection: parse requests, answer each from the cache, keep the connection open."""

    def __init__(self, cache: dict, events_per_write: int) -> None:
        self.cache = cache
        self.events_per_write = events_per_write
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.expected = 0  # total bytes of the request being received (head + body), 0 when unknown
        self.head_length = 0
        self.busy = False  # a paced answer is still being written
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._serve_ready()

    def _serve_ready(self) -> None:
        while not self.busy and self.transport is not None:
            if not self.expected:
                end = self.buffer.find(HEAD_END)
                if end < 0:
                    return
                head = bytes(self.buffer[: end + 4])
                match = CONTENT_LENGTH_PATTERN.search(head)
                self.head_length = end + 4
                self.expected = self.head_length + (int(match.group(1)) if match else 0)
            if len(self.buffer) < self.expected:
                return
            head = bytes(self.buffer[: self.head_length])
            body = bytes(self.buffer[self.head_length : self.expected])
            del self.buffer[: self.expected]
            self.expected = 0
            self._answer(head, body)

    def _answer(self, head: bytes, body: bytes) -> None:
        request_line = head[: head.find(b"\r\n")]
        parts = request_line.split(b" ")
        path = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b"/"
        close = CONNECTION_CLOSE_PATTERN.search(head) is not None
        answer = self._lookup(parts[0], path, body)
        self.transport.write(answer.writes[0])
        if len(answer.writes) == 1:
            self._finished(close)
        elif answer.pace:
            self.busy = True
            self._write_paced(answer, 1, close)
        else:
            for data in answer.writes[1:]:
                self.transport.write(data)
            self._finished(close)

    def _write_paced(self, answer: Answer, index: int, close: bool) -> None:
        if self.transport is None:
            return
        if index < len(answer.writes):
            if index > 1:
                self.transport.write(answer.writes[index - 1])
            self.timer = asyncio.get_running_loop().call_later(answer.pace, self._write_paced, answer, index + 1, close)
            return
        self.transport.write(answer.writes[-1])
        self.timer = None
        self.busy = False
        self._finished(close)
        self._serve_ready()

    def _finished(self, close: bool) -> None:
        if close and self.transport is not None:
            self.transport.close()

    def _lookup(self, method: bytes, path: bytes, body: bytes) -> Answer:
        if method in (b"GET", b"HEAD"):
            return HEALTH if path in (b"/health", b"/") else NOT_FOUND
        if path.endswith(b"/chat/completions"):
            dialect = "openai"
        elif path.endswith(b"/responses"):
            dialect = "responses"
        elif path.endswith(b"/v1/messages/count_tokens"):
            dialect = "count"
        elif path.endswith(b"/v1/messages"):
            dialect = "anthropic"
        else:
            return NOT_FOUND
        model_match = MODEL_PATTERN.search(body)
        model = model_match.group(1) if model_match else b""
        stream = dialect != "count" and STREAM_PATTERN.search(body) is not None
        key = (dialect, model, stream)
        answer = self.cache.get(key)
        if answer is None:
            answer = self.cache[key] = build_answer(dialect, model, stream, self.events_per_write)
        return answer


def _exit_when_stdin_closes() -> None:
    """The benchmark holds our stdin open; EOF means it is gone, so go too."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    os._exit(0)


async def serve(port: int, events_per_write: int, max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    cache: dict = {}
    server = await loop.create_server(
        lambda: UpstreamProtocol(cache, events_per_write), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), max_seconds)
    except asyncio.TimeoutError:
        pass
    server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="Fast fake OpenAI/Anthropic upstream for bench/run.py.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--events-per-write", type=int, default=1, help="SSE events per write (default 1: one by one)")
    parser.add_argument("--max-seconds", type=float, default=1800, help="exit after this long whatever happens")
    parser.add_argument("--no-stdin-watch", action="store_true", help="do not exit when stdin closes")
    args = parser.parse_args()
    if not args.no_stdin_watch:
        threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    asyncio.run(serve(args.port, max(1, args.events_per_write), args.max_seconds))
    # os._exit: a normal exit would wait on the stdin thread's lock and abort noisily.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
