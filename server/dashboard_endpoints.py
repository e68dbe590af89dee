"""The dashboard's HTTP side: the page, its data, and the session that lets a browser read it.

`GET /dashboard` is one self-contained page (server/dashboard_page.py); it polls `GET /dashboard/data`,
which gathers what the gateway already knows: the routing table, key states, the live counts and
latency of server/dashboard.py, and the usage ledger's sums. `DASHBOARD=off` removes all four routes.

Policies:
- Who may look: with no inbound key configured, anyone who can reach the port (loopback by default)
  sees everything. With keys, the page asks for one once: `POST /dashboard/login` with the key in a
  JSON body sets a session cookie (HttpOnly, SameSite=Strict, Path=/dashboard), so the key is never in
  a URL and the page never holds it. A request with `x-api-key` / `Authorization: Bearer` is let in
  too (curl). Named clients see their own rows; admin keys (ADMIN_API_KEY) see everything.
- Sessions are stateless, so every worker and a restarted gateway accept them: the cookie is
  `client.admin.expiry.mac`, where the MAC is an HMAC-SHA256 keyed by the client's own inbound key.
  Removing a key from the settings ends its sessions; they expire after SESSION_SECONDS anyway.
- The cookie is `Secure` when a TLS terminator in front says `X-Forwarded-Proto: https`; the
  gateway itself speaks plain HTTP, where a Secure cookie would never come back.
- Login and logout need `content-type: application/json`, which a cross-site form cannot send
  without a CORS preflight this server never grants.
- Nothing the page shows costs the request path anything: the ledger is read in a thread, at most
  once per LEDGER_CACHE_SECONDS, and only when the page asks.
- The page is served with a strict Content-Security-Policy: everything inline, nothing external.
- Several workers (--workers; the supervisor makes a private directory, `Config.live_share_dir`):
  every LIVE_PUBLISH_SECONDS each worker takes `Dashboard.export` on its event loop (list copies,
  samples only of series that changed), adds its gauges (open streams, queue waits, pool), and a
  thread writes it to `<dir>/<pid>.json` (a temporary file renamed into place, so a reader sees a
  whole file). Nothing new recorded and the same gauges: the thread only touches the file. The worker
  that answers `/dashboard/data` reads the others' files in a thread, skipping files not touched for
  LIVE_STALE_SECONDS (a dead worker's; the supervisor also removes a dead worker's file when it reaps
  it) and unreadable or malformed ones, and merges them with its own state in that thread; the other
  workers' numbers are up to about a second behind. `worker.merged` says how many workers' numbers
  are in the answer. A worker removes its file when it shuts down.
- The file is JSON lines: a head `{"time", "gauges", "counts"}`, then one line per record (an object)
  and one per latency series (an array). The writer reuses the text of rows unchanged since its last
  write and the reader the checked rows of lines it read before, and both work a row at a time, so
  at the caps (megabytes of samples) neither holds the interpreter for long nor redoes the work.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time

from server.config import SECONDS, VERSION, InboundKey
from server.connection import Request, ResponseWriter
from server.dashboard import Dashboard, Export, check_export, check_row
from translate.errors import AuthenticationFailed, InvalidRequest
from translate.sse import dumps

SESSION_COOKIE = "switchboard_session"
SESSION_SECONDS = 12 * 3600
LEDGER_CACHE_SECONDS = 2.0
PAGE_HEADERS = [
    ("content-type", "text/html; charset=utf-8"),
    ("cache-control", "no-store"),
    ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                                "connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
]
JSON_NO_STORE = [("content-type", "application/json"), ("cache-control", "no-store")]
LIVE_PUBLISH_SECONDS = 1 * SECONDS  # how often each worker writes its live state for the others
LIVE_STALE_SECONDS = 5 * SECONDS  # a file not touched for this long is a dead worker's: not counted
GAUGES = ("open_streams", "queue_waits", "pool_idle", "pool_active")

log = logging.getLogger("switchboard")


class DashboardEndpoints:
    """The four routes of the dashboard, bound to one gateway."""

    def __init__(self, gateway) -> None:
        # Server lifetime.
        self.gateway = gateway
        self.state = Dashboard()
        self._ledger_cache: tuple[float, str | None, dict] | None = None  # (when, viewer, tokens)
        # With several workers: where they share their live state (the gateway is built in the worker,
        # so this is the serving process's pid), and this worker's publishing task while it runs.
        self.share_dir: str | None = gateway.config.live_share_dir
        self._reader = LiveFileReader(self.share_dir, os.getpid()) if self.share_dir is not None else None
        self._writer: LiveFileWriter | None = None
        self._publisher: asyncio.Task | None = None
        self._stopping: asyncio.Event | None = None

    def routes(self) -> dict:
        return {
            ("GET", "/dashboard"): self.handle_page,
            ("HEAD", "/dashboard"): self.handle_page,
            ("GET", "/dashboard/data"): self.handle_data,
            ("POST", "/dashboard/login"): self.handle_login,
            ("POST", "/dashboard/logout"): self.handle_logout,
        }

    # ---- recording -------------------------------------------------------------------------

    def record(self, request: Request, elapsed: float, ttft: float | None) -> None:
        """One finished front request, as the page lists it: numbers and names, never prompt text."""
        route, usage = request.route, request.usage
        self.state.record({
            "time": time.time(), "client": request.client, "front": request.front.name, "route_rule": request.route_rule,
            "provider": route.provider if route else "-", "model": route.requested if route else "-",
            "upstream": f"{route.provider}/{route.model}" if route else "-", "status": request.status or 0,
            "input_tokens": usage.uncached_input_tokens,
            "output_tokens": usage.output_tokens, "cache_read_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens, "ms": round(elapsed * 1000, 1),
            "ttft_ms": round(ttft * 1000, 1) if ttft is not None else None, "stream": request.stream,
            "request_id": request.request_id, "error": request.error,
        })

    # ---- sharing the live numbers between workers -------------------------------------------

    def start(self) -> None:
        """With a share directory (--workers), start writing this worker's live state there every second.

        Call it on the running event loop (server/listener.py `Server.start`); returns at once.
        """
        if self.share_dir is None or self._publisher is not None:
            return
        self._writer = LiveFileWriter(os.path.join(self.share_dir, f"{os.getpid()}.json"))
        self._stopping = asyncio.Event()
        self._publisher = asyncio.ensure_future(self._publish(self._writer, self._stopping))

    async def stop(self) -> None:
        """Stop publishing (after a write in progress) and remove this worker's file. Raises nothing."""
        publisher, self._publisher = self._publisher, None
        if publisher is None:
            return
        self._stopping.set()
        try:
            await publisher
        except Exception:  # noqa: BLE001 - a bug in publishing must not stop the shutdown
            log.exception("dashboard: publishing the live numbers failed")
        await asyncio.to_thread(self._writer.remove)

    async def _publish(self, writer: LiveFileWriter, stopping: asyncio.Event) -> None:
        written: tuple[dict | None, dict] | None = None  # (newest record, gauges) of the last file written
        failing = False
        while not stopping.is_set():
            gauges, newest = self.gauges(), self.state.newest_record()
            try:
                if written is not None and written[0] is newest and written[1] == gauges:
                    await asyncio.to_thread(writer.touch)  # nothing new: the file only says "alive"
                else:
                    export = self.state.export()
                    export["gauges"] = gauges
                    await asyncio.to_thread(writer.write, export)
                    written = (newest, gauges)
            except OSError as error:
                if not failing:
                    log.warning("dashboard: cannot write the live numbers for the other workers: %s", error)
                failing, written = True, None
            else:
                failing = False
            try:
                await asyncio.wait_for(stopping.wait(), LIVE_PUBLISH_SECONDS)
            except asyncio.TimeoutError:
                pass

    def gauges(self) -> dict[str, int]:
        """This worker's open streams, queue waits and pooled connections, as they are now."""
        gateway = self.gateway
        pool = gateway.client.pool_stats()
        return {"open_streams": int(gateway.metrics.value("switchboard_active_streams")),
                "queue_waits": sum(gateway.limiter.waiting.values()), "pool_idle": pool["idle"],
                "pool_active": pool["active"]}

    async def live(self, client: str | None) -> tuple[dict, int]:
        """The live numbers for `client` (None: all), and how many workers' numbers they include.

        Alone: this worker's state, on the loop. With a share directory: this worker's export, taken
        on the loop, merged in a thread with the other workers' fresh files. Raises nothing.
        """
        if self._reader is None:
            live, gauges = self.state.snapshot(client=client), [self.gauges()]
        else:
            own = self.state.export()
            own["gauges"] = self.gauges()
            reader, state = self._reader, self.state

            def merge() -> tuple[dict, list[dict]]:
                now = time.time()
                everyone = [own, *reader.read(now)]
                # An empty dashboard with the same settings computes over the exports alone, so this
                # thread never touches the state the event loop keeps recording into.
                merger = Dashboard(recent_limit=state.recent_limit, window_seconds=state.window_seconds)
                return merger.snapshot(client=client, now=now, others=everyone), [export["gauges"] for export in everyone]

            live, gauges = await asyncio.to_thread(merge)
        total = {name: sum(worker.get(name, 0) for worker in gauges) for name in GAUGES}
        live["now"].update(open_streams=total["open_streams"], queue_waits=total["queue_waits"],
                           pool={"idle": total["pool_idle"], "active": total["pool_active"]})
        return live, len(gauges)

    # ---- who is looking --------------------------------------------------------------------

    def viewer(self, request: Request) -> InboundKey | None:
        """The key behind the session cookie or the request's own key header; KEYLESS without keys."""
        gateway = self.gateway
        identity = gateway.identify(request.headers)
        if identity is not None:
            return identity
        token = cookie_value(request.headers.get("cookie", ""), SESSION_COOKIE)
        return self.session_key(token) if token else None

    def session_key(self, token: str, now: float | None = None) -> InboundKey | None:
        try:
            client, admin, expiry, mac = token.rsplit(".", 3)
            expires = int(expiry)
        except ValueError:
            return None
        if expires < (time.time() if now is None else now):
            return None
        found = None
        for key in self.gateway.config.inbound_keys:
            if key.client == client and str(int(key.admin)) == admin:
                expected = session_mac(key, client, admin, expiry)
                if hmac.compare_digest(expected, mac) and found is None:
                    found = key
        return found

    # ---- handlers --------------------------------------------------------------------------

    async def handle_page(self, request: Request, out: ResponseWriter) -> None:
        from server.dashboard_page import PAGE

        await out.send(200, PAGE_HEADERS, PAGE if request.method == "GET" else b"")

    async def handle_login(self, request: Request, out: ResponseWriter) -> None:
        """`{"key": "..."}` -> 204 with the session cookie, or 401."""
        key = self.gateway.key_matching([_posted_key(request)])
        if key is None:
            raise AuthenticationFailed("invalid key")
        expiry = str(int(time.time()) + SESSION_SECONDS)
        admin = str(int(key.admin))
        token = f"{key.client}.{admin}.{expiry}.{session_mac(key, key.client, admin, expiry)}"
        cookie = f"{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age={SESSION_SECONDS}"
        if request.headers.get("x-forwarded-proto", "").lower() == "https":
            cookie += "; Secure"  # behind a TLS terminator: the browser will send it back over HTTPS only
        await out.send(204, [("set-cookie", cookie), ("cache-control", "no-store")], b"")

    async def handle_logout(self, request: Request, out: ResponseWriter) -> None:
        _require_json(request)
        cookie = f"{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age=0"
        await out.send(204, [("set-cookie", cookie), ("cache-control", "no-store")], b"")

    async def handle_data(self, request: Request, out: ResponseWriter) -> None:
        viewer = self.viewer(request)
        if viewer is None:
            raise AuthenticationFailed("log in with a key of this gateway to see its dashboard")
        request.client, request.admin = viewer.client, viewer.admin
        only = None if viewer.admin else viewer.client
        gateway = self.gateway
        config = gateway.config
        limiter = gateway.limiter
        live, merged = await self.live(only)
        builtin = gateway.echo_fallback
        providers = [
            {"name": name, "describe": provider.describe(), "in_flight": limiter.in_flight.get(name, 0),
             "waiting": limiter.waiting.get(name, 0),
             "keys": provider.keys.snapshot() if provider.keys is not None else []}
            for name, provider in gateway.providers.items() if builtin or name != "echo"
        ]
        body = {
            "generated_at": time.time(),
            "version": VERSION,
            "viewer": {"client": viewer.client, "admin": viewer.admin},
            "sessions": bool(config.inbound_keys),  # False: no keys, the page has nothing to log out of
            # With --workers, `merged` of the `of` workers' live numbers are in (the ledger's tokens are everyone's).
            "worker": {"pid": os.getpid(), "of": config.workers, "merged": merged},
            "routes": gateway.routing.describe(),
            "route_rules": config.route_classes.describe(),
            "aliases": dict(config.model_aliases),
            "fallbacks": list(config.fallback_models),
            "providers": providers,
            **live,
            "tokens": await self.tokens(only),
        }
        await out.send(200, JSON_NO_STORE, dumps(body).encode())

    async def tokens(self, client: str | None) -> dict:
        """Today's and the last seven days' sums from the ledger, cached briefly (read in a thread)."""
        ledger = self.gateway.ledger
        if ledger is None:
            return {"ledger": False, "today": [], "week": []}
        now = time.monotonic()
        cached = self._ledger_cache
        if cached is not None and cached[1] == client and now - cached[0] < LEDGER_CACHE_SECONDS:
            return cached[2]
        from server.ledger import LedgerError, query

        today = time.strftime("%Y-%m-%d", time.gmtime())
        week = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 6 * 86400))
        try:
            today_rows = await asyncio.to_thread(query, [ledger.path], since=today, group_by=("client", "model"), client=client)
            week_rows = await asyncio.to_thread(query, [ledger.path], since=week, group_by=("day", "client", "model"),
                                                client=client)
        except LedgerError as error:
            return {"ledger": True, "error": str(error), "today": [], "week": []}
        tokens = {"ledger": True, "today": today_rows, "week": week_rows}
        self._ledger_cache = (now, client, tokens)
        return tokens


# ---------------------------------------------------------------------------------------------
# The live-state files of several workers
# ---------------------------------------------------------------------------------------------


class LiveFileWriter:
    """Writes one worker's exports to its file, reusing the text of rows unchanged since the last write.

    Its methods run in a thread, one at a time. They serialize row by row, so no single call holds the
    interpreter for long, and rename a whole file into place, so a reader sees the old or the new one.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._texts: dict[int, tuple[object, str]] = {}  # id(row) -> (row, its line), rows of the last write
        self._last: Export | None = None

    def write(self, export: Export) -> None:
        """Replace the file with `export`, as JSON lines; raises OSError."""
        texts: dict[int, tuple[object, str]] = {}

        def line(row: object) -> str:
            cached = self._texts.get(id(row))
            if cached is None or cached[0] is not row:  # the row itself is kept, so its id is not reused
                cached = (row, _json_line(row))
            texts[id(row)] = cached
            return cached[1]

        head = _json_line({"time": export["time"], "gauges": export["gauges"], "counts": export["counts"]})
        lines = [head, *map(line, export["recent"]), *map(line, export["series"]), ""]
        self._texts, self._last = texts, export
        temporary = self.path + ".tmp"
        with open(temporary, "w", encoding="ascii") as file:
            file.write("\n".join(lines))
        os.replace(temporary, self.path)

    def touch(self) -> None:
        """Mark the file fresh without rewriting it (written again if it went missing); raises OSError."""
        try:
            os.utime(self.path)
        except FileNotFoundError:
            if self._last is None:
                raise
            self.write(self._last)

    def remove(self) -> None:
        """Remove the file (and a temporary one left by a failed write); raises nothing."""
        for path in (self.path, self.path + ".tmp"):
            try:
                os.remove(path)
            except OSError:
                pass


class LiveFileReader:
    """Reads the other workers' files, reusing the checked rows of lines it has read before."""

    def __init__(self, directory: str, own_pid: int) -> None:
        self.directory = directory
        self.own_pid = own_pid
        self._rows: dict[str, tuple[str, object]] = {}  # line -> (part, checked row), from the last read

    def read(self, now: float) -> list[Export]:
        """The exports in `<pid>.json` files of other pids touched in the last LIVE_STALE_SECONDS.

        Stale files (a dead worker's), unreadable ones and malformed ones are skipped (logged at
        DEBUG); a missing directory gives []. Runs in a thread; raises nothing.
        """
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            return []
        known, seen, exports = self._rows, {}, []
        for name in names:
            pid, _, suffix = name.partition(".")
            if suffix != "json" or not (pid.isascii() and pid.isdigit()) or int(pid) == self.own_pid:
                continue
            try:
                with open(os.path.join(self.directory, name), "rb") as file:
                    if now - os.fstat(file.fileno()).st_mtime > LIVE_STALE_SECONDS:
                        continue
                    text = file.read().decode("ascii")
                exports.append(_parse_live_file(text, known, seen))
            except (OSError, ValueError, RecursionError) as error:  # JSON and decoding errors are ValueErrors
                log.debug("dashboard: skipping the live file %s: %s", name, error)
        self._rows = seen
        return exports


def _json_line(value: object) -> str:
    # ASCII only (ensure_ascii), so no line break of any kind can appear inside a line.
    return json.dumps(value, separators=(",", ":"))


def _parse_live_file(text: str, known: dict, seen: dict) -> Export:
    """One file's export; rows found in `known` are not parsed again; every row goes into `seen`."""
    if not text.endswith("\n"):
        raise ValueError("the file is cut short")
    head, *lines = text[:-1].split("\n")
    header = json.loads(head)
    if not isinstance(header, dict):
        raise ValueError("the first line is not an object")
    export = check_export({**header, "recent": [], "series": []})
    for line in lines:
        found = known.get(line) or seen.get(line)
        if found is None:
            value = json.loads(line)
            part = "recent" if isinstance(value, dict) else "series"
            found = (part, check_row(part, value))
        seen[line] = found
        export[found[0]].append(found[1])
    return export


def session_mac(key: InboundKey, client: str, admin: str, expiry: str) -> str:
    secret = hashlib.sha256(b"switchboard dashboard session\0" + key.key.encode()).digest()
    return hmac.new(secret, f"{client}.{admin}.{expiry}".encode(), hashlib.sha256).hexdigest()


def cookie_value(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def _require_json(request: Request) -> None:
    if not request.headers.get("content-type", "").lower().startswith("application/json"):
        raise InvalidRequest("send application/json")


def _posted_key(request: Request) -> str:
    _require_json(request)
    try:
        posted = json.loads(request.body or b"{}")
    except ValueError:
        raise InvalidRequest("the body must be JSON: {\"key\": \"...\"}") from None
    key = posted.get("key") if isinstance(posted, dict) else None
    if not isinstance(key, str) or not key:
        raise InvalidRequest("the body must be JSON: {\"key\": \"...\"}")
    return key
