from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from xod.store import Store


def cheap_hasher() -> PasswordHasher:
    # Real argon2id, small cost so tests stay fast; production uses the library defaults.
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "state", cheap_hasher())
    yield opened
    opened.close()
