"""`xod`, the command: `xod serve`'s flags, its settings (defaults < config file < `XOD_*`
environment < flags), exit codes, process-wide tuning, and the run of the daemon
(`xod.lifecycle.Daemon`: start, SIGHUP reload, graceful stop, `--demo`).

An invalid setting exits with code 2 before anything starts; a failure to start (a port in
use, an unwritable state directory) with code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path

from xod import __version__, config, logs, runtime
from xod.config import ConfigError, Settings
from xod.lifecycle import Daemon, tls_context

log = logs.get_logger("xod.daemon")

EXIT_CONFIG = 2
EXIT_STARTUP = 1
DEMO_LISTEN = "127.0.0.1:8080"


# -- command line ------------------------------------------------------------------------------

# Flags that are shorthands for one setting.
_FLAG_SETTINGS = {
    "listen": "http.listen",
    "state_dir": "state.dir",
    "log_level": "log.level",
    "log_format": "log.format",
    "tls_cert": "tls.cert",
    "tls_key": "tls.key",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xod", description="Management daemon for Xen pools.")
    parser.add_argument("--version", action="version", version=f"xod {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the daemon",
        description="Run the daemon. Settings: defaults < config file < XOD_* environment"
        " variables < flags.",
    )
    serve.add_argument(
        "--config",
        metavar="FILE",
        help=f"TOML config file (default: $XOD_CONFIG or {config.DEFAULT_CONFIG_PATH},"
        " which may be absent; --demo reads none unless named)",
    )
    serve.add_argument("--listen", metavar="HOST:PORT", help="http.listen")
    serve.add_argument("--state-dir", metavar="DIR", help="state.dir")
    serve.add_argument("--log-level", metavar="LEVEL", help="log.level")
    serve.add_argument("--log-format", metavar="FORMAT", help="log.format")
    serve.add_argument("--tls-cert", metavar="FILE", help="tls.cert")
    serve.add_argument("--tls-key", metavar="FILE", help="tls.key")
    serve.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="any setting, e.g. --set limits.max_clients=100 (repeatable)",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="run an embedded simulated pool (3 hosts, ~50 VMs), register it, create a demo"
        " admin and print the URL and credentials",
    )
    return parser


def flag_overrides(args: argparse.Namespace) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(item, "expected --set SECTION.KEY=VALUE", "command line")
        overrides[name.strip()] = value
    for attribute, name in _FLAG_SETTINGS.items():
        value = getattr(args, attribute)
        if value is not None:
            overrides[name] = value
    return overrides


def load_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    overrides = flag_overrides(args)
    if args.demo:
        # A demo must run anywhere: no /etc/xod, no /var/lib/xod; a config file only if named.
        explicit = args.config or environ.get(config.CONFIG_ENV)
        path, required = (Path(explicit), True) if explicit else (None, False)
        defaults = {"http.listen": DEMO_LISTEN, "state.dir": ""}
    else:
        path, required = config.config_path(args.config, environ)
        defaults = {}
    settings = config.load(
        path=path, required=required, environ=environ, overrides=overrides, defaults=defaults
    )
    if not args.demo and not settings.state.dir:
        raise ConfigError("state.dir", "must not be empty")
    return settings


# -- entry point -------------------------------------------------------------------------------


def serve(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    try:
        settings = load_settings(args, environ)
        tls_context(settings)  # fail on an unusable certificate before anything starts
    except ConfigError as error:
        print(f"xod: invalid configuration: {error}", file=sys.stderr)
        return EXIT_CONFIG
    logs.setup(settings.log.level, settings.log.format)
    runtime.tune_process()  # the daemon owns the process: xod/runtime.py

    def reload_settings() -> Settings:
        return load_settings(args, environ)

    async def run() -> int:
        daemon = Daemon(settings, reload_settings, demo=args.demo)
        return await daemon.run()

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a port in use, an unwritable state dir, a newer database...
        log.exception("cannot start")
        print(f"xod: cannot start: {error}", file=sys.stderr)
        return EXIT_STARTUP


def main(argv: list[str] | None = None) -> None:
    import os

    args = build_parser().parse_args(argv)
    if args.command == "serve":
        sys.exit(serve(args, os.environ))
    sys.exit(EXIT_CONFIG)
