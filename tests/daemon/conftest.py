from __future__ import annotations

import pytest

from tests.daemon.helpers import NotifyListener


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "readme: follows the README's commands in a fresh virtual environment (slow)"
    )


@pytest.fixture
def notify_listener():
    listener = NotifyListener()
    yield listener
    listener.close()
