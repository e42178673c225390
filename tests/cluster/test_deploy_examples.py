"""docs/deploy/cluster/: the three-instance example is valid for the tools that read it
(nats-server, systemd, xod's own settings, compose's structure), its files agree with each
other, and its three-node NATS cluster really runs xod's shared state with three replicas."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.api.harness import cheap_hasher
from tests.cluster.nats_server import free_port, nats_server_binary
from tests.daemon.helpers import REPO
from xod import config
from xod.cluster.shared_state import SharedState

EXAMPLE = REPO / "docs" / "deploy" / "cluster"
NATS_NAMES = ("nats-1", "nats-2", "nats-3")
XOD_NAMES = ("xod-1", "xod-2", "xod-3")
CLUSTER_READY = 60.0  # seconds three fresh servers may take to elect JetStream's leaders


def nats_config_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [nats_server_binary(), "--config", str(path), "-t"],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_nats_configurations_are_valid_and_differ_only_in_the_server_name(
    tmp_path: Path,
) -> None:
    texts = {name: (EXAMPLE / f"{name}.conf").read_text() for name in NATS_NAMES}
    for name, text in texts.items():
        result = nats_config_check(EXAMPLE / f"{name}.conf")
        assert result.returncode == 0, result.stderr
        assert re.findall(r"nats://([\w-]+):6222", text) == list(NATS_NAMES)
        assert f"\nserver_name: {name}\n" in text
        assert text.replace(f"server_name: {name}", "") == texts["nats-1"].replace(
            "server_name: nats-1", ""
        )
    broken = tmp_path / "broken.conf"
    broken.write_text(texts["nats-1"].replace("jetstream {", "jetstream {{"))
    assert nats_config_check(broken).returncode != 0  # the check does check


def test_the_systemd_units_verify_cleanly(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze not found: apt-get install -y systemd"
    # ExecStart's binaries must exist for `verify`: a stand-in for each, the rest as shipped;
    # the drop-in is found where systemd would look, beside the unit in the unit path.
    stand_in = tmp_path / "stand-in"
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    units = {
        "xod.service": (REPO / "systemd" / "xod.service", "/usr/bin/xod "),
        "nats-server.service": (EXAMPLE / "nats-server.service", "/usr/bin/nats-server "),
    }
    for name, (source, binary) in units.items():
        text = source.read_text()
        assert f"ExecStart={binary}" in text
        (tmp_path / name).write_text(text.replace(binary, f"{stand_in} "))
    (tmp_path / "xod.service.d").mkdir()
    shutil.copy(EXAMPLE / "xod-cluster.conf", tmp_path / "xod.service.d" / "cluster.conf")
    result = subprocess.run(
        [analyze, "verify", *units],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"SYSTEMD_UNIT_PATH": f"{tmp_path}:", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    drop_in = (EXAMPLE / "xod-cluster.conf").read_text()
    assert "After=nats-server.service" in drop_in
    assert "Environment=XOD_CLUSTER_INSTANCE=" in drop_in


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLE / "compose.yaml").read_text())
    return loaded


def example_settings(instance: str) -> config.Settings:
    return config.load(path=EXAMPLE / "config.toml", environ={"XOD_CLUSTER_INSTANCE": instance})


def test_the_xod_configuration_names_the_three_nats_servers_for_every_instance() -> None:
    for instance in XOD_NAMES:
        settings = example_settings(instance)
        assert settings.cluster.nats == tuple(f"nats://{name}:4222" for name in NATS_NAMES)
        assert settings.cluster.instance == instance
        assert settings.cluster.state_replicas == len(NATS_NAMES)


def test_the_compose_file_wires_the_example_files_together() -> None:
    services = compose()["services"]
    assert set(services) == {*NATS_NAMES, *XOD_NAMES, "load-balancer"}
    for name in NATS_NAMES:
        assert f"./{name}.conf:/etc/nats/nats-server.conf:ro" in services[name]["volumes"]
        assert services[name]["command"] == ["--config", "/etc/nats/nats-server.conf"]
    instances = set()
    for name in XOD_NAMES:
        service = services[name]
        assert "./config.toml:/etc/xod/config.toml:ro" in service["volumes"]
        assert set(service["depends_on"]) == set(NATS_NAMES)
        assert "--config" in service["build"]["dockerfile_inline"]
        instances.add(service["environment"]["XOD_CLUSTER_INSTANCE"])
    assert instances == set(XOD_NAMES)
    balancer = services["load-balancer"]
    assert "./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in balancer["volumes"]
    backends = re.findall(
        r"^\s+server (\S+) (\S+):8080 check", (EXAMPLE / "haproxy.cfg").read_text(), re.M
    )
    assert backends == [(name, name) for name in XOD_NAMES]
    for mounted in re.findall(r"\./([\w.-]+):", (EXAMPLE / "compose.yaml").read_text()):
        assert (EXAMPLE / mounted).is_file(), mounted


@pytest.fixture
def example_nats_cluster(tmp_path: Path) -> Iterator[tuple[list[str], list[str]]]:
    """The three example servers on loopback (names → 127.0.0.1, each its own ports and store):
    their client URLs and their monitoring URLs."""
    ports = {name: (free_port(), free_port(), free_port()) for name in NATS_NAMES}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name in NATS_NAMES:
            text = (EXAMPLE / f"{name}.conf").read_text()
            client, route, monitor = ports[name]
            text = text.replace("0.0.0.0:4222", f"127.0.0.1:{client}")
            text = text.replace("0.0.0.0:6222", f"127.0.0.1:{route}")
            text = text.replace("0.0.0.0:8222", f"127.0.0.1:{monitor}")
            text = text.replace("/var/lib/nats", str(tmp_path / name))
            for other in NATS_NAMES:
                text = text.replace(f"nats://{other}:6222", f"nats://127.0.0.1:{ports[other][1]}")
            path = tmp_path / f"{name}.conf"
            path.write_text(text)
            processes.append(
                subprocess.Popen(
                    [
                        nats_server_binary(),
                        "--config",
                        str(path),
                        "--log",
                        str(tmp_path / f"{name}.log"),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        yield (
            [f"nats://127.0.0.1:{ports[name][0]}" for name in NATS_NAMES],
            [f"http://127.0.0.1:{ports[name][2]}" for name in NATS_NAMES],
        )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def open_member(urls: list[str], name: str, state_dir: Path) -> tuple[SharedState, Any]:
    """A member on one server of the example cluster, once JetStream has its leaders."""
    replicas = example_settings(name).cluster.state_replicas
    async with asyncio.timeout(CLUSTER_READY):
        while True:
            shared = SharedState(urls, name, replicas=replicas)
            try:
                return shared, await shared.open_store(state_dir, cheap_hasher())
            except Exception:  # JetStream not ready yet: no meta leader, no bucket
                await shared.close()
                await asyncio.sleep(0.5)


def stream_replicas(monitor: str, stream: str) -> int:
    """The stream's replica count, as NATS monitoring (/jsz) reports it."""
    with urllib.request.urlopen(f"{monitor}/jsz?streams=true&config=true", timeout=10) as reply:
        report = json.load(reply)
    for account in report["account_details"]:
        for detail in account.get("stream_detail", []):
            if detail["name"] == stream:
                replicas: int = detail["config"]["num_replicas"]
                return replicas
    raise AssertionError(f"no stream {stream} in {report}")


async def test_the_example_nats_cluster_keeps_three_copies_of_the_shared_state(
    tmp_path: Path, example_nats_cluster: tuple[list[str], list[str]]
) -> None:
    urls, monitors = example_nats_cluster
    first, store_1 = await open_member([urls[0]], "xod-1", tmp_path / "1")
    third, store_3 = await open_member([urls[2]], "xod-3", tmp_path / "3")
    try:
        user = store_1.users.create("three@cluster.test", "pw")
        async with asyncio.timeout(15):
            while store_3.users.get(user.id) is None:
                await asyncio.sleep(0.05)
        assert await asyncio.to_thread(stream_replicas, monitors[1], "KV_xod-state") == 3
    finally:
        for shared, store in ((first, store_1), (third, store_3)):
            store.close()
            await shared.close()
