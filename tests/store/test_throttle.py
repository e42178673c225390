from __future__ import annotations

from xod.store import SignInThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_identity_backoff_doubles_and_is_capped() -> None:
    clock = Clock()
    throttle = SignInThrottle(identity_base_delay=2.0, max_delay=10.0, clock=clock)
    assert throttle.check("alice", None).allowed
    waits = []
    for _ in range(5):
        throttle.failure("alice", None)
        decision = throttle.check("alice", None)
        assert not decision.allowed
        waits.append(decision.retry_after)
        clock.now += decision.retry_after
        assert throttle.check("alice", None).allowed
    assert waits == [2.0, 4.0, 8.0, 10.0, 10.0]


def test_identity_is_case_insensitive_and_independent() -> None:
    clock = Clock()
    throttle = SignInThrottle(clock=clock)
    throttle.failure("Alice@Example.org", None)
    assert not throttle.check("alice@example.org", None).allowed
    assert throttle.check("bob", None).allowed


def test_success_clears_identity_but_not_address() -> None:
    clock = Clock()
    throttle = SignInThrottle(address_free_failures=1, clock=clock)
    throttle.failure("alice", "10.0.0.1")
    throttle.failure("alice", "10.0.0.1")
    clock.now += 100
    throttle.success("alice", "10.0.0.1")
    assert throttle.check("alice", None).allowed
    throttle.failure("carol", "10.0.0.1")
    assert throttle.check("dave", "10.0.0.1").retry_after > 0


def test_address_gets_free_failures_then_backoff() -> None:
    clock = Clock()
    throttle = SignInThrottle(address_free_failures=3, address_base_delay=1.0, clock=clock)
    for i in range(3):
        throttle.failure(f"user{i}", "192.0.2.7")
        assert throttle.check(f"other{i}", "192.0.2.7").allowed
    throttle.failure("user3", "192.0.2.7")
    decision = throttle.check("someone-else", "192.0.2.7")
    assert not decision.allowed and decision.retry_after == 1.0
    assert throttle.check("someone-else", "192.0.2.8").allowed


def test_quiet_keys_are_forgotten() -> None:
    clock = Clock()
    throttle = SignInThrottle(max_delay=5.0, clock=clock)
    for _ in range(4):
        throttle.failure("alice", None)
    clock.now += 10.0  # twice the longest delay: a fresh start
    throttle.failure("alice", None)
    assert throttle.check("alice", None).retry_after == 2.0


def test_memory_is_bounded() -> None:
    clock = Clock()
    throttle = SignInThrottle(max_entries=100, clock=clock)
    for i in range(1000):
        throttle.failure(f"user{i}", f"10.0.{i // 256}.{i % 256}")
    assert throttle.tracked <= 200
    assert not throttle.check("user999", None).allowed  # the most recent are kept
