"""A simulated pool in its own process, for the command benchmarks: xod and the pool must not
share one event loop (nor one core) for the figures to mean anything."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
from collections.abc import Iterator
from typing import Any


def _serve(options: dict[str, Any], report: Any) -> None:
    from xod.sim.pool import SimConfig
    from xod.sim.simulator import Simulator

    async def main() -> None:
        async with Simulator(SimConfig(**options)) as sim:
            report.send(sim.master_url)
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()

    asyncio.run(main())


@contextlib.contextmanager
def simulator_process(**options: Any) -> Iterator[str]:
    """Start a Simulator(SimConfig(**options)) in a child process; yields its master URL."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_serve, args=(options, sender), daemon=True)
    process.start()
    try:
        if not receiver.poll(120):
            raise RuntimeError("the simulator did not start")
        yield receiver.recv()
    finally:
        process.terminate()
        process.join(10)
