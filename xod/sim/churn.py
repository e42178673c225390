"""Churn: a steady stream of object changes (metrics updates, power changes, tasks), about
`rate` object changes per second, for event-stream and cache load tests."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from xod.sim.dispatch import Call
from xod.sim.lifecycle.domains import go_down, go_live, pick_host
from xod.sim.values import now
from xod.sim.vm_states import allowed_operations

if TYPE_CHECKING:
    from xod.sim.pool import SimPool

_TICK = 0.05


class Churn:
    def __init__(self, pool: SimPool) -> None:
        self._pool = pool
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random(pool.config.seed)
        self.changes = 0

    async def start(self, rate: float) -> None:
        await self.stop()
        if rate > 0:
            self._task = asyncio.get_running_loop().create_task(self._run(rate))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _run(self, rate: float) -> None:
        loop = asyncio.get_running_loop()
        owed = 0.0
        last = loop.time()
        while True:
            await asyncio.sleep(_TICK)
            current = loop.time()
            owed += (current - last) * rate
            last = current
            while owed >= 1:
                owed -= self._one_change()

    def _one_change(self) -> int:
        """Make one kind of change; returns the number of object changes it made."""
        roll = self._rng.random()
        if roll < 0.8:
            return self._metrics_update()
        if roll < 0.95:
            return self._power_change()
        return self._task_cycle()

    def _random_vm(self) -> tuple[str, dict[str, Any]] | None:
        table = self._pool.db.tables["VM"]
        for _ in range(8):
            ref = self._rng.choice(list(table)) if len(table) < 64 else self._sample(table)
            record = table[ref]
            if not (record["is_a_template"] or record["is_control_domain"]):
                return ref, record
        return None

    def _sample(self, table: dict[str, dict[str, Any]]) -> str:
        # Picking from a 10k-entry dict without building a list of its keys each time.
        keys = getattr(self, "_keys", None)
        if keys is None or self._rng.random() < 0.01:
            keys = self._keys = list(table)
        ref = self._rng.choice(keys)
        return ref if ref in table else next(iter(table))

    def _metrics_update(self) -> int:
        picked = self._random_vm()
        if picked is None:
            return 1
        _, record = picked
        db = self._pool.db
        metrics = record["metrics"]
        if db.find("VM_metrics", metrics) is None:
            return 1
        vcpus = record["VCPUs_at_startup"] if record["power_state"] == "Running" else 0
        db.update(
            "VM_metrics",
            metrics,
            {
                "VCPUs_utilisation": {str(i): round(self._rng.random(), 3) for i in range(vcpus)},
                "last_updated": now(),
            },
        )
        return 1

    def _power_change(self) -> int:
        picked = self._random_vm()
        if picked is None or picked[1]["current_operations"]:
            return 1
        vm, record = picked
        pool = self._pool
        call = Call(pool, "churn", None, pool.master, True, None)
        before = pool.db.generation
        try:
            if record["power_state"] == "Running":
                changes = go_down(call, vm)
            elif record["power_state"] == "Halted":
                host = pick_host(pool.db, record)
                changes = go_live(call, vm, host, False)
            else:
                return 1
        except Exception:
            return 1
        changes["allowed_operations"] = allowed_operations({**record, **changes})
        pool.db.update("VM", vm, changes)
        return max(1, pool.db.generation - before)

    def _task_cycle(self) -> int:
        tasks = self._pool.tasks
        task = tasks.create("churn.task", self._pool.master)
        tasks.set_progress(task, 0.5)
        tasks.succeed(task, "")
        tasks.destroy(task)
        return 4
