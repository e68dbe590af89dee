"""Several worker processes sharing one port (--workers N), under a restarting supervisor.

Policies:
- SO_REUSEPORT where the platform has it (and the port is fixed): each worker binds its own socket
  and the kernel spreads connections; otherwise the workers share one socket from the supervisor.
- A worker that dies is restarted after WORKER_RESTART_DELAY; WORKER_CRASH_LOOP_LIMIT deaths within
  WORKER_CRASH_WINDOW stop the supervisor. Workers notice a supervisor killed outright and leave.
- The dashboard's live numbers: before forking, the supervisor makes a private directory
  (`tempfile.mkdtemp`, mode 0700) and hands it to the workers as `Config.live_share_dir`; each
  worker writes its live state there every second and merges the others' when the page asks
  (server/dashboard_endpoints.py). The supervisor removes a dead worker's file when it reaps it,
  and the whole directory when it exits; after a supervisor killed outright, the last worker to
  leave removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import socket
import tempfile
import time

from server.config import SECONDS, Config
from server.gateway import Gateway
from server.listener import Server, banner, serve

log = logging.getLogger("switchboard")

WORKER_RESTART_DELAY = 1 * SECONDS
WORKER_CRASH_LOOP_LIMIT = 5  # deaths within WORKER_CRASH_WINDOW before the supervisor gives up
WORKER_CRASH_WINDOW = 30 * SECONDS
WORKER_PARENT_CHECK_INTERVAL = 1 * SECONDS


def listening_socket(config: Config, reuse_port: bool, listen: bool = True) -> socket.socket:
    """A bound TCP socket for HOST:PORT, listening unless told not to (SO_REUSEPORT when `reuse_port`)."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((config.host, config.port))
    if listen:
        sock.listen(1024)
    sock.setblocking(False)
    return sock


def run_worker(config: Config, sock: socket.socket | None) -> None:
    """The body of one worker process: its own event loop, gateway and upstream pool. Never returns."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if sock is None:  # SO_REUSEPORT: each worker binds its own socket; the kernel spreads connections
            sock = listening_socket(config, reuse_port=True)
        supervisor = os.getppid()

        async def run() -> None:
            stop = asyncio.Event()

            async def stop_when_orphaned() -> None:
                # A supervisor killed outright (SIGKILL) cannot stop its workers: they notice and leave.
                while os.getppid() == supervisor:
                    await asyncio.sleep(WORKER_PARENT_CHECK_INTERVAL)
                log.warning("worker %d: supervisor gone, stopping", os.getpid())
                stop.set()

            watchdog = asyncio.ensure_future(stop_when_orphaned())
            try:
                await serve(Server(config), sock=sock, quiet=True, stop=stop)
            finally:
                watchdog.cancel()
            if config.live_share_dir is not None and os.getppid() != supervisor:
                # No supervisor left to remove the share directory: the last worker out does (its own file
                # is gone by now, and rmdir removes only an empty directory).
                with contextlib.suppress(OSError):
                    os.rmdir(config.live_share_dir)

        asyncio.run(run())
    except BaseException:  # noqa: BLE001 - a worker must never return into the supervisor's code
        log.exception("worker %d failed", os.getpid())
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def supervise(config: Config, workers: int) -> int:
    """Start `workers` processes sharing HOST:PORT, restart any that dies, stop them all on SIGTERM/SIGINT.

    SO_REUSEPORT is used where the platform has it (and the port is fixed); otherwise the workers
    share one listening socket inherited from the supervisor. With the dashboard on, the workers'
    share directory for its live numbers exists from before the first fork until this returns.
    Returns 0 once stopped; raises OSError when HOST:PORT cannot be bound.
    """
    reuse_port = hasattr(socket, "SO_REUSEPORT") and config.port != 0
    share_dir = None
    if config.dashboard:
        share_dir = tempfile.mkdtemp(prefix="switchboard-live-")  # mode 0700: this user's processes only
        config = dataclasses.replace(config, live_share_dir=share_dir)
    try:
        return _supervise(config, workers, reuse_port)
    finally:
        if share_dir is not None:
            shutil.rmtree(share_dir, ignore_errors=True)


def _supervise(config: Config, workers: int, reuse_port: bool) -> int:
    if reuse_port:
        # Bind without listening, only to fail here, once, with a clear message if the port is
        # taken; a listening socket here would take a share of the connections nobody accepts.
        listening_socket(config, reuse_port=True, listen=False).close()
        shared_for_workers, port = None, config.port
    else:
        shared_for_workers = listening_socket(config, reuse_port=False)
        port = shared_for_workers.getsockname()[1]
    log.info("%s", banner(config, Gateway(config), port))
    log.info("starting %d workers (%s)", workers, "SO_REUSEPORT" if shared_for_workers is None else "shared socket")
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    def spawn() -> int:
        pid = os.fork()
        if pid == 0:
            run_worker(config, shared_for_workers)
        return pid

    children = {spawn() for _ in range(workers)}
    deaths: list[float] = []
    while children:
        if stopping:
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + config.shutdown_grace + 10
            while children and time.monotonic() < deadline:
                pid, _ = os.waitpid(-1, os.WNOHANG)
                if pid:
                    children.discard(pid)
                else:
                    time.sleep(0.05)
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return 0
        pid, status = os.waitpid(-1, os.WNOHANG)
        if not pid:
            time.sleep(0.1)
            continue
        children.discard(pid)
        forget_worker(config, pid)
        now = time.monotonic()
        deaths = [t for t in deaths if now - t < WORKER_CRASH_WINDOW] + [now]
        log.warning("worker %d exited (status %d); restarting it", pid, os.waitstatus_to_exitcode(status))
        if len(deaths) >= WORKER_CRASH_LOOP_LIMIT:
            log.error("workers keep dying (%d times in %.0fs): giving up", len(deaths), WORKER_CRASH_WINDOW)
            stopping = True
            continue
        time.sleep(WORKER_RESTART_DELAY)
        if not stopping:
            children.add(spawn())
    return 0


def forget_worker(config: Config, pid: int) -> None:
    """Remove a dead worker's live-numbers files, so no other worker counts them even for a few seconds."""
    if config.live_share_dir is None:
        return
    for name in (f"{pid}.json", f"{pid}.json.tmp"):
        with contextlib.suppress(OSError):
            os.remove(os.path.join(config.live_share_dir, name))
