"""The registration file: `$XDG_CONFIG_HOME/xod-cli/config.json`, private to its owner (0600).

Like xo-cli's, it holds the server URL, the authentication token and a persistent client id (so
registering again refreshes the same token record instead of piling up new ones).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from xod.cli.errors import NotRegistered, UsageError

CONFIG_NAME = "config.json"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "xod-cli"


def config_path() -> Path:
    return config_dir() / CONFIG_NAME


@dataclass
class Config:
    server: str | None = None
    token: str | None = None
    client_id: str | None = None
    allow_unauthorized: bool = False
    expires_at: int | None = None  # ms since epoch, as the server reported it

    @property
    def registered(self) -> bool:
        return bool(self.server and self.token)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.server is not None:
            data["server"] = self.server
        if self.token is not None:
            data["token"] = self.token
        if self.client_id is not None:
            data["clientId"] = self.client_id
        if self.allow_unauthorized:
            data["allowUnauthorized"] = True
        if self.expires_at is not None:
            data["expiresAt"] = self.expires_at
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Config:
        expires_at = data.get("expiresAt")
        return cls(
            server=data.get("server"),
            token=data.get("token"),
            client_id=data.get("clientId"),
            allow_unauthorized=bool(data.get("allowUnauthorized", False)),
            expires_at=expires_at if isinstance(expires_at, int) else None,
        )

    def ensure_client_id(self) -> str:
        if not self.client_id:
            self.client_id = secrets.token_urlsafe(12)
        return self.client_id


def load(path: Path | None = None) -> Config:
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UsageError(f"{path} is not valid JSON; remove it and register again") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a JSON object; remove it and register again")
    return Config.from_json(data)


def load_registered(path: Path | None = None) -> Config:
    config = load(path)
    if not config.registered:
        raise NotRegistered("not registered: run `xod-cli register URL EMAIL` first")
    return config


def save(config: Config, path: Path | None = None) -> Path:
    """Write atomically, created 0600 from the start: the token is never world-readable, not
    even for the instant between create and chmod."""
    path = path or config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(orjson.dumps(config.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
