from __future__ import annotations

from xod.store import SignInThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_account_and_source_backoff_doubles_and_is_capped() -> None:
    clock = Clock()
    throttle = SignInThrottle(identity_base_delay=2.0, max_delay=10.0, clock=clock)
    assert throttle.check("alice", "10.0.0.1").allowed
    waits = []
    for _ in range(5):
        throttle.failure("alice", "10.0.0.1")
        decision = throttle.check("alice", "10.0.0.1")
        assert not decision.allowed
        waits.append(decision.retry_after)
        clock.now += decision.retry_after
        assert throttle.check("alice", "10.0.0.1").allowed
    assert waits == [2.0, 4.0, 8.0, 10.0, 10.0]


def test_guesses_from_one_source_never_delay_the_account_from_another() -> None:
    clock = Clock()
    throttle = SignInThrottle(clock=clock)
    for _ in range(50):
        throttle.failure("admin", "203.0.113.9")
        clock.now += throttle.check("admin", "203.0.113.9").retry_after
    assert throttle.check("admin", "203.0.113.9").allowed  # just after its wait
    throttle.failure("admin", "203.0.113.9")
    assert throttle.check("admin", "203.0.113.9").retry_after == 300.0
    assert throttle.check("admin", "192.0.2.1").allowed


def test_account_ceiling_slows_failed_sources_only_and_is_bounded() -> None:
    clock = Clock()
    throttle = SignInThrottle(
        account_free_failures=5, account_base_delay=1.0, account_max_delay=30.0, clock=clock
    )
    # A botnet: one guess per address on one account.
    for i in range(40):
        throttle.failure("Admin", f"198.51.100.{i}")
    clock.now += 2.0  # every pair's own 2 s delay has passed
    # The account's delay across sources (capped at 30 s) applies to those that failed ...
    assert throttle.check("admin", "198.51.100.3").retry_after == 28.0
    # ... never to a source with a clean record on that account.
    assert throttle.check("admin", "192.0.2.1").allowed
    # The owner who mistyped once is slowed (bounded), not locked out.
    throttle.failure("admin", "192.0.2.1")
    assert throttle.check("admin", "192.0.2.1").retry_after == 30.0
    clock.now += 30.0
    assert throttle.check("admin", "192.0.2.1").allowed


def test_success_clears_its_pair_but_not_the_address() -> None:
    clock = Clock()
    throttle = SignInThrottle(address_free_failures=1, clock=clock)
    throttle.failure("alice", "10.0.0.1")
    throttle.failure("alice", "10.0.0.1")
    clock.now += 100
    throttle.success("alice", "10.0.0.1")
    assert throttle.check("alice", None).allowed
    throttle.failure("carol", "10.0.0.1")
    assert throttle.check("dave", "10.0.0.1").retry_after > 0


def test_identity_is_case_insensitive() -> None:
    throttle = SignInThrottle(clock=Clock())
    throttle.failure("Alice@Example.org", "10.0.0.1")
    assert not throttle.check(" alice@example.org", "10.0.0.1").allowed
    assert throttle.check("bob", "10.0.0.1").allowed


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


def test_ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() -> None:
    throttle = SignInThrottle(clock=Clock())
    throttle.failure("alice", "2001:db8:1:2::1")
    assert not throttle.check("alice", "2001:db8:1:2:ffff::9").allowed
    assert throttle.check("alice", "2001:db8:1:3::1").allowed
    throttle.failure("bob", "::ffff:10.1.1.1")
    assert not throttle.check("bob", "10.1.1.1").allowed


def test_quiet_keys_are_forgotten() -> None:
    clock = Clock()
    throttle = SignInThrottle(max_delay=5.0, clock=clock)
    for _ in range(4):
        throttle.failure("alice", "10.0.0.1")
    clock.now += 10.0  # twice the longest delay: a fresh start
    throttle.failure("alice", "10.0.0.1")
    assert throttle.check("alice", "10.0.0.1").retry_after == 2.0


def test_memory_is_bounded() -> None:
    clock = Clock()
    throttle = SignInThrottle(max_entries=100, clock=clock)
    for i in range(1000):
        throttle.failure(f"user{i}", f"10.0.{i // 256}.{i % 256}")
    assert throttle.tracked <= 300
    assert not throttle.check("user999", "10.0.3.231").allowed  # the most recent are kept
