"""Resource sets (XO's self-service): who may use them (`subjects`), what they may use
(`objects`: templates, SRs, networks), and quotas (`limits`: `{id: {total?, usage}}`). One JSON
document per set, always in XO's normalized shape (`normalize`).

Usage accounting (`allocate`, `release`, `recompute`) reads, changes and writes a set inside one
database transaction, so concurrent charges are serialized and one that exceeds a total leaves
the set unchanged.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from xod.store.database import Database

ResourceSet = dict[str, Any]

# The limits a VM's resources are charged to (xo-server's VM_RESOURCES): `recompute` resets and
# recounts these; the others (`ipPool:<id>`, ...) are left as they are.
VM_RESOURCES = frozenset({"cpus", "disk", "disks", "memory", "vms"})


class NoSuchResourceSet(LookupError):
    def __init__(self, set_id: str) -> None:
        super().__init__(set_id)
        self.id = set_id


class NotEnoughResources(Exception):
    """A charge would exceed a limit's total; `data` is XO's (code 24):
    `[{resourceSet, resourceType, available, requested}]`."""

    def __init__(self, data: list[dict[str, Any]]) -> None:
        super().__init__("not enough resources in resource set")
        self.data = data


def _normalize_limit(limit: Any) -> Any:
    if isinstance(limit, dict):
        return {**limit, "usage": limit.get("usage") if limit.get("usage") is not None else 0}
    return {"total": limit, "usage": 0}


def normalize(document: Mapping[str, Any]) -> ResourceSet:
    """XO's normalization, applied to every set read or written: missing lists become `[]`,
    `name` `""`, `shareByDefault` false; a limit given as a bare number `n` becomes
    `{total: n, usage: 0}`, one given as an object keeps its keys and gets `usage` 0 if absent."""
    limits = document.get("limits") or {}
    return {
        "id": document["id"],
        "name": document.get("name") or "",
        "subjects": list(document.get("subjects") or []),
        "objects": list(document.get("objects") or []),
        "ipPools": list(document.get("ipPools") or []),
        "tags": list(document.get("tags") or []),
        "shareByDefault": bool(document.get("shareByDefault") or False),
        "limits": {key: _normalize_limit(limit) for key, limit in limits.items()},
    }


class ResourceSetStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def create(
        self,
        name: str,
        *,
        subjects: Sequence[str] = (),
        objects: Sequence[str] = (),
        limits: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
        share_by_default: bool = False,
    ) -> ResourceSet:
        document = normalize(
            {
                "id": secrets.token_urlsafe(6),  # 8 characters, as XO's ids
                "name": name,
                "subjects": subjects,
                "objects": objects,
                "limits": limits,
                "tags": tags,
                "shareByDefault": share_by_default,
            }
        )
        self._db.execute(
            "INSERT INTO resource_sets (id, document) VALUES (?, ?)",
            (document["id"], orjson.dumps(document)),
        )
        return document

    def get(self, set_id: str) -> ResourceSet:
        rows = self._db.query("SELECT document FROM resource_sets WHERE id = ?", (set_id,))
        if not rows:
            raise NoSuchResourceSet(set_id)
        return normalize(orjson.loads(rows[0][0]))

    def all(self) -> list[ResourceSet]:
        rows = self._db.query("SELECT document FROM resource_sets ORDER BY rowid")
        return [normalize(orjson.loads(row[0])) for row in rows]

    def for_subjects(self, subjects: Iterable[str]) -> list[ResourceSet]:
        """The sets one of `subjects` (a user id and its group ids) may use."""
        wanted = set(subjects)
        return [document for document in self.all() if wanted.intersection(document["subjects"])]

    def delete(self, set_id: str) -> ResourceSet:
        """Delete the set; the deleted set."""
        with self._db.transaction() as connection:
            document = self._read(connection, set_id)
            connection.execute("DELETE FROM resource_sets WHERE id = ?", (set_id,))
        return document

    def update(self, set_id: str, change: Callable[[ResourceSet], None]) -> ResourceSet:
        """Read, `change` in place, normalize and write the set, atomically; the new set."""
        with self._db.transaction() as connection:
            document = self._read(connection, set_id)
            change(document)
            document = normalize(document)
            connection.execute(
                "UPDATE resource_sets SET document = ? WHERE id = ?",
                (orjson.dumps(document), set_id),
            )
        return document

    def set_fields(
        self,
        set_id: str,
        *,
        name: str | None = None,
        share_by_default: bool | None = None,
        subjects: Sequence[str] | None = None,
        objects: Sequence[str] | None = None,
        ip_pools: Sequence[Any] | None = None,
        limits: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
    ) -> tuple[ResourceSet, ResourceSet]:
        """`resourceSet.set`: the given fields replace the set's (an empty name is ignored, as
        XO). A new `limits` map `{id: total}` keeps each remaining limit's usage; a limit no
        longer in it keeps only its usage (no total: unlimited). The set before and after."""
        before: list[ResourceSet] = []

        def change(document: ResourceSet) -> None:
            before.append(normalize(document))
            if name:
                document["name"] = name
            if share_by_default is not None:
                document["shareByDefault"] = share_by_default
            for key, value in (
                ("subjects", subjects),
                ("objects", objects),
                ("ipPools", ip_pools),
                ("tags", tags),
            ):
                if value is not None:
                    document[key] = list(value)
            if limits is not None:
                previous = document["limits"]
                updated = {
                    key: {"total": total, "usage": previous.get(key, {}).get("usage", 0)}
                    for key, total in limits.items()
                }
                for key, limit in previous.items():
                    if key not in updated:
                        updated[key] = {"usage": limit.get("usage", 0)}
                document["limits"] = updated

        after = self.update(set_id, change)
        return before[0], after

    def allocate(self, limits: Mapping[str, int | float], set_id: str, force: bool) -> None:
        """Charge `{limit id: quantity}` to the set. A limit the set lacks is created with that
        usage and no total (unlimited). Unless `force`, a charge past a total raises
        NotEnoughResources and charges nothing."""

        def change(document: ResourceSet) -> None:
            current = document["limits"]
            for limit_id, quantity in limits.items():
                limit = current.get(limit_id)
                if limit is None:
                    current[limit_id] = {"usage": quantity}
                    continue
                previous = limit.get("usage", 0)
                limit["usage"] = previous + quantity
                total = limit.get("total")
                if not force and total is not None and limit["usage"] > total:
                    raise NotEnoughResources(
                        [
                            {
                                "resourceSet": set_id,
                                "resourceType": limit_id,
                                "available": total - previous,
                                "requested": quantity,
                            }
                        ]
                    )

        self.update(set_id, change)

    def release(self, limits: Mapping[str, int | float], set_id: str) -> None:
        """Give back `{limit id: quantity}`: usages go down, never below 0; limits the set does
        not have are ignored."""

        def change(document: ResourceSet) -> None:
            current = document["limits"]
            for limit_id, quantity in limits.items():
                limit = current.get(limit_id)
                if limit is not None:
                    limit["usage"] = max(0, limit.get("usage", 0) - quantity)

        self.update(set_id, change)

    def recompute(self, usages: Mapping[str, Mapping[str, int | float]]) -> None:
        """`resourceSet.recomputeAllLimits`: set every VM-resource usage (VM_RESOURCES) of every
        set to the sum given for it in `usages` (set id → limit id → usage; 0 when absent).
        Only limits a set has are counted."""
        with self._db.transaction() as connection:
            rows = connection.execute("SELECT document FROM resource_sets").fetchall()
            for row in rows:
                document = normalize(orjson.loads(row[0]))
                counted = usages.get(document["id"], {})
                for limit_id, limit in document["limits"].items():
                    if limit_id in VM_RESOURCES:
                        limit["usage"] = counted.get(limit_id, 0)
                connection.execute(
                    "UPDATE resource_sets SET document = ? WHERE id = ?",
                    (orjson.dumps(document), document["id"]),
                )

    @staticmethod
    def _read(connection: Any, set_id: str) -> ResourceSet:
        row = connection.execute(
            "SELECT document FROM resource_sets WHERE id = ?", (set_id,)
        ).fetchone()
        if row is None:
            raise NoSuchResourceSet(set_id)
        return normalize(orjson.loads(row[0]))
