"""One way to listen: the daemon (`xod serve`), `XodApp.start` (tests' harness, benches) and
anything else serving an aiohttp application go through `listen`, so they all get the same
backlog, the same shutdown grace and the bound port read from aiohttp's public
`runner.addresses`."""

from __future__ import annotations

import errno
import ssl
from dataclasses import dataclass
from typing import Any

from aiohttp import web

# Pending TCP connections: a burst of clients reconnecting after a network blip must not
# overflow it (an overflow costs each dropped SYN a 1 s retransmit). aiohttp's default is 128.
DEFAULT_BACKLOG = 1024
# How long in-flight HTTP requests get once WebSockets are closed (aiohttp's default: 60 s).
DEFAULT_SHUTDOWN_GRACE = 3.0


@dataclass
class Listener:
    runner: web.AppRunner
    host: str
    port: int  # the bound one (port 0 asks for a free port)

    async def close(self) -> None:
        """Stop listening, run the app's on_shutdown (and wait for handlers up to the grace),
        then its on_cleanup."""
        await self.runner.cleanup()


async def listen(
    app: web.Application,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    backlog: int = DEFAULT_BACKLOG,
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE,
    any_port_if_taken: bool = False,
    **runner_options: Any,
) -> Listener:
    """Serve `app` on host:port; with `any_port_if_taken`, on a free port when that one is in
    use (the demo). Raises OSError (a port in use…) with nothing left running."""
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=shutdown_grace, **runner_options
    )
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port, ssl_context=ssl_context, backlog=backlog).start()
        except OSError as error:
            if not (any_port_if_taken and port != 0 and error.errno == errno.EADDRINUSE):
                raise
            await web.TCPSite(runner, host, 0, ssl_context=ssl_context, backlog=backlog).start()
    except BaseException:
        await runner.cleanup()
        raise
    addresses = runner.addresses
    bound_port = addresses[0][1] if addresses else port
    return Listener(runner, host, bound_port)
