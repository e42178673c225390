"""What a write to the shared state of a cluster (xod/store/replicated.py) may fail with."""

from __future__ import annotations


class WriteConflict(RuntimeError):
    """Another instance changed the row since this one read it: nothing was written."""


class SharedStateUnavailable(RuntimeError):
    """The shared bucket did not answer (NATS unreachable): nothing was written."""


class RevisionConflict(Exception):
    """Raised by a bucket client when the key's last revision is not the expected one."""
