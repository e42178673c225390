"""Users: email, argon2id password hash, permission level, preferences, and the groups they are
members of (kept by xod/store/groups.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from xod.store.database import Database, now_ms

# The global levels a user may have. Method-level checks rank them none < read < write <
# admin; XO's `user` level ranks like `none` there (its objects come from ACLs only).
PERMISSIONS: tuple[str, ...] = ("none", "user", "read", "write", "admin")
_RANK = {"none": 0, "user": 0, "read": 1, "write": 2, "admin": 3}


def permission_allows(granted: str, required: str) -> bool:
    """True if a user with `granted` may call a method that requires `required`."""
    return _RANK[granted] >= _RANK[required]


class UserError(ValueError):
    pass


class DuplicateUser(UserError):
    pass


class NoSuchUser(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    permission: str
    preferences: dict[str, Any]
    groups: list[str]
    created_at: int
    password_hash: str | None = field(default=None, repr=False)

    def public(self) -> dict[str, Any]:
        """The shape session.signIn / session.getUser return, as in XO."""
        return {
            "id": self.id,
            "email": self.email,
            "groups": list(self.groups),
            "permission": self.permission,
            "preferences": dict(self.preferences),
        }


def _check_permission(permission: str) -> None:
    if permission not in PERMISSIONS:
        raise UserError(f"invalid permission {permission!r} (one of {', '.join(PERMISSIONS)})")


# Every user query selects the row plus its group ids, in the order they were added.
_SELECT = (
    "SELECT users.*, (SELECT json_group_array(group_id) FROM (SELECT group_id FROM group_members"
    " WHERE user_id = users.id ORDER BY rowid)) AS groups_json FROM users"
)


def _row_to_user(row: Any) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        permission=row["permission"],
        preferences=orjson.loads(row["preferences"]),
        groups=orjson.loads(row["groups_json"]),
        created_at=row["created_at"],
        password_hash=row["password_hash"],
    )


class UserStore:
    def __init__(self, database: Database, hasher: PasswordHasher | None = None) -> None:
        self._db = database
        # Tests pass a cheap hasher; production keeps argon2-cffi's RFC 9106 defaults.
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None  # made on first miss: hashing costs ~0.1 s
        # id → User, read on every API call of a signed-in connection; every write here
        # clears it (xod is the database's only writer). `_generation` counts the writes, so
        # a read that raced with one (writes run in worker threads) is not cached.
        self._by_id: dict[str, User] = {}
        self._generation = 0

    def forget_cached(self) -> None:
        """Called after every committed write to users or to group memberships."""
        self._generation += 1
        self._by_id.clear()

    def create(
        self,
        email: str,
        password: str | None,
        permission: str = "none",
        preferences: dict[str, Any] | None = None,
    ) -> User:
        if not email:
            raise UserError("email must not be empty")
        _check_permission(permission)
        user = User(
            id=str(uuid.uuid4()),
            email=email,
            permission=permission,
            preferences=dict(preferences or {}),
            groups=[],
            created_at=now_ms(),
            password_hash=self._hasher.hash(password) if password else None,
        )
        with self._db.transaction() as connection:
            if connection.execute("SELECT 1 FROM users WHERE email = ?", (email,)).fetchone():
                raise DuplicateUser(f"a user with email {email!r} already exists")
            connection.execute(
                "INSERT INTO users (id, email, password_hash, permission, preferences, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    user.id,
                    user.email,
                    user.password_hash,
                    user.permission,
                    orjson.dumps(user.preferences),
                    user.created_at,
                ),
            )
        return user

    def get(self, user_id: str) -> User | None:
        user = self._by_id.get(user_id)
        if user is not None:
            return user
        generation = self._generation
        rows = self._db.query(f"{_SELECT} WHERE id = ?", (user_id,))
        if not rows:
            return None
        user = _row_to_user(rows[0])
        if generation == self._generation:
            self._by_id[user_id] = user
        return user

    def get_by_email(self, email: str) -> User | None:
        rows = self._db.query(f"{_SELECT} WHERE email = ?", (email,))
        return _row_to_user(rows[0]) if rows else None

    def list(self) -> list[User]:
        return [_row_to_user(row) for row in self._db.query(f"{_SELECT} ORDER BY email")]

    def count(self) -> int:
        count: int = self._db.query("SELECT count(*) FROM users")[0][0]
        return count

    def update(
        self,
        user_id: str,
        *,
        email: str | None = None,
        password: str | None = None,
        permission: str | None = None,
        preferences: dict[str, Any] | None = None,
    ) -> User:
        """Change the given fields; `preferences` replaces the whole mapping."""
        current = self.get(user_id)
        if current is None:
            raise NoSuchUser(user_id)
        if permission is not None:
            _check_permission(permission)
        if email is not None and not email:
            raise UserError("email must not be empty")
        updated = replace(
            current,
            email=current.email if email is None else email,
            permission=current.permission if permission is None else permission,
            preferences=current.preferences if preferences is None else dict(preferences),
            password_hash=self._hasher.hash(password) if password else current.password_hash,
        )
        with self._db.transaction() as connection:
            if (
                email is not None
                and connection.execute(
                    "SELECT 1 FROM users WHERE email = ? AND id != ?", (email, user_id)
                ).fetchone()
            ):
                raise DuplicateUser(f"a user with email {email!r} already exists")
            connection.execute(
                "UPDATE users SET email = ?, password_hash = ?, permission = ?, preferences = ?"
                " WHERE id = ?",
                (
                    updated.email,
                    updated.password_hash,
                    updated.permission,
                    orjson.dumps(updated.preferences),
                    user_id,
                ),
            )
        self.forget_cached()
        return updated

    def delete(self, user_id: str) -> bool:
        """Delete the user, its ACLs and (by cascade) its tokens and group memberships; False if
        there was no such user."""
        with self._db.transaction() as connection:
            deleted = connection.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount
            if deleted:
                connection.execute("DELETE FROM acls WHERE subject = ?", (user_id,))
        self.forget_cached()
        return deleted > 0

    def verify_password(self, email: str, password: str) -> User | None:
        """The user if the password is right, else None. Rehashes outdated hashes on success.

        An unknown email costs the same argon2 work as a wrong password, so response times
        do not reveal which accounts exist.
        """
        user = self.get_by_email(email)
        if user is None or user.password_hash is None or not password:
            if self._dummy_hash is None:
                self._dummy_hash = self._hasher.hash("xod: constant-time miss")
            try:
                self._hasher.verify(self._dummy_hash, password or "-")
            except VerificationError:
                pass
            return None
        try:
            self._hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if self._hasher.check_needs_rehash(user.password_hash):
            new_hash = self._hasher.hash(password)
            self._db.execute(
                "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
                (new_hash, user.id, user.password_hash),
            )
            self.forget_cached()
            user = replace(user, password_hash=new_hash)
        return user
