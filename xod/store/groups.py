"""Groups of users: a name and members. A membership is one row of group_members, so both sides
(`group.users`, `user.groups`) always agree, and deleting a user or a group drops its
memberships. A group's ACLs (subject = its id) apply to every member."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from xod.store.database import Database, now_ms
from xod.store.users import NoSuchUser


class NoSuchGroup(LookupError):
    def __init__(self, group_id: str) -> None:
        super().__init__(group_id)
        self.id = group_id


class DuplicateGroup(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a group named {name!r} already exists")
        self.name = name


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    name: str
    users: tuple[str, ...]

    def public(self) -> dict[str, Any]:
        """As `group.getAll` returns it."""
        return {"id": self.id, "name": self.name, "users": list(self.users)}


_SELECT = (
    "SELECT groups.id, groups.name, (SELECT json_group_array(user_id) FROM (SELECT user_id"
    " FROM group_members WHERE group_id = groups.id ORDER BY rowid)) AS users FROM groups"
)


def _group(row: Any) -> Group:
    return Group(row["id"], row["name"], tuple(orjson.loads(row["users"])))


class GroupStore:
    def __init__(self, database: Database, memberships_changed: Callable[[], None]) -> None:
        self._db = database
        # Users carry their group ids: the user store's cache forgets them on every change.
        self._memberships_changed = memberships_changed

    def create(self, name: str) -> Group:
        group = Group(str(uuid.uuid4()), name, ())
        try:
            self._db.execute(
                "INSERT INTO groups (id, name, created_at) VALUES (?, ?, ?)",
                (group.id, name, now_ms()),
            )
        except sqlite3.IntegrityError:
            raise DuplicateGroup(name) from None
        return group

    def get(self, group_id: str) -> Group | None:
        rows = self._db.query(f"{_SELECT} WHERE id = ?", (group_id,))
        return _group(rows[0]) if rows else None

    def list(self) -> list[Group]:
        return [_group(row) for row in self._db.query(f"{_SELECT} ORDER BY name, id")]

    def rename(self, group_id: str, name: str) -> None:
        try:
            renamed = self._db.execute("UPDATE groups SET name = ? WHERE id = ?", (name, group_id))
        except sqlite3.IntegrityError:
            raise DuplicateGroup(name) from None
        if not renamed:
            raise NoSuchGroup(group_id)

    def delete(self, group_id: str) -> tuple[str, ...]:
        """Delete the group, its ACLs and its memberships; the ids of its former members."""
        with self._db.transaction() as connection:
            members = self._members(connection, group_id)
            connection.execute("DELETE FROM groups WHERE id = ?", (group_id,))
            connection.execute("DELETE FROM acls WHERE subject = ?", (group_id,))
        self._memberships_changed()
        return members

    def add_user(self, group_id: str, user_id: str) -> None:
        with self._db.transaction() as connection:
            self._members(connection, group_id)
            self._check_users(connection, [user_id])
            connection.execute(
                "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)",
                (group_id, user_id),
            )
        self._memberships_changed()

    def remove_user(self, group_id: str, user_id: str) -> None:
        """Removing a user that is not a member changes nothing (as XO)."""
        with self._db.transaction() as connection:
            self._members(connection, group_id)
            self._check_users(connection, [user_id])
            connection.execute(
                "DELETE FROM group_members WHERE group_id = ? AND user_id = ?",
                (group_id, user_id),
            )
        self._memberships_changed()

    def set_users(self, group_id: str, user_ids: Sequence[str]) -> set[str]:
        """Make `user_ids` the group's members; the ids of the users who joined or left."""
        with self._db.transaction() as connection:
            before = set(self._members(connection, group_id))
            self._check_users(connection, user_ids)
            after = dict.fromkeys(user_ids)  # ordered, without duplicates
            connection.executemany(
                "DELETE FROM group_members WHERE group_id = ? AND user_id = ?",
                [(group_id, user_id) for user_id in before - after.keys()],
            )
            connection.executemany(
                "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)",
                [(group_id, user_id) for user_id in after],
            )
        self._memberships_changed()
        return before ^ after.keys()

    @staticmethod
    def _members(connection: sqlite3.Connection, group_id: str) -> tuple[str, ...]:
        """The group's member ids; NoSuchGroup if there is no such group."""
        if connection.execute("SELECT 1 FROM groups WHERE id = ?", (group_id,)).fetchone() is None:
            raise NoSuchGroup(group_id)
        rows = connection.execute(
            "SELECT user_id FROM group_members WHERE group_id = ? ORDER BY rowid", (group_id,)
        ).fetchall()
        return tuple(row[0] for row in rows)

    @staticmethod
    def _check_users(connection: sqlite3.Connection, user_ids: Sequence[str]) -> None:
        for user_id in user_ids:
            found = connection.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone()
            if found is None:
                raise NoSuchUser(user_id)
