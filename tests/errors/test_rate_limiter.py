"""The per-key ingest rate limit: a window opens at a key's first event and lasts a minute."""

from __future__ import annotations

from bastion.errors.ingest import RateLimiter


def test_a_burst_is_never_split_by_the_wall_clock_minute() -> None:
    limiter = RateLimiter()
    # Three events one second apart around a wall-clock minute boundary (t=59.5 .. 61.5).
    assert limiter.hit(1, 2, now=59.5) is None
    assert limiter.hit(1, 2, now=60.5) is None
    retry = limiter.hit(1, 2, now=61.5)
    assert retry is not None and 1 <= retry <= 60


def test_the_window_reopens_a_minute_after_it_opened_and_keys_count_apart() -> None:
    limiter = RateLimiter()
    assert limiter.hit(1, 1, now=0.0) is None
    assert limiter.hit(1, 1, now=30.0) == 31
    assert limiter.hit(2, 1, now=30.0) is None
    assert limiter.hit(1, 1, now=60.0) is None
    assert limiter.hit(1, 0, now=60.5) is None  # no limit configured
