"""How fast a client's disconnect closes the upstream connection, idle and with the proxy saturated.

    python bench/cancel_latency.py [--probes 40] [--load 200] [--pace-ms 10] [--python PATH]

Starts on 127.0.0.1: the bench's fake upstream (bench/fake_upstream.py) for the load, a probe
upstream inside this script, and the proxy (proxy.py, LOG_LEVEL=WARNING). The load is `--load`
paced streams (bench/loadgen.py, each stream 500 text chunks `--pace-ms` apart, repeated), enough to
keep the proxy's core busy. Each probe opens a stream through the proxy to the probe upstream
(`ollama/hold`: it sends the head and one event, then holds the stream open), waits for the first
byte at the client, closes the client socket, and measures the time until the probe upstream sees
its connection closed. Both ends are in this process, on one clock, and only one probe runs at a
time, so this process adds little to the load. Prints p50/p95/p99/max idle and under load, and the
proxy's CPU use during each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOLD_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class HoldingUpstream(asyncio.Protocol):
    """Answers any request with a stream head and one event, then holds; notes when the peer closes."""

    closed_at: dict[int, float] = {}
    opened: asyncio.Queue | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""
        self.answered = False

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.answered and b"\r\n\r\n" in self.buffer:
            self.answered = True
            event = b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"hold","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}\n\n'
            self.transport.write(HOLD_HEAD + _chunk(event))
            HoldingUpstream.opened.put_nowait(self)

    def eof_received(self) -> bool:
        self._closed()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed()

    def _closed(self) -> None:
        HoldingUpstream.closed_at.setdefault(id(self), time.monotonic())


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def probe_once(proxy_port: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    body = json.dumps({"model": "ollama/hold", "max_tokens": 10, "stream": True,
                       "messages": [{"role": "user", "content": "hold"}]}).encode()
    writer.write(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                 % (len(body), body))
    upstream = await asyncio.wait_for(HoldingUpstream.opened.get(), 30)
    await asyncio.wait_for(reader.read(1), 30)  # the first byte reached the client
    closed_by_client = time.monotonic()
    writer.transport.abort()  # the client goes away
    for _ in range(3000):
        if id(upstream) in HoldingUpstream.closed_at:
            break
        await asyncio.sleep(0.001)
    else:
        return float("inf")
    return HoldingUpstream.closed_at[id(upstream)] - closed_by_client


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return f"p50 {at(0.5):.1f} ms, p95 {at(0.95):.1f} ms, p99 {at(0.99):.1f} ms, max {ordered[-1] * 1000:.1f} ms (n={len(ordered)})"


async def phase(proxy_port: int, proxy_pid: int, probes: int) -> tuple[list[float], float]:
    samples = []
    cpu0, wall0 = cpu_seconds(proxy_pid), time.monotonic()
    for _ in range(probes):
        samples.append(await probe_once(proxy_port))
        await asyncio.sleep(0.05)
    busy = (cpu_seconds(proxy_pid) - cpu0) / (time.monotonic() - wall0)
    return samples, busy


async def main_async(args: argparse.Namespace) -> int:
    HoldingUpstream.opened = asyncio.Queue()
    loop = asyncio.get_running_loop()
    hold_server = await loop.create_server(HoldingUpstream, "127.0.0.1", 0)
    hold_port = hold_server.sockets[0].getsockname()[1]
    processes: list[subprocess.Popen] = []
    try:
        upstream = subprocess.Popen([args.python, str(ROOT / "bench" / "fake_upstream.py")], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
        processes.append(upstream)
        upstream_port = int(upstream.stdout.readline().split()[1])
        proxy_port = _free_port()
        env = dict(os.environ, PORT=str(proxy_port), HOST="127.0.0.1", LOG_LEVEL="WARNING", OPENAI_API_KEY="k",
                   OPENAI_BASE_URL=f"http://127.0.0.1:{upstream_port}/v1", OLLAMA_BASE_URL=f"http://127.0.0.1:{hold_port}/v1",
                   MAX_CONCURRENT_UPSTREAM="0", MAX_CONNECTIONS="4096", MAX_RETRIES="0", PREFERRED_PROVIDER="openai")
        proxy = subprocess.Popen([args.python, "proxy.py"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        processes.append(proxy)
        for _ in range(200):
            try:
                _, w = await asyncio.open_connection("127.0.0.1", proxy_port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        idle, idle_cpu = await phase(proxy_port, proxy.pid, args.probes)
        body = Path(tempfile.mkstemp(suffix=".json")[1])
        body.write_text(json.dumps({"model": f"bench-s500p{args.pace_ms}", "max_tokens": 10, "stream": True,
                                    "messages": [{"role": "user", "content": "go"}]}))
        load = subprocess.Popen([args.python, str(ROOT / "bench" / "loadgen.py"), "--port", str(proxy_port),
                                 "--path", "/v1/messages", "--body-file", str(body), "--concurrency", str(args.load),
                                 "--duration", "600", "--warmup", "0", "--max-drain", "1"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        processes.append(load)
        await asyncio.sleep(3)  # every stream open and running
        loaded, loaded_cpu = await phase(proxy_port, proxy.pid, args.probes)
        print(f"idle:        {summary(idle)}; proxy CPU {idle_cpu * 100:.0f}%")
        print(f"under load:  {summary(loaded)}; proxy CPU {loaded_cpu * 100:.0f}% ({args.load} streams, a chunk every {args.pace_ms} ms each)")
        body.unlink()
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
        hold_server.close()
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--probes", type=int, default=40)
    parser.add_argument("--load", type=int, default=200, help="paced streams kept open during the loaded phase")
    parser.add_argument("--pace-ms", type=int, default=10, help="milliseconds between a load stream's chunks")
    parser.add_argument("--python", default=sys.executable)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
