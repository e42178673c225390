"""The state database of a cluster member: a local SQLite mirror of a shared key-value bucket.

In cluster mode (`[cluster] nats`) users, groups, ACLs, resource sets, tokens, servers and
cloud-init templates (the tables of `REPLICATED_TABLES`) live in one JetStream key-value bucket;
every instance keeps a local copy. The store classes of this package do not change: they run
their SQL against `ReplicatedDatabase`, a `Database` whose file is that copy, so reads stay
synchronous and local.

- Reads: from the mirror, fed by the bucket's watcher (`apply`, one entry per row: key
  `<table>.<id>`, value the row as a JSON object). An entry older than what the mirror holds for
  its key is ignored, so a late echo never undoes a newer write.
- Writes: a store method's transaction runs on the mirror as usual; temporary triggers note the
  rows it touched, and instead of COMMIT it is rolled back and each row goes to the bucket: a
  new row by `create`, a changed one by `update` checked against the revision the mirror holds
  (someone else's newer write makes it `WriteConflict`), a deleted one by an unconditional
  delete (deletion wins). The mirror takes the rows the bucket acknowledged, at their revisions,
  before the store method returns. The database lock is not held while NATS answers: reads, and
  the watcher, never wait for the network.
- Unique columns (a user's email, a group's name, a server's host) are claimed in the bucket by
  a key of their own, `<table>.unique.<column>.<sha256 of the value>` → the row's key and the
  claim's time, created before the row: two instances creating the same email at once cannot
  both win. A claim left behind (a failure between the claim and the row) is taken over once
  its row has another value, or has not appeared within `CLAIM_GRACE_MS`.
- A write of several rows (a user and, by cascade, their tokens) is not atomic in the bucket: if
  one of its operations fails, those before it stay and the mirror converges to them.
- Foreign keys are not checked while applying the bucket's entries (a token may arrive before
  its user when watching resumes); the writer's cascades reach the bucket as deletions.

Secrets are as in the single-instance file: argon2 password hashes and SHA-256 token hashes,
never a token itself; the servers' XAPI passwords are kept as given (they must be replayed), so
whoever may read the bucket may read them: NATS accounts and TLS decide who may.

A replicated table needs a primary key (of one column or several: its bucket key is made of it);
making one more table shared is one line in `REPLICATED_TABLES`. Entries of tables this version
does not know are ignored, and so are tables of the list its schema does not have.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
from argon2 import PasswordHasher

from xod.store import DuplicateGroup, DuplicateServer, DuplicateUser, Store
from xod.store.bucket_format import (
    PrimaryKey,
    claim_key,
    decode_claim,
    decode_row,
    encode_claim,
    encode_row,
    parse_row_key,
    row_key,
)
from xod.store.database import DATABASE_NAME, Database, now_ms
from xod.store.replication_errors import RevisionConflict, WriteConflict

# A claim whose row is missing still counts this long (ms): the row is written after it. Past
# it, the claim was left behind by a member that failed in between. Clocks: within seconds.
CLAIM_GRACE_MS = 60_000
MIRROR_NAME = "cluster-mirror.sqlite3"  # beside the single-instance DATABASE_NAME, never it
assert MIRROR_NAME != DATABASE_NAME


class KeyValueClient(Protocol):
    """The bucket, seen synchronously (xod/cluster/shared_state.py runs it on its own loop)."""

    def get(self, key: str) -> tuple[bytes | None, int]:
        """(value, revision); value None when the key is absent or deleted."""

    def create(self, key: str, value: bytes) -> int:
        """Revision of the new key; RevisionConflict if it exists (not deleted)."""

    def update(self, key: str, value: bytes, last: int) -> int:
        """Revision of the new value; RevisionConflict unless `last` is the key's revision."""

    def delete(self, key: str, last: int = 0) -> int:
        """Revision of the deletion marker (`last` 0: whatever the key's revision)."""


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    unique: tuple[str, ...] = ()  # columns no two rows may share (NULL excepted)
    # What a lost claim raises, from the value (the store's own error: the API maps it).
    duplicate: Callable[[Any], ValueError] = ValueError


REPLICATED_TABLES: tuple[TableSpec, ...] = (
    # In an order where a row comes after the rows it refers to (`import_database`).
    TableSpec(
        "users",
        unique=("email",),
        duplicate=lambda email: DuplicateUser(f"a user with email {email!r} already exists"),
    ),
    TableSpec("groups", unique=("name",), duplicate=DuplicateGroup),
    TableSpec("group_members"),  # keyed by (group, user): a membership is its key
    TableSpec("acls"),  # keyed by (subject, object, action)
    TableSpec("resource_sets"),
    TableSpec("tokens"),  # ids and hashes are random: nothing to claim
    TableSpec(
        "servers",
        unique=("host",),
        duplicate=lambda host: DuplicateServer(
            f"a server with host {host!r} is already registered"
        ),
    ),
    TableSpec("cloud_configs"),
)


@dataclass(frozen=True, slots=True)
class Change:
    """A row another instance changed, once applied to the mirror."""

    table: str
    key: PrimaryKey
    deleted: bool

    @property
    def id(self) -> Any:
        """The row's id, for the tables keyed by one column (users, tokens, servers…)."""
        return self.key[0]


@dataclass(frozen=True, slots=True)
class _Write:
    """A row a transaction wrote: its new value (None: deleted), the one the mirror had, and
    the revision of that one (0: none)."""

    spec: TableSpec
    key: str
    new: dict[str, Any] | None
    old: dict[str, Any] | None
    revision: int


class ReplicatedDatabase(Database):
    """A `Database` on the mirror file whose writes go through the bucket first."""

    def __init__(
        self,
        path: Path,
        bucket: KeyValueClient,
        tables: tuple[TableSpec, ...] = REPLICATED_TABLES,
    ) -> None:
        self._bucket = bucket
        self._capturing = False  # the migrations run locally: the mirror's schema is its own
        self._closed = False
        # Called after remote changes are committed to the mirror, in the applying thread.
        self.listeners: list[Callable[[list[Change]], None]] = []
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)  # a fresh copy each start: the bucket has it all
        super().__init__(path)
        existing = {row[0] for row in self.query("SELECT name FROM sqlite_master")}
        self._tables = {spec.name: spec for spec in tables if spec.name in existing}
        self._columns: dict[str, list[str]] = {}
        self._keys: dict[str, list[str]] = {}  # each table's primary key columns, in order
        for name in self._tables:
            info = self.query(f"PRAGMA table_info({name})")
            self._columns[name] = [column["name"] for column in info]
            self._keys[name] = [c["name"] for c in sorted(info, key=lambda c: c["pk"]) if c["pk"]]
            if not self._keys[name]:
                raise ValueError(f"table {name} has no primary key: it cannot be replicated")
        self._install_capture()
        self._capturing = True

    @classmethod
    def open_mirror(cls, state_dir: str | Path, bucket: KeyValueClient) -> ReplicatedDatabase:
        directory = Path(state_dir)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(directory / MIRROR_NAME, bucket)

    def _install_capture(self) -> None:
        with self.transaction() as connection:
            connection.execute(
                "CREATE TABLE xod_revisions (key TEXT PRIMARY KEY, revision INTEGER NOT NULL,"
                " value BLOB)"
            )
            # The primary keys of the rows the transaction touched, as JSON arrays.
            connection.execute("CREATE TEMP TABLE xod_touched (tbl TEXT NOT NULL, key TEXT)")
            for name, key in self._keys.items():
                for event, versions in (
                    ("INSERT", ("NEW",)),
                    ("UPDATE", ("OLD", "NEW")),
                    ("DELETE", ("OLD",)),
                ):
                    values = ", ".join(
                        f"('{name}', json_array({', '.join(f'{v}.{c}' for c in key)}))"
                        for v in versions
                    )
                    connection.execute(
                        f"CREATE TEMP TRIGGER xod_{name}_{event.lower()} AFTER {event}"
                        f" ON main.{name} BEGIN INSERT INTO xod_touched VALUES {values}; END"
                    )

    # -- writes: the bucket first, then the mirror ------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The store's transaction, run on the mirror to learn what it writes, then rolled back:
        those rows go to the bucket (outside the lock: reads never wait for NATS), and the
        mirror takes them, at their revisions, once acknowledged."""
        if not self._capturing:
            with super().transaction() as connection:
                yield connection
            return
        with self._lock:
            connection = self._connection
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                writes = self._collect(connection)
            finally:
                connection.execute("ROLLBACK")
        self._publish(writes)

    def _collect(self, connection: sqlite3.Connection) -> list[_Write]:
        writes: list[_Write] = []
        touched = connection.execute("SELECT DISTINCT tbl, key FROM xod_touched").fetchall()
        for table, primary_key_json in touched:
            primary_key = tuple(orjson.loads(primary_key_json))
            key = row_key(table, primary_key)
            known = connection.execute(
                "SELECT revision, value FROM xod_revisions WHERE key = ?", (key,)
            ).fetchone()
            old = decode_row(known["value"]) if known and known["value"] is not None else None
            found = connection.execute(
                f"SELECT * FROM {table} WHERE {self._where(table)}", primary_key
            ).fetchone()
            new = None if found is None else dict(found)
            if new != old:  # else untouched in effect, or created and deleted at once
                revision = known["revision"] if known else 0
                writes.append(_Write(self._tables[table], key, new, old, revision))
        return writes

    def _publish(self, writes: list[_Write]) -> None:
        acknowledged: list[tuple[str, bytes | None, int]] = []
        try:
            for write in writes:
                if write.new is None:
                    acknowledged.append((write.key, None, self._bucket.delete(write.key)))
                else:
                    value = encode_row(write.new)
                    acknowledged.append((write.key, value, self._write_row(write, value)))
                for column in write.spec.unique:
                    gone = write.old[column] if write.old is not None else None
                    if gone is not None and gone != (write.new or {}).get(column):
                        self._release(claim_key(write.spec.name, column, gone), write.key)
        finally:  # what the bucket has, the mirror has (a failed write: up to it)
            if acknowledged:
                self.apply(acknowledged, notify=False)

    def _write_row(self, write: _Write, value: bytes) -> int:
        spec, new, old = write.spec, write.new, write.old
        assert new is not None
        claimed: list[str] = []
        for column in spec.unique:
            if new[column] is not None and (old is None or old[column] != new[column]):
                claimed.append(self._claim(spec, column, new[column], write.key))
        try:
            if old is None:
                return self._bucket.create(write.key, value)
            return self._bucket.update(write.key, value, last=write.revision)
        except RevisionConflict:
            if old is None:  # the same row, created by another member too (an ACL, a membership)
                current, revision = self._bucket.get(write.key)
                if current is not None and decode_row(current) == new:
                    return revision
            for claim in claimed:
                self._release(claim, write.key)
            raise WriteConflict(
                f"{write.key} was changed by another instance meanwhile; retry"
            ) from None

    def _claim(self, spec: TableSpec, column: str, value: Any, key: str) -> str:
        """Own `value` of `column` for the row `key` (its claim's key), or raise the table's
        duplicate error."""
        claim = claim_key(spec.name, column, value)
        mine = encode_claim(key, now_ms())
        try:
            self._bucket.create(claim, mine)
            return claim
        except RevisionConflict:
            pass
        data, revision = self._bucket.get(claim)
        holder = None if data is None else decode_claim(data)
        if holder is not None and holder[0] != key and self._held(holder, column, value):
            raise spec.duplicate(value)
        try:  # ours already, or left behind by a row that does not have the value
            self._bucket.update(claim, mine, last=revision)
        except RevisionConflict:
            raise spec.duplicate(value) from None  # claimed by another member just now
        return claim

    def _held(self, holder: tuple[str, int], column: str, value: Any) -> bool:
        """Whether a claim still counts: its row has the value, or is still being written (a
        claim comes first: younger than CLAIM_GRACE_MS, its row may not be there yet)."""
        row, _revision = self._bucket.get(holder[0])
        if row is not None:
            return bool(decode_row(row).get(column) == value)
        return now_ms() - holder[1] < CLAIM_GRACE_MS

    def _release(self, claim: str, key: str) -> None:
        data, revision = self._bucket.get(claim)
        if data is not None and decode_claim(data)[0] == key:
            with suppress(RevisionConflict):  # taken over meanwhile: no longer ours to drop
                self._bucket.delete(claim, last=revision)

    # -- reads' source: the bucket's entries --------------------------------------------------

    def apply(
        self, entries: list[tuple[str, bytes | None, int]], *, notify: bool = True
    ) -> list[Change]:
        """Bring the bucket's entries (key, row or None when deleted, revision) into the mirror;
        the rows that changed, once committed (the listeners get them too, unless they are this
        instance's own writes: `notify` False)."""
        changes: list[Change] = []
        with self._lock:
            if self._closed:
                return changes
            self._connection.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction
            try:
                with super().transaction() as connection:
                    for key, value, revision in entries:
                        change = self._apply_one(connection, key, value, revision)
                        if change is not None:
                            changes.append(change)
                    connection.execute("DELETE FROM xod_touched")
            finally:
                self._connection.execute("PRAGMA foreign_keys=ON")
        if changes and notify:
            for listener in self.listeners:
                listener(changes)
        return changes

    def _apply_one(
        self, connection: sqlite3.Connection, key: str, value: bytes | None, revision: int
    ) -> Change | None:
        parsed = parse_row_key(key)
        if parsed is None or parsed[0] not in self._tables:
            return None
        table, primary_key = parsed
        known = connection.execute(
            "SELECT revision FROM xod_revisions WHERE key = ?", (key,)
        ).fetchone()
        if known is not None and known["revision"] >= revision:
            return None  # this instance's own write coming back, or older than the mirror
        if value is None:
            connection.execute(f"DELETE FROM {table} WHERE {self._where(table)}", primary_key)
        else:
            row = decode_row(value)
            columns = [c for c in self._columns[table] if c in row]
            connection.execute(
                f"INSERT OR REPLACE INTO {table} ({', '.join(columns)})"
                f" VALUES ({', '.join('?' * len(columns))})",
                tuple(row[c] for c in columns),
            )
        connection.execute(
            "INSERT OR REPLACE INTO xod_revisions VALUES (?, ?, ?)", (key, revision, value)
        )
        return Change(table, primary_key, deleted=value is None)

    def _where(self, table: str) -> str:
        return " AND ".join(f"{column} = ?" for column in self._keys[table])

    # -- from a single instance to a cluster ---------------------------------------------------

    def import_database(self, path: Path) -> int:
        """Copy the rows of a single-instance database file into the bucket (and the mirror);
        the number of rows written. Rows the bucket already has are left alone: members
        starting together from copies of one file each write what the others have not yet."""
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        source.row_factory = sqlite3.Row
        written = 0
        try:
            present = {row[0] for row in source.execute("SELECT name FROM sqlite_master")}
            for table in self._tables:  # REPLICATED_TABLES' order: a row after what it needs
                if table not in present:
                    continue
                for row in source.execute(f"SELECT * FROM {table}").fetchall():
                    written += self._import_row(table, dict(row))
        finally:
            source.close()
        return written

    def _import_row(self, table: str, row: dict[str, Any]) -> int:
        columns = [c for c in self._columns[table] if c in row]
        try:
            with self.transaction() as connection:
                return connection.execute(
                    f"INSERT OR IGNORE INTO {table} ({', '.join(columns)})"
                    f" VALUES ({', '.join('?' * len(columns))})",
                    tuple(row[c] for c in columns),
                ).rowcount
        except (WriteConflict, ValueError, sqlite3.IntegrityError):
            return 0  # another member imported it first (or the file's row is dangling)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        super().close()


def open_replicated_store(
    state_dir: str | Path, bucket: KeyValueClient, hasher: PasswordHasher | None = None
) -> Store:
    """The `Store` of a cluster member, on an empty mirror (filled by `apply`)."""
    database = ReplicatedDatabase.open_mirror(state_dir, bucket)
    store = Store(database, hasher)

    def forget_cached_users(changes: list[Change]) -> None:
        # A User carries its groups: a membership change is a change of the user.
        if any(change.table in ("users", "group_members") for change in changes):
            store.users.forget_cached()

    database.listeners.append(forget_cached_users)
    return store
