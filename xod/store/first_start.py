"""First start: make sure an administrator exists."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from xod.store.users import User, UserStore

DEFAULT_ADMIN_EMAIL = "admin@admin.net"  # XO's default admin account name


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
    user = users.create(email, password, permission="admin")
    return FirstStartAdmin(user=user, generated_password=generated)
