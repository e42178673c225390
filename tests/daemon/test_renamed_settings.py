"""A config written for the previous release (old limit names) still works for one release: the
daemon applies it and says, in its log, what to rename."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
import websockets

from tests.daemon.helpers import XodProcess


async def test_old_limit_names_apply_with_a_warning_in_the_log(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        '[http]\nlisten = "127.0.0.1:0"\n'
        f'[state]\ndir = "{tmp_path / "state"}"\n'
        "[limits]\nmax_message_bytes = 2048\n"
    )
    xod = XodProcess(["--config", str(config_path)], tmp_path)
    try:
        warning = xod.wait_log("deprecated setting")
        assert warning["level"] == "warning"
        assert "rename it limits.max_incoming_message_bytes" in warning["detail"]
        api = xod.url().replace("http", "ws", 1) + "/api/"
        async with websockets.connect(api) as ws:
            small = {"jsonrpc": "2.0", "id": 1, "method": "system.getVersion"}
            await ws.send(orjson.dumps(small).decode())
            async with asyncio.timeout(5):  # a message under the old name's limit is answered
                assert orjson.loads(await ws.recv())["id"] == 1
            await ws.send(orjson.dumps({**small, "params": {"x": "a" * 4096}}).decode())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async with asyncio.timeout(5):  # one over it closes the connection
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    finally:
        xod.stop()
