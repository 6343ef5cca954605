"""The node-OS maintenance window: examples per schedule type worked out by hand, invalid
input named by field, and properties of `next_opening`, `open_at` and `timer_steps`."""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.policy.window import MaintenanceWindowError, parse_window, timer_steps, upgrade_gate

FIXTURE = (
    Path(__file__).parent.parent / "fixtures" / "aks_2025-10-01_MaintenanceConfigurationsGet_MaintenanceWindow.json"
)
ARM_WINDOW = json.loads(FIXTURE.read_text())["responses"]["200"]["body"]["properties"]["maintenanceWindow"]


def utc(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def window(schedule, start_time="01:00", hours=4, offset="+00:00", start_date="2026-01-01", **extra):
    return {
        "schedule": schedule,
        "durationHours": hours,
        "utcOffset": offset,
        "startTime": start_time,
        "startDate": start_date,
        **extra,
    }


def daily(days):
    return {"daily": {"intervalDays": days}}


def weekly(weeks, day):
    return {"weekly": {"intervalWeeks": weeks, "dayOfWeek": day}}


def on_day(months, day):
    return {"absoluteMonthly": {"intervalMonths": months, "dayOfMonth": day}}


def on_nth(months, index, day):
    return {"relativeMonthly": {"intervalMonths": months, "weekIndex": index, "dayOfWeek": day}}


def blocked(first, last):
    return [{"start": first, "end": last}]


WEEKLY_SUNDAY = window(weekly(1, "Sunday"), "09:30", offset="-07:00")
CLI_SHOW_OUTPUT = {  # `az aks maintenanceconfiguration show`: null schedule kinds and keys we do not read
    **window({"daily": None, **weekly(1, "Tuesday"), "absoluteMonthly": None}),
    "notAllowedDates": None,
    "name": "aksManagedNodeOSUpgradeSchedule",
}


@pytest.mark.parametrize(
    ("window_json", "t", "expected_start", "expected_end"),
    [
        # The ARM example: every 3 days from 2023-01-01, 09:30-13:30 at -07:00 = 16:30-20:30Z.
        pytest.param(ARM_WINDOW, "2023-01-01T16:30", "2023-01-01T16:30", "2023-01-01T20:30", id="arm-open-at-start"),
        pytest.param(ARM_WINDOW, "2023-01-01T20:30", "2023-01-04T16:30", "2023-01-04T20:30", id="arm-end-exclusive"),
        pytest.param(ARM_WINDOW, "2022-12-31T00:00", "2023-01-01T16:30", "2023-01-01T20:30", id="arm-before-start"),
        # Feb 18, 21 and 24 (days 48, 51, 54) are not allowed; day 57 is Feb 27.
        pytest.param(ARM_WINDOW, "2023-02-17T00:00", "2023-02-27T16:30", "2023-02-27T20:30", id="arm-blocked-feb"),
        # Dec 24 .. Jan 5 (days 357 .. 369) are not allowed; day 372 is Jan 8.
        pytest.param(ARM_WINDOW, "2023-12-22T00:00", "2024-01-08T16:30", "2024-01-08T20:30", id="arm-blocked-new-year"),
        # Every 2 weeks on Sunday from Tuesday Apr 14: the week of Sunday Apr 12 is week 0, so Apr 26 (Azure/AKS#5720).
        pytest.param(
            window(weekly(2, "Sunday"), start_date="2026-04-14"),
            *("2026-04-14T00:00", "2026-04-26T01:00", "2026-04-26T05:00"),
            id="weekly-counts-from-startDate-week",
        ),
        pytest.param(
            window(weekly(2, "Sunday"), start_date="2026-04-14"),
            *("2026-04-26T05:00", "2026-05-10T01:00", "2026-05-10T05:00"),
            id="weekly-next-cycle",
        ),
        pytest.param(
            window(weekly(3, "friday"), start_date="2026-04-14"),
            *("2026-04-14T00:00", "2026-04-17T01:00", "2026-04-17T05:00"),
            id="weekly-same-week-after-startDate",
        ),
        # Monday 02:00 at +05:30 is Sunday 20:30Z; Sunday 20:00 at -07:00 is Monday 03:00Z.
        pytest.param(
            window(weekly(1, "Monday"), "02:00", offset="+05:30"),
            *("2026-03-01T21:00", "2026-03-01T20:30", "2026-03-02T00:30"),
            id="offset-opens-previous-utc-day",
        ),
        pytest.param(
            window(weekly(1, "Sunday"), "20:00", offset="-07:00"),
            *("2026-03-01T12:00", "2026-03-02T03:00", "2026-03-02T07:00"),
            id="offset-opens-next-utc-day",
        ),
        pytest.param(
            window(daily(2), "22:00", hours=8, offset="+02:00", start_date="2026-06-01"),
            *("2026-06-02T01:00", "2026-06-01T20:00", "2026-06-02T04:00"),
            id="open-across-local-midnight",
        ),
        # No daylight saving: -07:00 is 16:30Z in January and in July alike.
        pytest.param(WEEKLY_SUNDAY, "2026-01-04T16:30", "2026-01-04T16:30", "2026-01-04T20:30", id="no-dst-january"),
        pytest.param(WEEKLY_SUNDAY, "2026-07-05T16:30", "2026-07-05T16:30", "2026-07-05T20:30", id="no-dst-july"),
        pytest.param(
            window(on_day(1, 31)),
            *("2026-04-01T00:00", "2026-05-31T01:00", "2026-05-31T05:00"),
            id="day-31-skips-april",
        ),
        # The 15th every 3 months from Feb 20: Feb 15 is before the start date, so May 15.
        pytest.param(
            window(on_day(3, 15), start_date="2026-02-20"),
            *("2026-02-20T00:00", "2026-05-15T01:00", "2026-05-15T05:00"),
            id="day-15-every-3-months-from-startDate-month",
        ),
        # Last Monday every 2 months from January 2026: Jan 26, then Mar 30.
        pytest.param(
            window(on_nth(2, "Last", "Monday")),
            *("2026-01-01T00:00", "2026-01-26T01:00", "2026-01-26T05:00"),
            id="last-monday",
        ),
        pytest.param(
            window(on_nth(2, "Last", "Monday")),
            *("2026-01-27T00:00", "2026-03-30T01:00", "2026-03-30T05:00"),
            id="last-monday-2-months-on",
        ),
        # January 2026 has five Fridays (Fourth the 23rd, Last the 30th); its last Sunday is the 25th.
        pytest.param(
            window(on_nth(1, "Fourth", "Friday")),
            *("2026-01-01T00:00", "2026-01-23T01:00", "2026-01-23T05:00"),
            id="fourth-is-not-last",
        ),
        pytest.param(
            window(on_nth(1, "Last", "Friday")),
            *("2026-01-01T00:00", "2026-01-30T01:00", "2026-01-30T05:00"),
            id="last-is-fifth",
        ),
        pytest.param(
            window(on_nth(1, "Last", "Sunday")),
            *("2026-01-01T00:00", "2026-01-25T01:00", "2026-01-25T05:00"),
            id="last-on-the-25th",
        ),
        pytest.param(
            window(on_nth(1, "First", "Friday")),
            *("2026-01-03T00:00", "2026-02-06T01:00", "2026-02-06T05:00"),
            id="first-friday-next-month",
        ),
        # Not-allowed dates are local: 01:00 on Jun 10 at +02:00 is Jun 9 23:00Z, and it is skipped.
        pytest.param(
            window(daily(1), offset="+02:00", notAllowedDates=blocked("2026-06-10", "2026-06-10")),
            *("2026-06-09T12:00", "2026-06-10T23:00", "2026-06-11T03:00"),
            id="blocked-local-date",
        ),
        # Jun 10 22:00-06:00 runs into the not-allowed Jun 11 and is skipped whole, as is Jun 11's own.
        pytest.param(
            window(daily(1), "22:00", hours=8, notAllowedDates=blocked("2026-06-11", "2026-06-11")),
            *("2026-06-10T12:00", "2026-06-12T22:00", "2026-06-13T06:00"),
            id="blocked-overlap-skips-window",
        ),
        pytest.param(
            CLI_SHOW_OUTPUT, *("2026-03-01T00:00", "2026-03-03T01:00", "2026-03-03T05:00"), id="cli-output-extra-keys"
        ),
    ],
)
def test_next_opening(window_json, t, expected_start, expected_end):
    assert parse_window(window_json).next_opening(utc(t)) == (utc(expected_start), utc(expected_end))


def test_open_at_inside_and_outside():
    parsed = parse_window(ARM_WINDOW)
    assert parsed.open_at(utc("2023-01-04T18:00")) == (utc("2023-01-04T16:30"), utc("2023-01-04T20:30"))
    assert parsed.open_at(utc("2023-01-04T16:29")) is None
    assert parsed.open_at(utc("2023-01-05T18:00")) is None  # not a third day
    assert parsed.open_at(utc("2023-02-21T18:00")) is None  # a not-allowed date


def test_open_at_accepts_any_timezone_and_returns_utc():
    local = datetime(2023, 1, 4, 11, 0, tzinfo=parse_window(ARM_WINDOW).zone)  # 18:00Z
    start, end = parse_window(ARM_WINDOW).open_at(local)
    assert (start, end) == (utc("2023-01-04T16:30"), utc("2023-01-04T20:30"))
    assert start.tzinfo is UTC


def test_no_window_within_the_horizon():
    always_blocked = window(daily(1), notAllowedDates=blocked("2026-01-01", "2027-12-31"))
    assert parse_window(always_blocked).next_opening(utc("2026-01-01T00:00")) is None
    starts_later = parse_window(window(daily(1), start_date="2030-01-01"))
    assert starts_later.next_opening(utc("2026-01-01T00:00"), horizon_days=30) is None


def test_missing_startDate_means_any_date_for_interval_one():
    parsed = parse_window({"schedule": daily(1), "durationHours": 6, "startTime": "00:00"})
    assert parsed.next_opening(utc("1999-12-31T07:00")) == (utc("2000-01-01T00:00"), utc("2000-01-01T06:00"))


def test_upgrade_gate_inside_outside_and_never():
    inside = upgrade_gate(WEEKLY_SUNDAY, utc("2026-11-29T18:00"))
    assert (inside.open, inside.opens_at, inside.closes_at) == (True, utc("2026-11-29T16:30"), utc("2026-11-29T20:30"))
    assert inside.reason == "inside the node-OS window until 2026-11-29T20:30Z (weekly Sunday 09:30 -07:00, 4h)"
    outside = upgrade_gate(WEEKLY_SUNDAY, utc("2026-11-30T00:00"))
    assert (outside.open, outside.opens_at, outside.closes_at) == (
        False,
        utc("2026-12-06T16:30"),
        utc("2026-12-06T20:30"),
    )
    assert outside.reason == "outside the node-OS window; opens 2026-12-06T16:30Z (weekly Sunday 09:30 -07:00, 4h)"
    never = upgrade_gate(window(daily(1), notAllowedDates=blocked("2026-01-01", "2027-12-31")), utc("2026-01-01T00:00"))
    assert (never.open, never.opens_at, never.closes_at) == (False, None, None)
    assert never.reason == "no node-OS window opens within 400 days (daily 01:00 +00:00, 4h)"


def test_upgrade_gate_without_a_window_upgrades_now():
    gate = upgrade_gate(None, utc("2026-01-01T00:00"))
    assert (gate.open, gate.opens_at, gate.closes_at) == (True, None, None)
    assert gate.reason == "cluster has no aksManagedNodeOSUpgradeSchedule: upgrading immediately"


def test_upgrade_gate_describes_monthly_schedules():
    reason = upgrade_gate(window(on_nth(2, "Last", "Monday")), utc("2026-01-02T00:00")).reason
    assert reason.endswith("(every 2 months Last Monday 01:00 +00:00, 4h)")
    reason = upgrade_gate(window(on_day(1, 15), "23:59", 24, "+14:00"), utc("2026-01-02T00:00")).reason
    assert reason.endswith("(monthly day 15 23:59 +14:00, 24h)")


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        pytest.param({"schedule": daily(0)}, "schedule.daily.intervalDays", "0", id="intervalDays-0"),
        pytest.param({"schedule": daily(8)}, "schedule.daily.intervalDays", "8", id="intervalDays-8"),
        pytest.param({"durationHours": 3}, "durationHours", "3", id="durationHours-3"),
        pytest.param({"durationHours": "4"}, "durationHours", "'4'", id="durationHours-string"),
        pytest.param({"utcOffset": "+5:30"}, "utcOffset", "'+5:30'", id="utcOffset-one-digit-hour"),
        pytest.param({"utcOffset": "05:30"}, "utcOffset", "'05:30'", id="utcOffset-no-sign"),
        pytest.param({"utcOffset": "+15:00"}, "utcOffset", "'+15:00'", id="utcOffset-beyond-14h"),
        pytest.param({"utcOffset": "+05:60"}, "utcOffset", "'+05:60'", id="utcOffset-60-minutes"),
        pytest.param({"schedule": weekly(1, "Funday")}, "schedule.weekly.dayOfWeek", "'Funday'", id="dayOfWeek-bad"),
        pytest.param({"schedule": weekly(5, "Monday")}, "schedule.weekly.intervalWeeks", "5", id="intervalWeeks-5"),
        pytest.param(
            {"schedule": on_nth(1, "Fifth", "Monday")}, "schedule.relativeMonthly.weekIndex", "'Fifth'", id="weekIndex"
        ),
        pytest.param({"schedule": on_day(1, 32)}, "schedule.absoluteMonthly.dayOfMonth", "32", id="dayOfMonth-32"),
        pytest.param({"schedule": on_day(7, 1)}, "schedule.absoluteMonthly.intervalMonths", "7", id="intervalMonths-7"),
        pytest.param({"schedule": {}}, "schedule", "{}", id="schedule-empty"),
        pytest.param({"schedule": {**daily(1), **weekly(1, "Monday")}}, "schedule", "daily", id="schedule-two-kinds"),
        pytest.param({"startTime": "24:00"}, "startTime", "'24:00'", id="startTime-24"),
        pytest.param({"startTime": "9:30"}, "startTime", "'9:30'", id="startTime-one-digit-hour"),
        pytest.param({"startDate": "2023-02-30"}, "startDate", "'2023-02-30'", id="startDate-not-a-date"),
        pytest.param({"startDate": None, "schedule": daily(3)}, "startDate", "interval of 3", id="startDate-needed"),
        pytest.param(
            {"notAllowedDates": blocked("2026-02-01", "2026-01-01")},
            *("notAllowedDates[0].end", "'2026-01-01'"),
            id="notAllowedDates-reversed",
        ),
        pytest.param(
            {"notAllowedDates": [{"start": "2026-01-01"}]},
            "notAllowedDates[0].end",
            "None",
            id="notAllowedDates-no-end",
        ),
    ],
)
def test_invalid_window_names_the_field_and_value(changes, field, value):
    with pytest.raises(MaintenanceWindowError) as caught:
        parse_window({**window(daily(1)), **changes})
    assert caught.value.field == field
    assert f"maintenanceWindow.{field}: " in str(caught.value)
    assert value in str(caught.value)


def test_invalid_window_is_a_value_error_and_upgrade_gate_fails_closed():
    with pytest.raises(
        ValueError, match=r"maintenanceWindow\.durationHours: 3 is not valid; expected an integer from 4 to 24"
    ):
        upgrade_gate({**ARM_WINDOW, "durationHours": 3}, utc("2026-01-01T00:00"))


def test_a_window_that_is_not_an_object_is_refused():
    with pytest.raises(MaintenanceWindowError, match=r"^maintenanceWindow: \[\] is not valid; expected an object"):
        parse_window([])


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_window(ARM_WINDOW).open_at(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        timer_steps(datetime(2026, 1, 1), utc("2026-01-02T00:00"))


@pytest.mark.parametrize(
    ("until", "expected"),
    [
        ("2026-01-14T00:00", ["2026-01-07T00:00", "2026-01-13T00:00", "2026-01-14T00:00"]),
        ("2026-01-13T00:00", ["2026-01-07T00:00", "2026-01-13T00:00"]),
        ("2026-01-01T00:05", ["2026-01-01T00:05"]),
        ("2026-01-01T00:00", []),
        ("2025-12-31T00:00", []),
    ],
    ids=["13-days", "exactly-12-days", "minutes", "now", "past"],
)
def test_timer_steps(until, expected):
    assert timer_steps(utc("2026-01-01T00:00"), utc(until)) == [utc(e) for e in expected]


# --- properties -------------------------------------------------------------------------------

WEEKDAY_NAMES = st.sampled_from(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"])
SCHEDULES = st.one_of(
    st.builds(daily, st.integers(1, 7)),
    st.builds(weekly, st.integers(1, 4), WEEKDAY_NAMES),
    st.builds(on_day, st.integers(1, 6), st.integers(1, 31)),
    st.builds(
        on_nth, st.integers(1, 6), st.sampled_from(["First", "Second", "Third", "Fourth", "Last"]), WEEKDAY_NAMES
    ),
)
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: f"{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}")
DAYS = st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31))
SPANS = st.builds(lambda d, n: blocked(d.isoformat(), (d + timedelta(days=n)).isoformat()), DAYS, st.integers(0, 20))
WINDOWS = st.builds(
    lambda schedule, h, m, hours, offset, start, spans: window(
        schedule, f"{h:02d}:{m:02d}", hours, offset, start.isoformat(), notAllowedDates=sum(spans, [])
    ),
    *(
        SCHEDULES,
        st.integers(0, 23),
        st.integers(0, 59),
        st.integers(4, 24),
        OFFSETS,
        DAYS,
        st.lists(SPANS, max_size=3),
    ),
)
INSTANTS = st.datetimes(min_value=datetime(2023, 6, 1), max_value=datetime(2028, 6, 1), timezones=st.just(UTC))
# Every window lasts >= 4 h, so probing every 3 h between two instants lands inside any window between them.
PROBE = timedelta(hours=3)


def recurs_on(window_json, day):
    """The schedule rules restated independently of `shared.policy.window`: does a window start on local `day`?"""
    start = date.fromisoformat(window_json["startDate"])
    ((kind, rule),) = window_json["schedule"].items()
    months = (day.year - start.year) * 12 + day.month - start.month
    if day < start:
        return False
    if kind == "daily":
        return (day - start).days % rule["intervalDays"] == 0
    if kind == "weekly":
        weeks_since_start_sunday = ((day - start).days + start.isoweekday() % 7) // 7
        return day.strftime("%A") == rule["dayOfWeek"] and weeks_since_start_sunday % rule["intervalWeeks"] == 0
    if months % rule["intervalMonths"]:
        return False
    if kind == "absoluteMonthly":
        return day.day == rule["dayOfMonth"]
    if rule["weekIndex"] == "Last":
        wanted = (day + timedelta(days=7)).month != day.month
    else:
        wanted = (day.day + 6) // 7 == ["First", "Second", "Third", "Fourth"].index(rule["weekIndex"]) + 1
    return day.strftime("%A") == rule["dayOfWeek"] and wanted


def utc_offset(window_json):
    hours, minutes = map(int, window_json["utcOffset"][1:].split(":"))
    return timedelta(hours=hours, minutes=minutes) * (-1 if window_json["utcOffset"][0] == "-" else 1)


def expected_span(window_json, day):
    """The allowed window starting on local `day`, in UTC, computed by hand from the JSON."""
    if not recurs_on(window_json, day):
        return None
    offset = utc_offset(window_json)
    local_start = datetime.combine(day, datetime.strptime(window_json["startTime"], "%H:%M").time())
    length = timedelta(hours=window_json["durationHours"])
    touched = {local_start.date(), (local_start + length - timedelta(microseconds=1)).date()}
    if any(span["start"] <= d.isoformat() <= span["end"] for span in window_json["notAllowedDates"] for d in touched):
        return None
    start = (local_start - offset).replace(tzinfo=UTC)
    return start, start + length


@settings(max_examples=300, deadline=None)
@given(WINDOWS, INSTANTS)
def test_next_opening_matches_a_day_by_day_oracle(window_json, t):
    local_today = (t + utc_offset(window_json)).date()
    horizon = t + timedelta(days=400)
    spans = (expected_span(window_json, local_today + timedelta(days=i)) for i in range(-1, 402))
    wanted = next((span for span in spans if span and (span[0] <= t < span[1] or t <= span[0] <= horizon)), None)
    assert parse_window(window_json).next_opening(t) == wanted


@settings(max_examples=300, deadline=None)
@given(WINDOWS, INSTANTS)
def test_next_opening_is_open_now_or_the_earliest_later_window(window_json, t):
    parsed = parse_window(window_json)
    found = parsed.next_opening(t)
    if found is None:
        probe_until = t + timedelta(days=400)
    else:
        start, end = found
        assert start <= t < end or t <= start
        assert end - start == timedelta(hours=window_json["durationHours"])
        assert start.astimezone(parsed.zone).strftime("%H:%M") == window_json["startTime"]
        for inside in (start, start + (end - start) / 2, end - timedelta(microseconds=1)):
            assert parsed.open_at(inside) == found
        assert parsed.open_at(end) != found
        if start <= t:
            return
        probe_until = start
    probe = t
    while probe < probe_until:
        assert parsed.open_at(probe) is None, f"a window opens at {parsed.open_at(probe)} before {found}"
        probe += PROBE


@settings(max_examples=300, deadline=None)
@given(INSTANTS, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60)), st.integers(1, 6))
def test_timer_steps_reach_until_in_short_increasing_steps(now, wait, max_days):
    until = now + wait
    steps = timer_steps(now, until, max_days)
    if wait == timedelta(0):
        assert steps == []
        return
    assert steps[-1] == until
    previous = now
    for fire in steps:
        assert timedelta(0) < fire - previous <= timedelta(days=max_days)
        previous = fire
