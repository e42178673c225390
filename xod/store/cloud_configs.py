"""Stored cloud-init templates (XO's `cloudConfig.*`): user-data templates, and network-config
templates (`type: "network"`). The template text is kept verbatim; nothing renders it here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from xod.store.database import Database, now_ms

NETWORK = "network"  # the type of a network-config template; user-data ones have none


@dataclass(frozen=True, slots=True)
class CloudConfig:
    id: str
    name: str
    template: str
    type: str | None = None

    def public(self) -> dict[str, Any]:
        """As xo-server returns it: `{id, name, template}`, plus `type` for network configs."""
        record: dict[str, Any] = {"id": self.id, "name": self.name, "template": self.template}
        if self.type is not None:
            record["type"] = self.type
        return record


class CloudConfigStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def create(self, name: str, template: str, kind: str | None = None) -> CloudConfig:
        config = CloudConfig(str(uuid.uuid4()), name, template, kind)
        self._db.execute(
            "INSERT INTO cloud_configs (id, name, template, type, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (config.id, name, template, kind, now_ms()),
        )
        return config

    def list(self, kind: str | None = None) -> list[CloudConfig]:
        """The templates of one kind (None: user data), oldest first."""
        rows = self._db.query(
            "SELECT id, name, template, type FROM cloud_configs WHERE type IS ?"
            " ORDER BY created_at, id",
            (kind,),
        )
        return [CloudConfig(row["id"], row["name"], row["template"], row["type"]) for row in rows]

    def update(self, config_id: str, name: str | None, template: str | None) -> bool:
        """Change the given fields; False when there is no such template."""
        return (
            self._db.execute(
                "UPDATE cloud_configs SET name = coalesce(?, name),"
                " template = coalesce(?, template) WHERE id = ?",
                (name, template, config_id),
            )
            > 0
        )

    def delete(self, config_id: str) -> bool:
        return self._db.execute("DELETE FROM cloud_configs WHERE id = ?", (config_id,)) > 0
