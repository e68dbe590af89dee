"""switchboard: an API gateway that lets Anthropic, Chat Completions and Responses clients use any provider.

This file is the entry point (`python proxy.py`, the `switchboard` script, the zipapp) and the table
of contents of the program. A request flows one way through the rooms:

    server/connection.py   client bytes -> h11 -> Request (limits, deadlines, disconnects)
    server/gateway.py      auth, route (front dialect, provider, model), fallbacks, retries, keys
                           (server/about_endpoints.py: health, models, metrics, usage; the dashboard)
    translate/dialects.py  front dialect -> hub (Anthropic Messages) -> upstream dialect, or passthrough
    upstreams/<provider>   URL, headers and quirks; upstreams/http.py sends through the pool
    translate/             upstream events -> front events (stream translators: feed / close / fail)
    server/connection.py   framed and written back; one access line (server/logs.py), metrics

Start-up: server/config.py parses the settings (each provider module in upstreams/registry.py reads
its own variables), server/logs.py sets up logging, server/listener.py listens, and
server/workers.py supervises worker processes when there are several.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from server.config import VERSION, Config, ConfigError, load_environment
from server.listener import Server, serve
from server.logs import setup_logging
from server.workers import supervise

__all__ = ["VERSION", "main"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["usage"]:
        from server.ledger import main as usage  # `python proxy.py usage --since 7d`: the ledger as a table

        return usage(argv[1:])
    parser = argparse.ArgumentParser(prog="switchboard", description="Anthropic/OpenAI API gateway.",
                                     epilog="`switchboard usage --help`: the usage ledger's sums as a table.")
    parser.add_argument("--host", help="address to listen on (HOST, default 127.0.0.1)")
    parser.add_argument("--port", help="port to listen on (PORT, default 8082)")
    parser.add_argument("--env-file", metavar="PATH", help="read settings from PATH instead of ./.env")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="worker processes sharing the port (WORKERS, default 1)")
    parser.add_argument("--version", action="version", version=f"switchboard {VERSION}")
    args = parser.parse_args(argv)
    try:
        env = load_environment(args.env_file, os.environ)
        if args.host:
            env["HOST"] = args.host
        if args.port:
            env["PORT"] = args.port
        if args.workers is not None:
            env["WORKERS"] = str(args.workers)
        config = Config.from_env(env)
        if not config.is_loopback() and not config.proxy_api_keys and not config.allow_anonymous:
            raise ConfigError(
                f"HOST={config.host} is not a loopback address and PROXY_API_KEY is not set: "
                "an open relay spends your money. Set PROXY_API_KEY, or ALLOW_ANONYMOUS=true to accept it"
            )
        try:
            server = Server(config)
        except OSError as error:
            raise ConfigError(f"SSL_CERT_FILE: cannot load the CA bundle: {error}") from None
        check_usage_ledger(config)
    except ConfigError as error:
        print(f"switchboard: configuration error: {error}", file=sys.stderr)
        return 2
    setup_logging(config)
    try:
        if config.workers > 1:
            if not hasattr(os, "fork"):
                print("switchboard: --workers needs a platform with fork(); use one process", file=sys.stderr)
                return 2
            return supervise(config, config.workers)
        asyncio.run(serve(server))
    except OSError as error:
        print(f"switchboard: cannot listen on {config.host}:{config.port}: {error.strerror}", file=sys.stderr)
        return 1
    return 0


def check_usage_ledger(config: Config) -> None:
    """An explicit USAGE_DB that cannot be used stops the start (exit 2), before any worker forks."""
    if config.usage_db is None or config.usage_db.lower() == "off":
        return
    from server.ledger import LedgerError, open_ledger

    try:
        ledger = open_ledger(config.usage_db, explicit=True)
    except LedgerError as error:
        raise ConfigError(str(error)) from None
    if ledger is not None:
        ledger.close()


if __name__ == "__main__":
    sys.exit(main())
