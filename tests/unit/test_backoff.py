"""How long to wait: ARM's `Retry-After` as read (`retry_after_seconds`) and as used
(`retry_delay`, `bounded_seconds`). Values that would crash a durable timer (nan, inf) or
stall a reconcile (huge, negative, junk) fall back to the normal backoff or the cap."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.adapters.arm_parse import retry_after_seconds
from shared.orchestration.backoff import (
    MAX_DELAY_SECONDS,
    MAX_RETRY_AFTER_SECONDS,
    backoff_seconds,
    bounded_seconds,
    jitter_from_uuid,
    retry_delay,
)

BASE, JITTER = 10.0, 0.5  # with jitter 0.5 the first backoff step is 75% of the base


def http_date(seconds_from_now: float) -> str:
    """`retry_after_seconds` reads HTTP dates against the real clock."""
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)


# --- the header, as read ---------------------------------------------------------------------

HEADERS = {
    "absent": (None, None),
    "seconds": ("37", 37.0),
    "zero": ("0", 0.0),
    "fraction": ("1.5", 1.5),
    "nan": ("nan", None),
    "inf": ("inf", None),
    "minus-inf": ("-inf", None),
    "negative": ("-5", None),
    "junk": ("junk", None),
    "empty": ("", None),
    "not-a-date": ("Tue, 99 Foo 2026 99:99:99 GMT", None),
    "huge": ("1e12", 1e12),  # usable as read: the caller caps the wait
}


@pytest.mark.parametrize("header, seconds", HEADERS.values(), ids=HEADERS.keys())
def test_retry_after_seconds_reads_delays_and_refuses_unusable_values(header, seconds):
    assert retry_after_seconds(header) == seconds


def test_retry_after_seconds_reads_an_http_date_against_the_real_clock():
    assert 85 <= retry_after_seconds(http_date(90)) <= 90


def test_retry_after_seconds_of_an_http_date_in_the_past_is_no_wait():
    assert retry_after_seconds(http_date(-600)) == 0.0


# --- the wait, as used -----------------------------------------------------------------------

FIRST_BACKOFF = backoff_seconds(0, BASE, JITTER)
DELAYS = {
    "none": (None, FIRST_BACKOFF),
    "usable": (37.0, 37.0),
    "zero": (0.0, 0.0),
    "nan": (float("nan"), FIRST_BACKOFF),
    "inf": (float("inf"), FIRST_BACKOFF),
    "negative": (-5.0, FIRST_BACKOFF),
    "junk": ("junk", FIRST_BACKOFF),
    "huge": (1e12, MAX_RETRY_AFTER_SECONDS),
    "just-over-the-cap": (MAX_RETRY_AFTER_SECONDS + 1, MAX_RETRY_AFTER_SECONDS),
}


@pytest.mark.parametrize("retry_after, delay", DELAYS.values(), ids=DELAYS.keys())
def test_retry_delay_honours_a_usable_retry_after_up_to_the_cap_else_backs_off(retry_after, delay):
    assert retry_delay(retry_after, 0, BASE, JITTER) == delay


def test_the_first_backoff_step_is_neither_zero_nor_large():
    assert BASE / 2 <= FIRST_BACKOFF <= BASE


BOUNDED = {
    "usable": (30.0, 30.0),
    "zero": (0.0, 0.0),
    "nan": (float("nan"), 0.0),
    "inf": (float("inf"), 0.0),
    "negative": (-5.0, 0.0),
    "junk": ("junk", 0.0),
    "none": (None, 0.0),
    "huge": (1e12, MAX_RETRY_AFTER_SECONDS),
}


@pytest.mark.parametrize("seconds, bounded", BOUNDED.values(), ids=BOUNDED.keys())
def test_bounded_seconds_makes_any_wait_safe_for_a_durable_timer(seconds, bounded):
    assert bounded_seconds(seconds) == bounded


@pytest.mark.parametrize("attempt", [0, 1, 3, 10, 64, 10_000])
def test_backoff_grows_to_its_cap_and_stays_within_half_to_full_step(attempt):
    step = min(MAX_DELAY_SECONDS, BASE * 2**attempt) if attempt < 32 else MAX_DELAY_SECONDS
    for jitter in (0.0, 0.5, 0.999):
        assert step / 2 <= backoff_seconds(attempt, BASE, jitter) <= step


@given(
    retry_after=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20)),
    attempt=st.integers(min_value=0, max_value=1000),
    uuid=st.uuids(),
)
def test_every_retry_delay_is_finite_and_at_most_the_cap(retry_after, attempt, uuid):
    delay = retry_delay(retry_after, attempt, BASE, jitter_from_uuid(str(uuid)))
    assert 0 <= delay <= MAX_RETRY_AFTER_SECONDS
    assert bounded_seconds(delay) == delay
