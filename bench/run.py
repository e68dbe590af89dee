"""Load benchmark: the proxy against a fast fake upstream, each figure beside its direct baseline.

    /tmp/venv/bin/python bench/run.py                 # full run, ~8 minutes on 2 cores
    /tmp/venv/bin/python bench/run.py --quick         # smoke run, ~1 minute
    /tmp/venv/bin/python bench/run.py --write bench/RESULTS.md
    /tmp/venv/bin/python bench/run.py --baseline HEAD~1 --scenarios small,stream50   # A/B, see compare.py

Starts, all on 127.0.0.1 and each in its own process: the fake upstream (`bench/fake_upstream.py`),
two proxies (`proxy.py`: one translating, one configured for Anthropic passthrough) and, per
measured run, the load generator (`wrk` when installed, else `bench/loadgen.py`). Every scenario
and concurrency is run twice: through the proxy, and the same request bytes straight to the fake
upstream (the direct path), so every figure has its baseline beside it. Prints one Markdown table,
then memory, start-up and `--workers` lines.

Policies:
- CPU time per request is the proxy process's utime+stime (/proc/<pid>/stat, children included
  when it forks workers) over the measured window, divided by the requests completed in it. The
  generator drains requests under way before it reports, so no half-served request is counted
  in the CPU but not in the count (wrk cannot drain: at most `c` requests are cut off at its end).
- The load generator's and the upstream's CPU are reported too (CPU% proxy/gen/up, 100 = one core
  busy), to show which process was the bottleneck.
- wrk cannot see a stream's first byte, so streaming scenarios always use the built-in generator
  (it records time to first byte and total time); non-stream scenarios use wrk when installed.
- Nothing here touches any address but 127.0.0.1; every loop is bounded; child processes die with
  this process (PR_SET_PDEATHSIG) and are stopped on exit and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime
import json
import os
import platform
import re
import resource
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
if __name__ == "__main__":
    sys.modules.setdefault("run", sys.modules[__name__])  # so that compare.py's `import run` is this module

import payloads  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MB = 1024 * 1024
DEFAULT_CONCURRENCY = (1, 16, 64, 256)
TARGET_CONCURRENCY = 16  # targets are stated at c=16 unless they say otherwise
OPEN_STREAMS = 1000
ANTHROPIC_HEADERS = ("anthropic-version:2023-06-01", "x-api-key:bench")
OPENAI_HEADERS = ("authorization:Bearer bench",)


# =============================================================================================
# Child processes
# =============================================================================================

CHILDREN: list[subprocess.Popen] = []


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the benchmark dies, however it dies."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(argv: list[str], **kwargs) -> subprocess.Popen:
    """Start a child that is stopped on exit, on Ctrl-C and when this process dies."""
    process = subprocess.Popen(argv, preexec_fn=_die_with_parent, start_new_session=True, **kwargs)
    CHILDREN.append(process)
    return process


def stop(process: subprocess.Popen, grace: float = 3.0) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(5)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()
    if process in CHILDREN:
        CHILDREN.remove(process)


def stop_all() -> None:
    for process in list(CHILDREN):
        stop(process, grace=2.0)


class LineReader:
    """Lines from a child's stdout (binary pipe), each read with a deadline."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.fd = process.stdout.fileno()
        self.pending = b""

    def line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no output from {self.process.args[:3]} within {timeout:.0f}s")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                data = os.read(self.fd, 1 << 20)
                if not data:
                    raise EOFError(f"{self.process.args[:3]} exited (status {self.process.wait()})")
                self.pending += data
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_status(port: int, path: str = "/health", timeout: float = 1.0) -> int:
    """Status of a GET on 127.0.0.1:port, 0 when nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            head = sock.recv(64)
    except OSError:
        return 0
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return int(match.group(1)) if match else 0


def http_post(port: int, path: str, body: bytes, headers: tuple[str, ...], timeout: float = 30.0) -> tuple[int, bytes]:
    """One POST, whole answer (chunked bodies decoded by http.client)."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", path, body, dict(h.split(":", 1) for h in headers) | {"content-type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# =============================================================================================
# /proc readings
# =============================================================================================


def _children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    stat = handle.read()
                parent = int(stat[stat.rfind(b")") + 2 :].split()[1])
                tree.setdefault(parent, []).append(int(entry))
    return tree


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (workers of a forking proxy)."""
    tree = _children_of()
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += tree.get(current, [])
    return out


def cpu_times(pids: list[int]) -> tuple[float, float]:
    """(utime, stime) of the processes added up, in seconds (0 for any already gone)."""
    user = system = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            user += int(fields[11])  # utime and stime are fields 14 and 15 of stat
            system += int(fields[12])
    return user / CLOCK_TICKS, system / CLOCK_TICKS


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime of the processes, in seconds."""
    return sum(cpu_times(pids))


def machine_busy_seconds() -> float:
    """CPU time every process on the machine has used since boot (all cores), from /proc/stat."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    guest = sum(fields[8:10]) if len(fields) > 9 else 0  # already counted in user and nice
    return (sum(fields) - idle - guest) / CLOCK_TICKS


def rss_mb(pids: list[int], field: str = "VmRSS") -> float:
    """Resident memory of the processes added up (`field` VmHWM: the peak since the last reset)."""
    total_kb = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith(field + ":"):
                        total_kb += int(line.split()[1])
    return total_kb / 1024


def reset_peak_rss(pids: list[int]) -> None:
    """Start VmHWM again from the current RSS (Linux 4.0+; ignored where not allowed)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/clear_refs", "w") as handle:
                handle.write("5")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# =============================================================================================
# The processes under test
# =============================================================================================


@dataclass
class Upstream:
    process: subprocess.Popen
    port: int


def start_upstream(python: str) -> Upstream:
    process = spawn([python, str(BENCH / "fake_upstream.py"), "--port", "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = LineReader(process).line(20)
    if not line.startswith("PORT "):
        raise RuntimeError(f"fake upstream said {line!r}")
    return Upstream(process, int(line.split()[1]))


# Measure the proxy's own cost, not its admission policy: with the default upstream concurrency
# limit, c=256 would queue in the proxy and the 1000-stream test would hold only that many open.
PROXY_SETTINGS = {
    "LOG_LEVEL": "WARNING",
    "SHUTDOWN_GRACE": "1",
    "MAX_CONCURRENT_UPSTREAM": "0",
    "MAX_CONNECTIONS": "4096",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def proxy_environment(kind: str, upstream_port: int) -> dict[str, str]:
    """A clean environment (nothing from the caller's shell leaks in) for a proxy of `kind`."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT") if name in os.environ}
    env.update(PROXY_SETTINGS)
    anthropic = {"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{upstream_port}", "ANTHROPIC_API_KEY": "bench"}
    if kind == "translate":
        # Preferred provider openai (the first configured); claude-* names on the OpenAI front go to Anthropic.
        env.update(OPENAI_BASE_URL=f"http://127.0.0.1:{upstream_port}/v1", OPENAI_API_KEY="bench", **anthropic)
    else:
        env.update(PREFERRED_PROVIDER="anthropic", **anthropic)
    return env


@dataclass
class Proxy:
    process: subprocess.Popen
    port: int
    kind: str
    started_in: float  # seconds from spawn to the first 200 on /health

    def pids(self) -> list[int]:
        return process_tree(self.process.pid)


def start_proxy(python: str, kind: str, upstream_port: int, log_dir: Path, extra_args: tuple[str, ...] = (),
                root: Path = ROOT, environment: dict[str, str] | None = None) -> Proxy:
    """Spawn `root`/proxy.py and wait for its first 200 on /health (polled every 2 ms, 15 s at most)."""
    port = free_port()
    log = open(log_dir / f"proxy-{kind}-{port}.log", "wb")
    started = time.perf_counter()
    process = spawn(
        [python, str(root / "proxy.py"), "--port", str(port), "--env-file", os.devnull, *extra_args],
        cwd=root, env=dict(environment or proxy_environment(kind, upstream_port), USAGE_DB=str(log_dir / f"usage-{port}.db")),
        stdin=subprocess.DEVNULL, stdout=log, stderr=log,
    )
    log.close()
    deadline = started + 15
    while time.perf_counter() < deadline:
        if http_status(port, timeout=0.5) == 200:
            return Proxy(process, port, kind, time.perf_counter() - started)
        if process.poll() is not None:
            break
        time.sleep(0.002)
    stop(process)
    raise RuntimeError(f"proxy ({kind}) did not answer /health; see {log_dir}/proxy-{kind}-{port}.log")


# =============================================================================================
# Scenarios
# =============================================================================================


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    proxy_kind: str  # "translate" or "passthrough"
    path: str  # on the proxy
    direct_path: str  # on the fake upstream: where the proxy sends it
    body: bytes
    stream: bool
    headers: tuple[str, ...]
    marker: bytes  # the proxy's answer must contain it
    concurrency: tuple[int, ...] | None = None  # None: all asked for


def build_scenarios() -> dict[str, Scenario]:
    p = payloads
    first = p.claude_code_first("bench-s50")
    late = p.claude_code_late("bench-s50")
    scenarios = [
        Scenario("small", "Anthropic front, small, non-stream", "translate", "/v1/messages", "/v1/chat/completions",
                 p.encode(p.anthropic_small("bench-json")), False, ANTHROPIC_HEADERS, b'"type":"message"'),
        Scenario("stream50", "Anthropic front, stream, 50 text chunks", "translate", "/v1/messages", "/v1/chat/completions",
                 p.encode(p.anthropic_small("bench-s50", stream=True)), True, ANTHROPIC_HEADERS, b"message_stop"),
        Scenario("stream500", "Anthropic front, stream, 500 text chunks", "translate", "/v1/messages", "/v1/chat/completions",
                 p.encode(p.anthropic_small("bench-s500", stream=True)), True, ANTHROPIC_HEADERS, b"message_stop"),
        Scenario("stream50-paced", "as stream50, upstream events 2 ms apart", "translate", "/v1/messages", "/v1/chat/completions",
                 p.encode(p.anthropic_small("bench-s50p2", stream=True)), True, ANTHROPIC_HEADERS, b"message_stop", (1, 16)),
        Scenario("tools31k", "31 KB, 20 tool schemas, non-stream", "translate", "/v1/messages", "/v1/chat/completions",
                 p.encode(p.tools_request("bench-json")), False, ANTHROPIC_HEADERS, b'"type":"message"'),
        Scenario("cc-first", "Claude Code first request, 24 tools, stream 50", "translate", "/v1/messages", "/v1/chat/completions",
                 p.encode(first), True, ANTHROPIC_HEADERS, b"message_stop"),
        Scenario("cc-late", "Claude Code late session, stream 50", "translate", "/v1/messages", "/v1/chat/completions",
                 p.encode(late), True, ANTHROPIC_HEADERS, b"message_stop"),
        Scenario("oai-claude", "OpenAI front to Anthropic, non-stream", "translate", "/v1/chat/completions", "/v1/messages",
                 p.encode(p.openai_small("claude-bench-json")), False, OPENAI_HEADERS, b'"chat.completion"'),
        Scenario("oai-claude-stream", "OpenAI front to Anthropic, stream 50", "translate", "/v1/chat/completions", "/v1/messages",
                 p.encode(p.openai_small("claude-bench-s50", stream=True)), True, OPENAI_HEADERS, b"[DONE]"),
        Scenario("resp-small", "Responses front to a chat upstream (two hops), non-stream", "translate", "/v1/responses",
                 "/v1/chat/completions", p.encode(p.responses_small("bench-json")), False, OPENAI_HEADERS, b'"object":"response"'),
        Scenario("resp-stream50", "Responses front to a chat upstream (two hops), stream 50", "translate", "/v1/responses",
                 "/v1/chat/completions", p.encode(p.responses_small("bench-s50", stream=True)), True, OPENAI_HEADERS,
                 b"response.completed"),
        Scenario("resp-claude", "Responses front to Anthropic (one hop), non-stream", "translate", "/v1/responses", "/v1/messages",
                 p.encode(p.responses_small("claude-bench-json")), False, OPENAI_HEADERS, b'"object":"response"'),
        Scenario("codex-small", "Anthropic front to a Responses upstream (gpt-5-codex), non-stream", "translate",
                 "/v1/messages", "/v1/responses", p.encode(p.anthropic_small("codex-bench-json")), False, ANTHROPIC_HEADERS,
                 b'"type":"message"'),
        Scenario("codex-stream50", "Anthropic front to a Responses upstream (gpt-5-codex), stream 50", "translate",
                 "/v1/messages", "/v1/responses", p.encode(p.anthropic_small("codex-bench-s50", stream=True)), True,
                 ANTHROPIC_HEADERS, b"message_stop"),
        Scenario("pass-small", "Anthropic passthrough, small, non-stream", "passthrough", "/v1/messages", "/v1/messages",
                 p.encode(p.anthropic_small("bench-json")), False, ANTHROPIC_HEADERS, b'"type":"message"'),
        Scenario("pass-stream50", "Anthropic passthrough, stream 50", "passthrough", "/v1/messages", "/v1/messages",
                 p.encode(p.anthropic_small("bench-s50", stream=True)), True, ANTHROPIC_HEADERS, b"message_stop"),
        Scenario("count-76k", "count_tokens, Claude Code first request", "translate", "/v1/messages/count_tokens", "/v1/messages/count_tokens",
                 p.encode(p.count_tokens_body(first, "bench-json")), False, ANTHROPIC_HEADERS, b"input_tokens"),
        Scenario("count-300k", "count_tokens, late session", "translate", "/v1/messages/count_tokens", "/v1/messages/count_tokens",
                 p.encode(p.count_tokens_body(late, "bench-json")), False, ANTHROPIC_HEADERS, b"input_tokens"),
    ]
    return {s.name: s for s in scenarios}


QUICK_SCENARIOS = ("small", "stream50", "tools31k", "cc-first", "pass-small", "count-76k")
EXTRAS = ("memory", "startup", "workers")


# =============================================================================================
# One measured run
# =============================================================================================


@dataclass
class Measure:
    completed: int = 0
    errors: int = 0
    bad_status: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    ttfb_p50_ms: float | None = None
    ttfb_p99_ms: float | None = None
    cpu_us: float | None = None  # per request, of the measured server (proxy runs only)
    cpu_pct: dict = field(default_factory=dict)  # "proxy", "gen", "up", "other" -> % of one core
    sys_share: float | None = None  # of the proxy's CPU time, the part spent in the kernel
    peak_rss_mb: float | None = None  # of the proxy during the run
    tool: str = ""


def percentile(sorted_values: list[int], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return float(sorted_values[index])


class Bench:
    """Holds the options, the running processes and the results."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.python = args.python
        self.wrk = shutil.which("wrk") if args.loadgen in ("auto", "wrk") else None
        if args.loadgen == "wrk" and not self.wrk:
            raise SystemExit("--loadgen wrk: wrk is not installed (apt-get install wrk)")
        self.upstream: Upstream | None = None
        self.proxies: dict[str, Proxy] = {}
        self.body_files: dict[bytes, Path] = {}
        self.loadavg_at_start = " ".join(Path("/proc/loadavg").read_text().split()[:3])

    # -- inputs ----------------------------------------------------------------------------------

    def body_file(self, body: bytes) -> Path:
        path = self.body_files.get(body)
        if path is None:
            path = self.body_files[body] = self.workdir / f"body-{len(self.body_files)}.json"
            path.write_bytes(body)
        return path

    # -- running load ----------------------------------------------------------------------------

    def measure(self, port: int, path: str, body: bytes, headers: tuple[str, ...], concurrency: int, stream: bool,
                server_pids: list[int] | None) -> Measure:
        """Load `port` for the configured duration; CPU per request of `server_pids` if given."""
        if self.wrk and not stream:
            return self._measure_wrk(port, path, body, headers, concurrency, server_pids)
        return self._measure_python(port, path, body, headers, concurrency, server_pids)

    def _loadgen_argv(self, port: int, path: str, body: bytes, headers: tuple[str, ...], concurrency: int,
                      duration: float, warmup: float, extra: tuple[str, ...] = ()) -> list[str]:
        argv = [self.python, str(BENCH / "loadgen.py"), "--port", str(port), "--path", path,
                "--body-file", str(self.body_file(body)), "--concurrency", str(concurrency),
                "--duration", str(duration), "--warmup", str(warmup), "--max-drain", str(self.args.max_drain), *extra]
        for header in headers:
            argv += ["--header", header]
        return argv

    def _snapshot(self, server_pids: list[int] | None, start: bool = False) -> dict[str, float]:
        if start and server_pids:
            reset_peak_rss(server_pids)
        user, system = cpu_times(server_pids) if server_pids else (0.0, 0.0)
        return {
            "wall": time.perf_counter(),
            "server": user + system,
            "server_sys": system,
            "up": cpu_seconds([self.upstream.process.pid]),
            "machine": machine_busy_seconds(),
        }

    def _finish(self, measure: Measure, before: dict, after: dict, gen_cpu: float, server_pids: list[int] | None) -> Measure:
        delta = {key: after[key] - before[key] for key in before}
        wall = max(1e-9, delta["wall"])
        measure.cpu_pct["gen"] = gen_cpu / wall * 100
        measure.cpu_pct["up"] = delta["up"] / wall * 100
        measure.cpu_pct["proxy"] = delta["server"] / wall * 100
        # Whatever else ran on the machine meanwhile (other users, our own orchestration): noise.
        ours = delta["server"] + delta["up"] + gen_cpu
        measure.cpu_pct["other"] = max(0.0, (delta["machine"] - ours) / wall * 100)
        if server_pids:
            measure.peak_rss_mb = rss_mb(server_pids, "VmHWM")
        if server_pids and measure.completed:
            measure.cpu_us = delta["server"] / measure.completed * 1e6
            measure.sys_share = delta["server_sys"] / max(1e-9, delta["server"])
        return measure

    def _measure_python(self, port, path, body, headers, concurrency, server_pids) -> Measure:
        procs = max(1, min(self.args.gen_procs, concurrency))
        shares = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
        generators = []
        try:
            for share in shares:
                argv = self._loadgen_argv(port, path, body, headers, share, self.args.duration, self.args.warmup, ("--sync",))
                process = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                generators.append((process, LineReader(process)))
            budget = self.args.warmup + self.args.max_drain + 30
            for process, reader in generators:
                line = reader.line(budget)
                if line != "WARM":
                    raise RuntimeError(f"load generator said {line!r}")
            before = self._snapshot(server_pids, start=True)
            for process, _ in generators:
                process.stdin.write(b"GO\n")
                process.stdin.flush()
            results = []
            for process, reader in generators:
                line = reader.line(self.args.duration + self.args.max_drain + 30)
                if not line.startswith("RESULT "):
                    raise RuntimeError(f"load generator said {line!r}")
                results.append(json.loads(line[len("RESULT "):]))
            after = self._snapshot(server_pids)
        finally:
            for process, _ in generators:
                stop(process)
        latencies = sorted(x for r in results for x in r["latency_us"])
        ttfbs = sorted(x for r in results for x in r["ttfb_us"])
        measure = Measure(tool="python")
        measure.completed = sum(r["completed"] for r in results)
        measure.errors = sum(r["errors"] for r in results)
        measure.bad_status = sum(n for r in results for code, n in r["statuses"].items() if code != "200")
        measure.rps = sum(r["completed"] / max(1e-9, r["elapsed"]) for r in results)
        measure.p50_ms, measure.p99_ms = percentile(latencies, 0.5) / 1000, percentile(latencies, 0.99) / 1000
        if ttfbs:
            measure.ttfb_p50_ms, measure.ttfb_p99_ms = percentile(ttfbs, 0.5) / 1000, percentile(ttfbs, 0.99) / 1000
        return self._finish(measure, before, after, sum(r["cpu_s"] for r in results), server_pids)

    def _wrk_script(self, body: bytes, headers: tuple[str, ...]) -> Path:
        path = self.workdir / f"wrk-{self.body_file(body).stem}-{abs(hash(headers))}.lua"
        if not path.exists():
            lines = [
                f'local f = assert(io.open("{self.body_file(body)}", "rb"))',
                "wrk.method = \"POST\"",
                "wrk.body = f:read(\"*a\")",
                "f:close()",
                "wrk.headers[\"Content-Type\"] = \"application/json\"",
            ]
            lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in (h.split(":", 1) for h in headers)]
            lines += [
                "done = function(summary, latency, requests)",
                '  io.write(string.format("WRKRESULT %d %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,',
                "    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,",
                "    summary.errors.timeout, latency:percentile(50), latency:percentile(99)))",
                "end",
            ]
            path.write_text("\n".join(lines) + "\n")
        return path

    def _measure_wrk(self, port, path, body, headers, concurrency, server_pids) -> Measure:
        # wrk takes whole seconds only: warm up with the built-in generator for the fractional warm-up.
        if self.args.warmup > 0:
            warm = spawn(self._loadgen_argv(port, path, body, headers, concurrency, self.args.warmup, 0.0),
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
            try:
                warm.wait(self.args.warmup + self.args.max_drain + 30)
            finally:
                stop(warm)
        seconds = max(1, round(self.args.duration))
        argv = [self.wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "30s",
                "-s", str(self._wrk_script(body, headers)), f"http://127.0.0.1:{port}{path}"]
        children_before = children_cpu_seconds()
        before = self._snapshot(server_pids, start=True)
        process = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            output, _ = process.communicate(timeout=seconds + 60)
        finally:
            stop(process)
        after = self._snapshot(server_pids)
        gen_cpu = children_cpu_seconds() - children_before
        match = re.search(rb"WRKRESULT ([\d ]+)", output)
        if not match:
            raise RuntimeError(f"wrk failed: {output.decode(errors='replace')[-500:]}")
        requests, duration_us, connect, read, write, status, timeout, p50, p99 = (int(x) for x in match.group(1).split())
        measure = Measure(tool="wrk")
        measure.completed = requests
        measure.errors = connect + read + write + timeout
        measure.bad_status = status
        measure.rps = requests / max(1e-9, duration_us / 1e6)
        measure.p50_ms, measure.p99_ms = p50 / 1000, p99 / 1000
        return self._finish(measure, before, after, gen_cpu, server_pids)


# =============================================================================================
# Targets and the table
# =============================================================================================


@dataclass(frozen=True)
class Target:
    scenario: str
    concurrency: int
    metric: str  # "cpu", "added_p50", "ttfb_added", "cpu_ratio"
    limit: float | None  # None: computed (cc-first)
    text: str
    reference: str = ""  # for cpu_ratio


TARGETS = (
    Target("small", 16, "cpu", 300, "CPU <= 300 us"),
    Target("small", 1, "added_p50", 0.5, "added p50 <= 0.5 ms"),
    Target("stream50", 16, "cpu", 2500, "CPU <= 2,500 us"),
    Target("stream50", 16, "ttfb_added", 1.0, "TTFB added <= 1 ms"),
    Target("tools31k", 16, "cpu", 600, "CPU <= 600 us"),
    Target("cc-first", 16, "cpu", None, "CPU <= 1,500 us + 50 chunks"),
    Target("pass-small", 16, "cpu_ratio", 0.70, "CPU <= 70% of small", "small"),
    Target("pass-stream50", 16, "cpu_ratio", 0.70, "CPU <= 70% of stream50", "stream50"),
    Target("count-76k", 16, "cpu", 1000, "CPU <= 1,000 us"),
)
# The per-chunk budget the stream50 target implies ((2,500 - 300) / 50), used for the cc-first
# target when the 500-chunk stream was not run and the measured per-chunk cost is unknown.
IMPLIED_CHUNK_US = (2500 - 300) / 50


@dataclass
class Row:
    scenario: Scenario
    concurrency: int
    proxy: Measure | None = None
    direct: Measure | None = None
    failure: str = ""
    verdicts: list[str] = field(default_factory=list)
    passed: list[bool] = field(default_factory=list)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def evaluate(rows: list[Row], per_chunk_us: float | None) -> None:
    by_key = {(r.scenario.name, r.concurrency): r for r in rows if r.proxy}
    for target in TARGETS:
        row = by_key.get((target.scenario, target.concurrency))
        if row is None:
            continue
        p, d = row.proxy, row.direct
        limit = target.limit
        if target.metric == "cpu":
            value = p.cpu_us
            if limit is None:
                limit = 1500 + 50 * (per_chunk_us if per_chunk_us is not None else IMPLIED_CHUNK_US)
            shown = f"{value:.0f} us" if value is not None else "-"
            text = target.text if target.limit is not None else f"CPU <= {limit:,.0f} us (1,500 + 50 x {per_chunk_us if per_chunk_us is not None else IMPLIED_CHUNK_US:.0f})"
        elif target.metric == "added_p50":
            value = p.p50_ms - d.p50_ms
            shown, text = f"{value:.2f} ms", target.text
        elif target.metric == "ttfb_added":
            value = (p.ttfb_p50_ms or 0) - (d.ttfb_p50_ms or 0)
            shown, text = f"{value:.2f} ms", target.text
        else:
            reference = by_key.get((target.reference, target.concurrency))
            if reference is None or not reference.proxy.cpu_us or p.cpu_us is None:
                continue
            value = p.cpu_us / reference.proxy.cpu_us
            shown, text = f"{value:.0%}", target.text
        met = value is not None and value <= limit
        row.verdicts.append(f"{text}: {shown}")
        row.passed.append(met)


HEADER = (
    "| scenario | c | proxy rps | direct rps | ratio | added p50 ms | added p99 ms | TTFB added p50 ms "
    "| CPU us/req | sys | CPU% proxy/gen/up/other | peak RSS MB | target | met? |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|"
)


def cpu_split(m: Measure) -> str:
    return "/".join(f"{m.cpu_pct.get(k, 0):.0f}" for k in ("proxy", "gen", "up", "other"))


def table(rows: list[Row]) -> str:
    lines = [HEADER]
    for row in rows:
        name = row.scenario.name
        if row.failure:
            lines.append(f"| {name} | {row.concurrency} | failed: {row.failure} |  |  |  |  |  |  |  |  |  |  |  |")
            continue
        p, d = row.proxy, row.direct
        problems = []
        for label, m in (("proxy", p), ("direct", d)):
            if m.errors or m.bad_status:
                problems.append(f"{label}: {m.errors} errors, {m.bad_status} non-200")
        if problems:
            name += " (" + "; ".join(problems) + ")"
        ttfb = "-" if p.ttfb_p50_ms is None or d.ttfb_p50_ms is None else f"{p.ttfb_p50_ms - d.ttfb_p50_ms:.2f}"
        cpu = cpu_split(p)
        sys_share = "-" if p.sys_share is None else f"{p.sys_share:.0%}"
        met = ", ".join("yes" if ok else "**NO**" for ok in row.passed)
        lines.append(
            f"| {name} | {row.concurrency} | {p.rps:,.0f} | {d.rps:,.0f} | {p.rps / max(1e-9, d.rps):.2f} "
            f"| {p.p50_ms - d.p50_ms:.2f} | {p.p99_ms - d.p99_ms:.2f} | {ttfb} | {_fmt(p.cpu_us, 0)} | {sys_share} | {cpu} | {_fmt(p.peak_rss_mb, 0)} "
            f"| {'; '.join(row.verdicts)} | {met} |"
        )
    return "\n".join(lines)


# =============================================================================================
# Extras: memory, start-up, workers
# =============================================================================================


def measure_memory(bench: Bench) -> list[str]:
    """A fresh proxy: RSS idle, then with OPEN_STREAMS streams held open by the upstream."""
    proxy = start_proxy(bench.python, "translate", bench.upstream.port, bench.workdir)
    try:
        time.sleep(0.5)
        idle = rss_mb(proxy.pids())
        # Two text events one second apart: each stream stays open ~5 s (6 paced writes).
        body = payloads.encode(payloads.anthropic_small("bench-s2p1000", stream=True))
        argv = bench._loadgen_argv(proxy.port, "/v1/messages", body, ANTHROPIC_HEADERS, OPEN_STREAMS, 0, 0, ("--once",))
        generator = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        reader = LineReader(generator)
        peak, opened, result = 0.0, 0, None
        deadline = time.monotonic() + bench.args.max_drain + 60
        try:
            while time.monotonic() < deadline and result is None:
                peak = max(peak, rss_mb(proxy.pids()))
                with contextlib.suppress(TimeoutError):
                    line = reader.line(0.1)
                    if line.startswith("OPEN "):
                        opened = int(line.split()[1])
                    elif line.startswith("RESULT "):
                        result = json.loads(line[len("RESULT "):])
        finally:
            stop(generator)
        time.sleep(1.0)
        after = rss_mb(proxy.pids())
    finally:
        stop(proxy.process)
    completed = result["completed"] if result else 0
    ok = result["statuses"].get("200", 0) if result else 0
    ttfbs = sorted(result["ttfb_us"]) if result else []
    return [
        f"- RSS idle (fresh proxy, 0.5 s after its first 200): **{idle:.1f} MB** (target <= 25 MB: {'met' if idle <= 25 else '**NOT met**'})",
        f"- RSS with {OPEN_STREAMS} concurrent open streams: peak **{peak:.1f} MB** "
        f"(target <= 150 MB: {'met' if peak <= 150 and opened >= OPEN_STREAMS else '**NOT met**'}); "
        f"{opened}/{OPEN_STREAMS} had their first event at once (TTFB p50 {percentile(ttfbs, 0.5) / 1000:.1f} ms, "
        f"p99 {percentile(ttfbs, 0.99) / 1000:.1f} ms), {ok}/{completed} finished with 200; 1 s after they closed: {after:.1f} MB",
    ]


def measure_startup(bench: Bench) -> list[str]:
    times = []
    for _ in range(bench.args.startup_runs):
        proxy = start_proxy(bench.python, "translate", bench.upstream.port, bench.workdir)
        times.append(proxy.started_in)
        stop(proxy.process)
    best = min(times)
    return [
        f"- Start-up, spawn of `python proxy.py` to the first 200 on /health: best of {len(times)} **{best:.3f} s**, "
        f"median {statistics.median(times):.3f} s (target <= 0.25 s: {'met' if best <= 0.25 else '**NOT met**'})"
    ]


def has_workers_option(python: str) -> bool:
    output = subprocess.run([python, str(ROOT / "proxy.py"), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    return "--workers" in output.stdout


def measure_workers(bench: Bench, scenario: Scenario) -> list[str]:
    if not has_workers_option(bench.python):
        return ["- `--workers 2` throughput: n/a (no --workers)"]
    concurrency = 64
    figures = {}
    for label, extra in (("1", ()), ("2", ("--workers", "2"))):
        proxy = start_proxy(bench.python, "translate", bench.upstream.port, bench.workdir, extra)
        try:
            time.sleep(1.0)  # let every worker start listening
            measure = bench.measure(proxy.port, scenario.path, scenario.body, scenario.headers, concurrency, scenario.stream, proxy.pids())
        finally:
            stop(proxy.process)
        figures[label] = measure
    one, two = figures["1"], figures["2"]
    ratio = two.rps / max(1e-9, one.rps)
    return [
        f"- `--workers 2` on {scenario.name} at c={concurrency}: {two.rps:,.0f} rps vs {one.rps:,.0f} single-process = "
        f"**{ratio:.2f}x** (target >= 1.7x: {'met' if ratio >= 1.7 else '**NOT met**'}); proxy CPU {two.cpu_pct.get('proxy', 0):.0f}% "
        f"vs {one.cpu_pct.get('proxy', 0):.0f}%, generator {two.cpu_pct.get('gen', 0):.0f}%, upstream {two.cpu_pct.get('up', 0):.0f}% "
        f"({os.cpu_count()} cores shared by all)"
    ]


# =============================================================================================
# Machine description and the results file
# =============================================================================================


def machine_text() -> str:
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, IndexError):
        memory = f"{int(Path('/proc/meminfo').read_text().split()[1]) / MB:.1f} GiB"
    return f"{os.cpu_count()} CPUs ({cpu_model}), {memory} RAM, Linux {platform.release()}"


def python_text(python: str) -> str:
    proxy_python = subprocess.run([python, "-c", "import sys, h11; print(sys.version.split()[0], h11.__version__)"],
                                  capture_output=True, text=True, timeout=30).stdout.split()
    return f"Python {proxy_python[0] if proxy_python else '?'} (h11 {proxy_python[1] if len(proxy_python) > 1 else '?'})"


def loadgen_text(bench: Bench) -> str:
    if not bench.wrk:
        return "not installed (built-in generator for every scenario)"
    version = subprocess.run([bench.wrk, "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return f"{version.split(' [')[0]} for non-stream scenarios; built-in generator for streams"


def machine_lines(bench: Bench) -> list[str]:
    commit = "unknown"
    source = (ROOT / "proxy.py").resolve().parent  # the checkout the proxy came from
    with contextlib.suppress(Exception):
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "--no-optional-locks", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if dirty:
            commit += " (with uncommitted changes)"
    return [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine_text()}",
        f"- {python_text(bench.python)} for the proxy, the fake upstream and the built-in generator",
        f"- Load generator: {loadgen_text(bench)}",
        f"- git commit: {commit}",
        "- Proxy settings: " + ", ".join(f"{k}={v}" for k, v in PROXY_SETTINGS.items() if not k.startswith("PYTHON")),
        f"- Load average at the start: {bench.loadavg_at_start}",
        f"- Duration {bench.args.duration:g} s per run after a {bench.args.warmup:g} s warm-up; generator processes: {bench.args.gen_procs}",
    ]


NOTES = """\
How to read it: "proxy rps" and "direct rps" are the same request bytes at the same concurrency, through
the proxy and straight to the fake upstream; "ratio" is proxy/direct. "added" latencies are proxy minus
direct percentiles (total time of the request; for streams the whole stream); "TTFB added" is the same
for the first byte of a stream. "CPU us/req" is the proxy process's CPU time (user+system) per completed
request or stream, "sys" the part of it spent in the kernel (on loopback a send() also runs the
receiver's TCP input, so the sender pays for part of the receiver's work). "CPU% proxy/gen/up/other" is
the CPU of the proxy, the load generator, the fake upstream and everything else on the machine during
the proxy run, 100 = one core busy: a proxy near 100 is the bottleneck, as intended; "other" well
above zero means something else was running and the wall-clock figures of that row are disturbed. All processes share the machine's cores, so on a
2-core machine the generator and the upstream take CPU the proxy could have used: throughput is a
lower bound. CPU per request does not depend on how the cores are shared among our processes, but it
does grow when something else keeps the other core (or its hyperthread sibling) busy. Targets are checked at c=16 unless the target says
otherwise; the per-chunk cost is (CPU of stream500 - CPU of stream50) / 450 at c=16."""


def main() -> int:
    parser = argparse.ArgumentParser(description="Proxy load benchmark against a fake upstream (see bench/README.md).")
    parser.add_argument("--quick", action="store_true", help="smoke run: short runs, fewer scenarios, c=1,16")
    parser.add_argument("--duration", type=float, help="seconds per measured run (default 3; --quick 1)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up before each run (default 0.5; --quick 0.3)")
    parser.add_argument("--concurrency", help="comma-separated, default 1,16,64,256 (--quick 1,16)")
    parser.add_argument("--scenarios", help="comma-separated names (see --list); extras: " + ",".join(EXTRAS))
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto", help="auto: wrk if installed (non-stream), else built-in")
    parser.add_argument("--gen-procs", type=int, default=1, help="built-in generator processes per run (default 1; mind the cores)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the proxy and helpers (needs h11)")
    parser.add_argument("--max-drain", type=float, default=60.0, help="longest wait for requests under way after a run")
    parser.add_argument("--startup-runs", type=int, help="start-up measurements, best reported (default 5; --quick 3)")
    parser.add_argument("--write", metavar="PATH", help="also write the results and machine description to PATH (Markdown)")
    parser.add_argument("--baseline", metavar="REF", help="compare the work tree with git commit REF, interleaved (see bench/README.md)")
    parser.add_argument("--change", metavar="REF", help=argparse.SUPPRESS)  # with --baseline: commit REF instead of the work tree
    parser.add_argument("--rounds", type=int, default=2, help="with --baseline: measurements of each side per row (default 2)")
    args = parser.parse_args()
    if args.change and not args.baseline:
        parser.error("--change needs --baseline")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.duration = args.duration if args.duration is not None else (1.0 if args.quick else 3.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if args.quick else 0.5)
    args.startup_runs = args.startup_runs or (3 if args.quick else 5)
    concurrency = tuple(int(c) for c in args.concurrency.split(",")) if args.concurrency else ((1, 16) if args.quick else DEFAULT_CONCURRENCY)

    scenarios = build_scenarios()
    if args.list:
        for s in scenarios.values():
            print(f"{s.name:18} {len(s.body) / 1000:7.1f} KB  {s.what}")
        print("extras: " + ", ".join(EXTRAS))
        return 0
    if args.scenarios:
        wanted = [name.strip() for name in args.scenarios.split(",") if name.strip()]
        unknown = [n for n in wanted if n not in scenarios and n not in EXTRAS]
        if unknown:
            parser.error(f"unknown scenario(s) {', '.join(unknown)}; see --list")
    else:
        wanted = list(QUICK_SCENARIOS if args.quick else scenarios) + list(EXTRAS)
    check = subprocess.run([args.python, "-c", "import h11"], capture_output=True)
    if check.returncode != 0:
        parser.error(f"{args.python} cannot import h11: run with the project's environment (e.g. /tmp/venv/bin/python bench/run.py)")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as workdir:
        bench = Bench(args, Path(workdir))
        runner = run
        if args.baseline:
            import compare

            runner = compare.run
        try:
            return runner(bench, scenarios, wanted, concurrency, command, began)
        except KeyboardInterrupt:
            print("\ninterrupted; stopping child processes", file=sys.stderr)
            return 130
        finally:
            stop_all()


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(bench: Bench, scenarios: dict[str, Scenario], wanted: list[str], concurrency: tuple[int, ...], command: str, began: float) -> int:
    args = bench.args
    bench.upstream = start_upstream(bench.python)
    selected = [scenarios[name] for name in wanted if name in scenarios]
    for kind in sorted({s.proxy_kind for s in selected}):
        bench.proxies[kind] = start_proxy(bench.python, kind, bench.upstream.port, bench.workdir)
    extra_lines: list[str] = []
    rows: list[Row] = []
    plan = [(s, c) for s in selected for c in concurrency if s.concurrency is None or c in s.concurrency]
    progress(f"{len(plan)} rows x 2 runs, {args.duration:g} s each; load generator: {'wrk (non-stream) + built-in' if bench.wrk else 'built-in'}")
    checked: dict[str, str] = {}
    for index, (scenario, c) in enumerate(plan, 1):
        proxy = bench.proxies[scenario.proxy_kind]
        row = Row(scenario, c)
        rows.append(row)
        if scenario.name not in checked:
            checked[scenario.name] = sanity_check(bench, proxy, scenario)
        if checked[scenario.name]:
            row.failure = checked[scenario.name]
            progress(f"[{index}/{len(plan)}] {scenario.name} c={c}: skipped ({row.failure})")
            continue
        try:
            row.direct = bench.measure(bench.upstream.port, scenario.direct_path, scenario.body, scenario.headers, c, scenario.stream, None)
            row.proxy = bench.measure(proxy.port, scenario.path, scenario.body, scenario.headers, c, scenario.stream, proxy.pids())
        except (RuntimeError, TimeoutError, EOFError) as error:
            row.failure = str(error)[:200]
            progress(f"[{index}/{len(plan)}] {scenario.name} c={c}: failed: {row.failure}")
            continue
        p, d = row.proxy, row.direct
        progress(
            f"[{index}/{len(plan)}] {scenario.name} c={c}: proxy {p.rps:,.0f} rps p50 {p.p50_ms:.2f} ms, {_fmt(p.cpu_us, 0)} us CPU/req "
            f"({p.tool}); direct {d.rps:,.0f} rps p50 {d.p50_ms:.2f} ms; CPU% proxy/gen/up/other {cpu_split(p)}; peak RSS {_fmt(p.peak_rss_mb, 0)} MB"
        )
    for kind, proxy in bench.proxies.items():
        extra_lines.append(f"- RSS of the {kind} proxy after its load runs (idle): {rss_mb(proxy.pids()):.1f} MB (info)")
    for proxy in bench.proxies.values():
        stop(proxy.process)

    by_key = {(r.scenario.name, r.concurrency): r for r in rows if r.proxy}
    per_chunk = None
    s50, s500 = by_key.get(("stream50", TARGET_CONCURRENCY)), by_key.get(("stream500", TARGET_CONCURRENCY))
    if s50 and s500 and s50.proxy.cpu_us and s500.proxy.cpu_us:
        per_chunk = (s500.proxy.cpu_us - s50.proxy.cpu_us) / 450
        extra_lines.insert(0, f"- Per-chunk cost, (stream500 - stream50) / 450 at c={TARGET_CONCURRENCY}: **{per_chunk:.1f} us** CPU per text chunk")
    evaluate(rows, per_chunk)
    others = [m.cpu_pct.get("other", 0) for r in rows for m in (r.proxy, r.direct) if m]
    if others and max(others) > 15:
        extra_lines.append(
            f"- **Noise:** other processes on this machine used up to {max(others):.0f}% of a core during the runs "
            f"(median {statistics.median(others):.0f}%): throughput and latency are disturbed, and CPU per request is "
            f"inflated too (cores, caches and memory bandwidth are shared); rerun on a quiet machine for figures to compare"
        )

    if "startup" in wanted:
        progress("start-up time ...")
        extra_lines += measure_startup(bench)
    if "memory" in wanted:
        progress(f"RSS idle and with {OPEN_STREAMS} open streams ...")
        extra_lines += measure_memory(bench)
    if "workers" in wanted:
        progress("--workers ...")
        extra_lines += measure_workers(bench, build_scenarios()["small"])

    elapsed = time.monotonic() - began
    report = table(rows) + "\n\n" + "\n".join(extra_lines) if rows else "\n".join(extra_lines)
    print(report)
    progress(f"done in {elapsed:.0f} s")
    if args.write:
        text = "\n".join([
            "# Benchmark results",
            "",
            "Made with:",
            "",
            "```sh",
            command,
            "```",
            "",
            *machine_lines(bench),
            f"- Wall time of the run: {elapsed:.0f} s",
            "",
            report,
            "",
            NOTES,
            "",
        ])
        Path(args.write).write_text(text)
        progress(f"wrote {args.write}")
    return 0


def sanity_check(bench: Bench, proxy: Proxy, scenario: Scenario) -> str:
    """One request each way before measuring; an empty string when both look right."""
    try:
        status, body = http_post(proxy.port, scenario.path, scenario.body, scenario.headers)
        if status != 200 or scenario.marker not in body:
            return f"proxy answered {status}: {body[:160].decode(errors='replace')}"
        status, body = http_post(bench.upstream.port, scenario.direct_path, scenario.body, scenario.headers)
        if status != 200:
            return f"fake upstream answered {status}: {body[:160].decode(errors='replace')}"
    except OSError as error:
        return f"check request failed: {error}"
    return ""


if __name__ == "__main__":
    sys.exit(main())
