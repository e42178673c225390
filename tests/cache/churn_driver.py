"""Seeded random changes applied straight to a simulated pool's database (its events follow)."""

from __future__ import annotations

import random
import uuid

from xod.sim.pool import SimPool
from xod.sim.schema import new_record
from xod.sim.values import NULL_REF, now


def _new_ref() -> str:
    return f"OpaqueRef:{uuid.uuid4()}"


class ChurnDriver:
    def __init__(self, pool: SimPool, seed: int) -> None:
        self.pool = pool
        self.db = pool.db
        self.rng = random.Random(seed)
        self.created_tasks: list[str] = []

    def _user_vms(self) -> list[str]:
        return sorted(
            ref
            for ref, r in self.db.tables["VM"].items()
            if not r["is_a_template"] and not r["is_control_domain"] and not r["is_a_snapshot"]
        )

    def step(self) -> str:
        """One random change; returns its kind."""
        rng = self.rng
        db = self.db
        kind = rng.choice(
            ["rename", "metrics", "guest", "power", "task_add", "task_del", "vif_add",
             "vif_del", "message"]
        )  # fmt: skip
        vms = self._user_vms()
        vm = rng.choice(vms)
        record = db.tables["VM"][vm]
        if kind == "rename":
            db.update("VM", vm, {"name_label": f"renamed-{rng.randrange(10**6)}"})
        elif kind == "metrics":
            db.update("VM_metrics", record["metrics"], {"memory_actual": rng.randrange(1, 8) << 30})
        elif kind == "guest" and record["guest_metrics"] != NULL_REF:
            networks = {"0/ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"}
            db.update("VM_guest_metrics", record["guest_metrics"], {"networks": networks})
        elif kind == "power":
            if record["power_state"] == "Running":
                db.update("VM", vm, {"power_state": "Halted", "resident_on": NULL_REF})
            elif record["power_state"] == "Halted":
                host = rng.choice(self.pool.host_refs)
                db.update("VM", vm, {"power_state": "Running", "resident_on": host})
        elif kind == "task_add":
            task = new_record(
                "task",
                uuid=str(uuid.uuid4()),
                name_label="churn",
                status="pending",
                progress=0.0,
                created=now(),
                resident_on=self.pool.master,
            )
            self.created_tasks.append(db.insert("task", task, _new_ref()))
        elif kind == "task_del" and self.created_tasks:
            task_ref = self.created_tasks.pop(rng.randrange(len(self.created_tasks)))
            if task_ref in db.tables["task"]:
                db.delete("task", task_ref)
        elif kind == "vif_add":
            network = rng.choice(sorted(db.tables["network"]))
            vif = new_record(
                "VIF",
                uuid=str(uuid.uuid4()),
                device=str(len(record["VIFs"])),
                network=network,
                VM=vm,
                MAC="02:00:00:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3)),
                MTU=1500,
            )
            db.insert("VIF", vif, _new_ref())
        elif kind == "vif_del" and record["VIFs"]:
            db.delete("VIF", rng.choice(record["VIFs"]))
        elif kind == "message":
            message = new_record("message")
            message.update(
                uuid=str(uuid.uuid4()),
                name="CHURN",
                priority=5,
                cls="VM",
                obj_uuid=record["uuid"],
                timestamp=now(),
                body="",
            )
            db.insert("message", message, _new_ref())
        return kind
