"""`python -m xod.sim`: run a simulated XAPI pool until SIGINT/SIGTERM.

Prints where each host listens (one line per host, then the Unix socket and the credentials), or
with `--json` one JSON object, as soon as every listener is up, so scripts can read it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

import orjson

from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator


def parse_listen(text: str) -> tuple[str, int]:
    address, sep, port = text.rpartition(":")
    if not sep or not address:
        raise argparse.ArgumentTypeError(f"expected ADDRESS:PORT, got {text!r}")
    try:
        return address, int(port)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xod.sim", description="Run a simulated XAPI pool (XML-RPC and JSON-RPC)."
    )
    parser.add_argument("--hosts", type=int, default=3, help="hosts in the pool (default 3)")
    parser.add_argument("--vms", type=int, default=200, help="user VMs (default 200)")
    parser.add_argument("--templates", type=int, default=100, help="VM templates (default 100)")
    parser.add_argument(
        "--listen",
        type=parse_listen,
        default=("127.0.0.1", 0),
        metavar="ADDRESS:PORT",
        help="first host's address and the shared port; host i gets address+i"
        " (default 127.0.0.1:0)",
    )
    parser.add_argument("--unix", metavar="PATH", help="also serve the master on this Unix socket")
    parser.add_argument("--churn", type=float, default=0.0, help="object changes per second")
    parser.add_argument(
        "--op-duration", type=float, default=0.0, help="seconds a lifecycle operation takes"
    )
    parser.add_argument("--seed", type=int, default=None, help="workload random seed")
    parser.add_argument("--username", default="root")
    parser.add_argument("--password", default="password")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument(
        "--http-port",
        type=int,
        default=None,
        metavar="PORT",
        help="also serve every host on this port of its address, e.g. 80 as a real host does"
        " (for clients that read /rrd_updates at http://<host address>/; 80 needs root)",
    )
    return parser


def describe(sim: Simulator) -> dict[str, Any]:
    hosts_records = sim.pool.records("host")
    master = sim.pool.master
    return {
        "hosts": [
            {
                "ref": ref,
                "name_label": hosts_records[ref]["name_label"],
                "address": sim.pool.address_of(ref),
                "url": sim.url_of(ref),
                "master": ref == master,
            }
            for ref in sim.pool.host_refs
        ],
        "master_url": sim.master_url,
        "port": sim.port,
        "unix": sim.unix_path,
        "username": sim.pool.config.username,
        "password": sim.pool.config.password,
    }


def format_text(info: dict[str, Any]) -> str:
    lines = [
        f"host {h['name_label']} {h['url']}" + (" master" if h["master"] else "")
        for h in info["hosts"]
    ]
    if info["unix"]:
        lines.append(f"unix {info['unix']}")
    lines.append(f"credentials {info['username']} {info['password']}")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> None:
    address, port = args.listen
    config = SimConfig(
        hosts=args.hosts,
        vms=args.vms,
        templates=args.templates,
        username=args.username,
        password=args.password,
        op_duration=args.op_duration,
        seed=args.seed,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sim = Simulator(
        config, listen=address, port=port, unix_path=args.unix, http_port=args.http_port
    )
    await sim.start()
    try:
        if args.churn > 0:
            await sim.pool.start_churn(args.churn)
        info = describe(sim)
        if args.json:
            print(orjson.dumps(info).decode(), flush=True)
        else:
            print(format_text(info), flush=True)
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(run(args))
    except OSError as exc:
        print(f"xod.sim: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
