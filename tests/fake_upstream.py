"""Scriptable fake upstream servers on 127.0.0.1, and a helper that runs the proxy in a thread.

`FakeUpstream` is a small h11 server in its own thread and event loop. Each request it receives is
recorded and answered by the next `Reply` in its script (or by a function of the request), which can
be slow, broken mid-stream, or any status, so tests can reproduce what real providers do.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import h11

from server.config import Config
from server.listener import Server


@dataclass
class Reply:
    """One scripted answer: a status, headers, and a body sent whole or as timed chunks."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=lambda: [("content-type", "application/json")])
    body: bytes = b""
    chunks: list[bytes] | None = None  # streamed with chunked encoding when set
    delay_before_head: float = 0.0
    delay_between_chunks: float = 0.0
    stall_after_chunks: float = 0.0  # sleep after the last chunk before ending (or breaking)
    break_after_chunks: bool = False  # close the socket without the terminating chunk

    @classmethod
    def json(cls, value: object, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Reply:
        return cls(status=status, headers=[("content-type", "application/json")] + (headers or []), body=json.dumps(value).encode())

    @classmethod
    def sse(cls, frames: list[bytes], **kwargs) -> Reply:
        return cls(headers=[("content-type", "text/event-stream")], chunks=frames, **kwargs)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class FakeUpstream:
    """An HTTP/1.1 server on 127.0.0.1 answering from a script. Use as a context manager."""

    def __init__(self, script: list[Reply] | Callable[[Received], Reply] | None = None) -> None:
        self.script = script if script is not None else []
        self.requests: list[Received] = []
        self.connections_opened = 0
        self.connections_closed = 0
        self.client_went_away = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeUpstream:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def __exit__(self, *exc_info: object) -> None:
        async def stop() -> None:
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def next_reply(self, request: Received) -> Reply:
        if callable(self.script):
            return self.script(request)
        if not self.script:
            return Reply.json({"error": {"message": "fake upstream has no scripted reply"}}, status=500)
        return self.script.pop(0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_opened += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    conn.receive_data(data)
                    if not data and conn.their_state is h11.IDLE:
                        return
                    continue
                if isinstance(event, h11.ConnectionClosed):
                    return
                if not isinstance(event, h11.Request):
                    continue
                body = b""
                while True:
                    part = conn.next_event()
                    if part is h11.NEED_DATA:
                        conn.receive_data(await reader.read(65536))
                    elif isinstance(part, h11.Data):
                        body += part.data
                    else:
                        break
                received = Received(
                    event.method.decode(),
                    event.target.decode(),
                    {k.decode(): v.decode() for k, v in event.headers},
                    body,
                )
                self.requests.append(received)
                reply = self.next_reply(received)
                if not await self._answer(conn, reader, writer, reply):
                    return
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            self.client_went_away.set()
        finally:
            self.connections_closed += 1
            writer.close()

    async def _answer(self, conn: h11.Connection, reader, writer, reply: Reply) -> bool:
        if reply.delay_before_head:
            if not await self._sleep_or_notice_close(reader, reply.delay_before_head):
                return False
        headers = list(reply.headers)
        if reply.chunks is None:
            headers.append(("content-length", str(len(reply.body))))
            writer.write(conn.send(h11.Response(status_code=reply.status, headers=headers)))
            writer.write(conn.send(h11.Data(data=reply.body)) + conn.send(h11.EndOfMessage()))
            await writer.drain()
            return True
        writer.write(conn.send(h11.Response(status_code=reply.status, headers=headers)))
        for chunk in reply.chunks:
            writer.write(conn.send(h11.Data(data=chunk)))
            await writer.drain()
            if reply.delay_between_chunks:
                if not await self._sleep_or_notice_close(reader, reply.delay_between_chunks):
                    return False
        if reply.stall_after_chunks:
            if not await self._sleep_or_notice_close(reader, reply.stall_after_chunks):
                return False
        if reply.break_after_chunks:
            writer.transport.abort()
            return False
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        return True

    async def _sleep_or_notice_close(self, reader: asyncio.StreamReader, seconds: float) -> bool:
        """Sleep, but notice (and record) the client closing the connection meanwhile."""
        try:
            data = await asyncio.wait_for(reader.read(1), seconds)
        except asyncio.TimeoutError:
            return True
        if not data:
            self.client_went_away.set()
            return False
        return True


# ---------------------------------------------------------------------------------------------
# OpenAI-format stream frames
# ---------------------------------------------------------------------------------------------


def chunk(delta: dict | None = None, finish_reason: str | None = None, **extra) -> dict:
    value = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": "gpt-fake"}
    value["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    value.update(extra)
    return value


def frames(*chunks: dict, done: bool = True) -> list[bytes]:
    out = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks]
    if done:
        out.append(b"data: [DONE]\n\n")
    return out


def text_stream(pieces: list[str], *, prompt_tokens: int = 11, completion_tokens: int = 7, finish: str = "stop") -> list[bytes]:
    """The frames an OpenAI server sends for a streamed text answer, usage chunk included."""
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
    return frames(
        chunk({"role": "assistant", "content": ""}),
        *[chunk({"content": p}) for p in pieces],
        chunk({}, finish),
        chunk(None, usage=usage),
    )


def completion(content: str | None = "Hello!", *, tool_calls: list | None = None, finish: str = "stop",
               prompt_tokens: int = 11, completion_tokens: int = 7, **message_extra) -> dict:
    message = {"role": "assistant", "content": content, **message_extra}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-fake",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
    }


# ---------------------------------------------------------------------------------------------
# An OpenAI Responses upstream: whole responses and their event streams, from the same items
# ---------------------------------------------------------------------------------------------


def reasoning_item(summary: list[str], encrypted: str, item_id: str = "rs_fake1") -> dict:
    parts = [{"type": "summary_text", "text": text} for text in summary]
    return {"type": "reasoning", "id": item_id, "summary": parts, "encrypted_content": encrypted}


def message_item(text: str, item_id: str = "msg_fake1") -> dict:
    return {"type": "message", "id": item_id, "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def function_call_item(name: str, arguments: dict, call_id: str, item_id: str = "fc_fake1") -> dict:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name,
            "arguments": json.dumps(arguments), "status": "completed"}


def responses_answer(items: list[dict], *, model: str = "gpt-5-codex", status: str = "completed", input_tokens: int = 40,
                     cached_tokens: int = 0, output_tokens: int = 12, reasoning_tokens: int = 5,
                     incomplete_reason: str | None = None, error: dict | None = None) -> dict:
    """A whole Response object as OpenAI's /v1/responses returns it."""
    return {
        "id": "resp_fake", "object": "response", "created_at": 1, "status": status, "model": model,
        "output": items, "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "store": False,
        "usage": {
            "input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": cached_tokens},
            "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": input_tokens + output_tokens,
        },
    }


def responses_events(answer: dict) -> list[dict]:
    """The event stream OpenAI sends for `answer`: every item added, streamed in deltas, done."""
    events: list[dict] = []

    def emit(kind: str, **fields: object) -> None:
        events.append({"type": kind, "sequence_number": len(events), **fields})

    shell = dict(answer, status="in_progress", output=[], usage=None)
    emit("response.created", response=shell)
    emit("response.in_progress", response=shell)
    for index, item in enumerate(answer["output"]):
        kind, item_id = item["type"], item.get("id")
        if kind == "reasoning":
            emit("response.output_item.added", output_index=index, item={"type": "reasoning", "id": item_id, "summary": []})
            for summary_index, part in enumerate(item["summary"]):
                at = dict(item_id=item_id, output_index=index, summary_index=summary_index)
                emit("response.reasoning_summary_part.added", **at, part={"type": "summary_text", "text": ""})
                for piece in _halves(part["text"]):
                    emit("response.reasoning_summary_text.delta", **at, delta=piece)
                emit("response.reasoning_summary_text.done", **at, text=part["text"])
                emit("response.reasoning_summary_part.done", **at, part=part)
        elif kind == "message":
            emit("response.output_item.added", output_index=index, item=dict(item, status="in_progress", content=[]))
            for content_index, part in enumerate(item["content"]):
                at = dict(item_id=item_id, output_index=index, content_index=content_index)
                emit("response.content_part.added", **at, part=dict(part, text=""))
                for piece in _halves(part["text"]):
                    emit("response.output_text.delta", **at, delta=piece, logprobs=[])
                emit("response.output_text.done", **at, text=part["text"], logprobs=[])
                emit("response.content_part.done", **at, part=part)
        elif kind == "function_call":
            emit("response.output_item.added", output_index=index, item=dict(item, status="in_progress", arguments=""))
            for piece in _halves(item["arguments"]):
                emit("response.function_call_arguments.delta", item_id=item_id, output_index=index, delta=piece)
            emit("response.function_call_arguments.done", item_id=item_id, output_index=index, arguments=item["arguments"],
                 name=item["name"])
        else:
            emit("response.output_item.added", output_index=index, item=item)
        emit("response.output_item.done", output_index=index, item=item)
    terminal = {"completed": "response.completed", "incomplete": "response.incomplete", "failed": "response.failed"}
    emit(terminal[answer["status"]], response=answer)
    return events


def _halves(text: str) -> list[str]:
    middle = len(text) // 2
    return [piece for piece in (text[:middle], text[middle:]) if piece]


def responses_frames(answer: dict) -> list[bytes]:
    """`responses_events(answer)` framed as OpenAI frames them: `event:` then `data:`."""
    return [f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in responses_events(answer)]


def responses_reply(answer: dict, stream: bool) -> Reply:
    return Reply.sse(responses_frames(answer)) if stream else Reply.json(answer)


# ---------------------------------------------------------------------------------------------
# The proxy under test
# ---------------------------------------------------------------------------------------------


class RunningProxy:
    """The real server on 127.0.0.1 and port 0, in its own thread and event loop."""

    def __init__(self, env: dict[str, str]) -> None:
        # Retries off unless a test turns them on: most tests script exactly one upstream answer. No usage
        # ledger unless a test names one (the default file would land in the working directory).
        settings = {"HOST": "127.0.0.1", "PORT": "0", "PING_INTERVAL": "10", "SHUTDOWN_GRACE": "2", "MAX_RETRIES": "0",
                    "USAGE_DB": "off"}
        settings.update(env)
        self.config = Config.from_env(settings)
        self.server: Server | None = None
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RunningProxy:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self.server = Server(self.config)
            self.port = self._loop.run_until_complete(self.server.start())
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def call(self, coroutine_function: Callable, timeout: float = 10):
        """Run a coroutine function on the proxy's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine_function(), self._loop).result(timeout)

    def pool_stats(self) -> dict:
        async def stats() -> dict:
            return self.server.gateway.client.pool_stats()

        return self.call(stats)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def __exit__(self, *exc_info: object) -> None:
        self.call(self.server.shutdown, timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
