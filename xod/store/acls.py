"""ACLs: (subject, object, action) triples. Subject = a user or group id, object = any XO object
id, action = a role id (xod/acl/roles.py) or, legacy, a raw permission name. Nothing checks that
the subject, object or action exist, as in XO."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from xod.store.database import Database


def acl_id(subject: str, object_id: str, action: str) -> str:
    """The ACL's id: a deterministic function of its triple, 6 characters of base64url (4 bytes,
    as XO's), so a client that keeps it (Terraform's `xenorchestra_acl`) finds it again."""
    digest = hashlib.sha256(orjson.dumps([subject, object_id, action])).digest()
    return base64.urlsafe_b64encode(digest[:4]).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class Acl:
    id: str
    subject: str
    object: str
    action: str

    def public(self) -> dict[str, Any]:
        """As `acl.get` returns it."""
        return {
            "id": self.id,
            "subject": self.subject,
            "object": self.object,
            "action": self.action,
        }


def _acl(row: Any) -> Acl:
    return Acl(row["id"], row["subject"], row["object"], row["action"])


class AclStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, subject: str, object_id: str, action: str) -> Acl:
        """Grant `action` on `object_id` to `subject`; adding an existing triple changes
        nothing."""
        acl = Acl(acl_id(subject, object_id, action), subject, object_id, action)
        self._db.execute(
            "INSERT OR IGNORE INTO acls (id, subject, object, action) VALUES (?, ?, ?, ?)",
            (acl.id, subject, object_id, action),
        )
        return acl

    def remove(self, subject: str, object_id: str, action: str) -> bool:
        """False when there was no such triple."""
        removed = self._db.execute(
            "DELETE FROM acls WHERE subject = ? AND object = ? AND action = ?",
            (subject, object_id, action),
        )
        return removed > 0

    def all(self) -> list[Acl]:
        rows = self._db.query("SELECT * FROM acls ORDER BY rowid")
        return [_acl(row) for row in rows]

    def for_subjects(self, subjects: Iterable[str]) -> list[Acl]:
        """Every ACL whose subject is one of `subjects`."""
        subjects = list(subjects)
        if not subjects:
            return []
        marks = ", ".join("?" * len(subjects))
        rows = self._db.query(
            f"SELECT * FROM acls WHERE subject IN ({marks}) ORDER BY rowid", tuple(subjects)
        )
        return [_acl(row) for row in rows]

    def for_object(self, object_id: str) -> list[Acl]:
        """Every ACL on `object_id`."""
        rows = self._db.query("SELECT * FROM acls WHERE object = ? ORDER BY rowid", (object_id,))
        return [_acl(row) for row in rows]

    def remove_for_object(self, object_id: str, subjects: Iterable[str] | None = None) -> list[Acl]:
        """Remove the ACLs on `object_id` (only those of `subjects` when given); the removed
        ones."""
        wanted = None if subjects is None else set(subjects)
        with self._db.transaction() as connection:
            rows = connection.execute(
                "SELECT * FROM acls WHERE object = ? ORDER BY rowid", (object_id,)
            ).fetchall()
            removed = [_acl(row) for row in rows if wanted is None or row["subject"] in wanted]
            connection.executemany(
                "DELETE FROM acls WHERE subject = ? AND object = ? AND action = ?",
                [(acl.subject, acl.object, acl.action) for acl in removed],
            )
        return removed
