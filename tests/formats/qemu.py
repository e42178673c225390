"""`qemu-img`, the real peer of the VHD tests (Debian `qemu-utils`)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path


def qemu_img_sync(*args: str | Path) -> str:
    """Run `qemu-img` (blocking): its stdout; fails the test on a non-zero exit."""
    done = subprocess.run(["qemu-img", *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, f"qemu-img {args}: {done.stderr}"
    return done.stdout


async def qemu_img(*args: str | Path) -> str:
    """`qemu_img_sync` from a coroutine, in a worker thread (the loop keeps serving)."""
    return await asyncio.to_thread(qemu_img_sync, *args)
