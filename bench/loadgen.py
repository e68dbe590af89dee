"""The built-in load generator: closed-loop HTTP/1.1 keep-alive clients on raw asyncio sockets.

    python bench/loadgen.py --port P --path /v1/messages --body-file body.json \
        --concurrency 16 --duration 3 [--warmup 0.5] [--sync] [--once] [--header k:v ...]

Each of `concurrency` connections sends the same request, waits for the whole response, and sends
it again until `duration` has passed; requests under way then finish (the drain), so every request
counted was served completely and the server's CPU time divided by the count is not skewed by
half-done work. Prints one line `RESULT {json}`.

Policies:
- Speed: the request bytes are built once; a response is parsed only as far as needed to find its
  end (Content-Length, or the chunked terminator at the end of a read: the servers measured here
  never send anything after it, since this client does not pipeline). No JSON, no SSE parsing.
- Time to first byte is when the first response byte arrives; for a stream that is its first event,
  because the proxy and the fake upstream write the head with the first event.
- `--sync`: after the warm-up, print `WARM` and wait for a `GO` line on stdin, so the caller can read
  CPU counters between the two and several generator processes start together.
- `--once`: one request per connection, no repeat (for holding many streams open at once); prints
  `OPEN <n>` when every connection has its first byte.
- Bounded: the drain gives up after --max-drain seconds; the process exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import sys
import time

HEAD_END = b"\r\n\r\n"
CHUNKED_END = b"\r\n0\r\n\r\n"
STATUS_PATTERN = re.compile(rb"HTTP/1\.[01] (\d{3})")
CONTENT_LENGTH_PATTERN = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
CHUNKED_PATTERN = re.compile(rb"\r\ntransfer-encoding:[ \t]*chunked", re.IGNORECASE)
CLOSE_PATTERN = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)


class Run:
    """Shared state of one generator process: what to send, when to stop, what was measured."""

    def __init__(self, request: bytes, once: bool) -> None:
        self.request = request
        self.once = once
        self.deadline = 0.0
        self.recording = False
        self.latencies: list[float] = []
        self.ttfbs: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors = 0
        self.bytes_received = 0
        self.first_bytes = 0  # connections that have their first byte (for --once)
        self.open_event = asyncio.Event()
        self.concurrency = 0


class Client(asyncio.Protocol):
    """One keep-alive connection sending the run's request in a loop."""

    def __init__(self, run: Run, finished: asyncio.Future) -> None:
        self.run = run
        self.finished = finished  # resolved when this client has stopped sending
        self.transport: asyncio.Transport | None = None
        self._reset()

    def _reset(self) -> None:
        self.head: bytes | None = None
        self.buffer = b""
        self.status = 0
        self.remaining = -1  # body bytes still expected with Content-Length; -1 for chunked
        self.close_after = False
        self.sent_at = 0.0
        self.first_at = 0.0

    # -- sending ---------------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self) -> None:
        self._reset()
        self.sent_at = time.perf_counter()
        self.transport.write(self.run.request)

    def stop(self) -> None:
        if not self.finished.done():
            self.finished.set_result(None)

    # -- receiving -------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        run = self.run
        run.bytes_received += len(data)
        if not self.first_at:
            self.first_at = now
            if run.once:
                run.first_bytes += 1
                if run.first_bytes >= run.concurrency:
                    run.open_event.set()
        if self.head is None:
            self.buffer += data
            end = self.buffer.find(HEAD_END)
            if end < 0:
                return
            self.head = self.buffer[: end + 4]
            data = self.buffer[end + 4 :]
            self.buffer = b""
            match = STATUS_PATTERN.match(self.head)
            self.status = int(match.group(1)) if match else 0
            self.close_after = CLOSE_PATTERN.search(self.head) is not None
            length = CONTENT_LENGTH_PATTERN.search(self.head)
            if length is not None:
                self.remaining = int(length.group(1))
            elif CHUNKED_PATTERN.search(self.head) is None:
                self.remaining = -2  # body ends when the server closes
            if self.remaining >= 0:
                self.remaining -= len(data)
                if self.remaining <= 0:
                    self._complete(now)
                return
            # Chunked: the terminator may already be here; fall through with the rest of the read.
            self.tail = b"\r\n"
            if not data:
                return
        if self.remaining >= 0:
            self.remaining -= len(data)
            if self.remaining <= 0:
                self._complete(now)
        elif self.remaining == -1:
            tail = self.tail + data[-7:] if len(data) < 7 else data[-7:]
            self.tail = tail[-7:]
            if self.tail == CHUNKED_END:
                self._complete(now)

    def _complete(self, now: float) -> None:
        run = self.run
        if run.recording:
            run.latencies.append(now - self.sent_at)
            run.ttfbs.append(self.first_at - self.sent_at)
            run.statuses[self.status] = run.statuses.get(self.status, 0) + 1
        if self.close_after:
            self.transport.close()
            self.stop()
            return
        if run.once or now >= run.deadline:
            self.stop()
        else:
            self.send()

    def connection_lost(self, exc) -> None:
        if self.head is not None and self.remaining == -2:
            self._complete(time.perf_counter())
        elif self.sent_at and not self.finished.done():
            self.run.errors += 1
        self.transport = None
        self.stop()


# =============================================================================================
# Phases
# =============================================================================================


async def _connect(run: Run, host: str, port: int, count: int) -> list[Client]:
    loop = asyncio.get_running_loop()
    clients: list[Client] = []

    async def one() -> None:
        _, client = await loop.create_connection(lambda: Client(run, loop.create_future()), host, port)
        clients.append(client)

    # Connect in batches so a listen backlog is never flooded.
    for start in range(0, count, 200):
        await asyncio.gather(*(one() for _ in range(min(200, count - start))))
    return clients


async def _phase(run: Run, clients: list[Client], seconds: float, max_drain: float) -> list[Client]:
    """Run every client until `seconds` pass, then let them finish; return the clients still usable."""
    loop = asyncio.get_running_loop()
    run.deadline = time.perf_counter() + seconds
    for client in clients:
        client.finished = loop.create_future()
        client.send()
    pending = [c.finished for c in clients]
    done, not_done = await asyncio.wait(pending, timeout=seconds + max_drain)
    for client in clients:
        if not client.finished.done():
            run.errors += 1
            if client.transport is not None:
                client.transport.abort()
            client.stop()
    return [c for c in clients if c.transport is not None and not c.transport.is_closing()]


def _read_line_blocking() -> str:
    return sys.stdin.readline()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main_async(args: argparse.Namespace) -> dict:
    loop = asyncio.get_running_loop()
    with open(args.body_file, "rb") as handle:
        body = handle.read()
    lines = [f"{args.method} {args.path} HTTP/1.1", f"Host: {args.host}:{args.port}", "Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [h.replace(":", ": ", 1) if ": " not in h else h for h in args.header]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    run = Run(request, args.once)
    run.concurrency = args.concurrency
    clients = await _connect(run, args.host, args.port, args.concurrency)
    if args.warmup > 0 and not args.once:
        clients = await _phase(run, clients, args.warmup, args.max_drain)
        if len(clients) < args.concurrency:
            clients += await _connect(run, args.host, args.port, args.concurrency - len(clients))
    if args.sync:
        print("WARM", flush=True)
        line = await loop.run_in_executor(None, _read_line_blocking)
        if line.strip() != "GO":
            raise SystemExit(1)
    run.recording = True
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    if args.once:
        watcher = asyncio.ensure_future(_announce_open(run))
        await _phase(run, clients, 0.0, args.max_drain)
        watcher.cancel()
    else:
        await _phase(run, clients, args.duration, args.max_drain)
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    return {
        "completed": len(run.latencies),
        "errors": run.errors,
        "statuses": run.statuses,
        "elapsed": elapsed,
        "cpu_s": cpu,
        "bytes": run.bytes_received,
        # Microseconds, as integers: compact, and enough to merge percentiles across processes.
        "latency_us": [round(x * 1e6) for x in run.latencies],
        "ttfb_us": [round(x * 1e6) for x in run.ttfbs],
    }


async def _announce_open(run: Run) -> None:
    await run.open_event.wait()
    print(f"OPEN {run.first_bytes}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="Closed-loop keep-alive HTTP load generator (bench/run.py's fallback for wrk).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--method", default="POST")
    parser.add_argument("--path", required=True)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--header", action="append", default=[], help="extra header, name:value (repeatable)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--max-drain", type=float, default=60.0, help="longest wait for requests under way after the duration")
    parser.add_argument("--sync", action="store_true", help="print WARM after the warm-up and wait for GO on stdin")
    parser.add_argument("--once", action="store_true", help="one request per connection (hold streams open)")
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the benchmark only talks to loopback addresses")
    result = asyncio.run(main_async(args))
    print("RESULT " + json.dumps(result, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
