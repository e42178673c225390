"""First start: make sure an administrator exists."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from xod.store.users import DuplicateUser, User, UserStore

DEFAULT_ADMIN_EMAIL = "admin@admin.net"  # XO's default admin account name
# Where the daemon leaves a generated admin password, in the state directory: under systemd,
# stdout goes to the journal, readable by more people than the admin's password should be.
PASSWORD_FILE_NAME = "initial-admin-password"


@dataclass(frozen=True, slots=True)
class FirstStartAdmin:
    user: User
    # Set only when xod chose the password: the caller prints it once; it is stored hashed.
    generated_password: str | None = field(default=None, repr=False)


def ensure_admin(
    users: UserStore, email: str = DEFAULT_ADMIN_EMAIL, password: str | None = None
) -> FirstStartAdmin | None:
    """Create an admin if there is no user at all; None if users already exist.

    Without a password, a random one (22 URL-safe chars, 128 bits) is generated and returned.
    """
    if users.count() > 0:
        return None
    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(16)
    try:
        user = users.create(email, password, permission="admin")
    except DuplicateUser:  # cluster members starting together: another one created it
        return None
    return FirstStartAdmin(user=user, generated_password=generated)


def write_password_file(state_dir: str | os.PathLike[str], password: str) -> Path:
    """Write `password` to `<state_dir>/initial-admin-password`, readable by its owner only."""
    path = Path(state_dir) / PASSWORD_FILE_NAME
    # Created 0600 (no window where it is readable by others); O_NOFOLLOW: never through a
    # symlink; fchmod: a stale file left by an earlier first start may have other modes.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(fd, 0o600)
        file.write(password + "\n")
    return path
