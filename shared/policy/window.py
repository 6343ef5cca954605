"""The node-OS maintenance window: is an instant inside it, and when does it open next.

Reads the `maintenanceWindow` of an AKS `aksManagedNodeOSUpgradeSchedule` maintenance
configuration exactly as ARM returns it (camelCase wire JSON), so that disruptive node-image
upgrades start only inside the window the cluster owner chose. Pure: no I/O, no clock; every
instant in and out is a timezone-aware datetime, returned in UTC.

Semantics (AKS planned-maintenance docs and the ARM `MaintenanceWindow` reference):
- Times are wall-clock at the fixed `utcOffset` (default `+00:00`); there is no daylight saving.
- A window starts at `startTime` on each occurrence date and lasts `durationHours` (4 to 24);
  it contains [start, end). Occurrences dated before `startDate` do not count.
- Intervals count calendar periods from the one holding `startDate`: days from `startDate`,
  weeks from the Sunday-to-Saturday week holding it (AKS skips that week's day if it falls
  before `startDate`, so "every 2 weeks on Sunday from a Tuesday" first opens 12 days later),
  months from its month.
- `weekIndex` counts occurrences of `dayOfWeek` in the month (`First` is days 1-7); `Last` is
  the last one. A `dayOfMonth` the month does not have (31 in April) is no occurrence: AKS does
  not document a clamp, and waiting longer is safer than upgrading on a day nobody chose.
- `notAllowedDates` are inclusive local-date ranges during which maintenance is blocked "even
  if it overlaps with a maintenance window": an occurrence touching one is skipped whole.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEK_INDEXES = ("First", "Second", "Third", "Fourth", "Last")
SCHEDULE_KINDS = {  # kind -> (interval field, its allowed range), ranges from the ARM spec
    "daily": ("intervalDays", range(1, 8)),
    "weekly": ("intervalWeeks", range(1, 5)),
    "absoluteMonthly": ("intervalMonths", range(1, 7)),
    "relativeMonthly": ("intervalMonths", range(1, 7)),
}
DURATION_HOURS = range(4, 25)
DURABLE_TIMER_MAX_DAYS = 6
_HH_MM = re.compile(r"^(\d{2}):(\d{2})$")
_UTC_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")

Span = tuple[datetime, datetime]


class MaintenanceWindowError(ValueError):
    """The maintenance window is invalid or unsupported; `field` is the offending JSON path."""

    def __init__(self, field: str, value: Any, expected: str):
        path = f"maintenanceWindow.{field}" if field else "maintenanceWindow"
        super().__init__(f"{path}: {value!r} is not valid; expected {expected}")
        self.field = field


@dataclass(frozen=True)
class Schedule:
    """One recurrence: `kind` is the ARM schedule key; `day_of_week` is Python's (Monday 0)."""

    kind: str
    interval: int
    day_of_week: int | None = None
    day_of_month: int | None = None
    week_index: str | None = None

    def describe(self) -> str:
        unit = {"daily": "days", "weekly": "weeks"}.get(self.kind, "months")
        every = {"days": "daily", "weeks": "weekly", "months": "monthly"}[unit]
        cadence = every if self.interval == 1 else f"every {self.interval} {unit}"
        if self.kind == "weekly":
            return f"{cadence} {WEEKDAYS[self.day_of_week]}"
        if self.kind == "absoluteMonthly":
            return f"{cadence} day {self.day_of_month}"
        if self.kind == "relativeMonthly":
            return f"{cadence} {self.week_index} {WEEKDAYS[self.day_of_week]}"
        return cadence


@dataclass(frozen=True)
class Window:
    """A validated maintenance window; build it with `parse_window`."""

    schedule: Schedule
    duration: timedelta
    zone: timezone
    start_time: time
    start_date: date | None = None
    not_allowed: tuple[tuple[date, date], ...] = ()

    def open_at(self, t: datetime) -> Span | None:
        """The (start, end) of the window containing `t`, or None when `t` is outside every window."""
        t = _as_utc(t, "t")
        today = t.astimezone(self.zone).date()
        for day in (today - timedelta(days=1), today):  # a window lasts <= 24 h: it began today or yesterday
            span = self._occurrence(day)
            if span and span[0] <= t < span[1]:
                return span
        return None

    def next_opening(self, t: datetime, horizon_days: int = 400) -> Span | None:
        """The window containing `t`, else the first to start after `t` within `horizon_days`, else None."""
        t = _as_utc(t, "t")
        if current := self.open_at(t):
            return current
        limit = t + timedelta(days=horizon_days)
        day = t.astimezone(self.zone).date()
        if self.start_date and self.start_date > day:
            day = self.start_date
        while day <= limit.astimezone(self.zone).date():
            span = self._occurrence(day)
            if span and t <= span[0] <= limit:
                return span
            day += timedelta(days=1)
        return None

    def describe(self) -> str:
        """Human text for the audit, e.g. `weekly Sunday 09:30 -07:00, 4h`."""
        hours = int(self.duration.total_seconds() // 3600)
        return f"{self.schedule.describe()} {self.start_time:%H:%M} {_offset_text(self.zone)}, {hours}h"

    def _occurrence(self, day: date) -> Span | None:
        """The window that starts on local date `day`, if the schedule has one there and it is allowed."""
        if not self._recurs_on(day):
            return None
        start = datetime.combine(day, self.start_time, tzinfo=self.zone).astimezone(UTC)
        span = (start, start + self.duration)
        return None if self._blocked(span) else span

    def _recurs_on(self, day: date) -> bool:
        if self.start_date and day < self.start_date:
            return False
        s = self.schedule
        anchor = self.start_date or day  # without startDate the interval is 1 (checked on parsing)
        if s.kind == "daily":
            return (day - anchor).days % s.interval == 0
        if s.kind == "weekly":
            weeks = (_week_sunday(day) - _week_sunday(anchor)).days // 7
            return day.weekday() == s.day_of_week and weeks % s.interval == 0
        months = (day.year - anchor.year) * 12 + day.month - anchor.month
        if months % s.interval:
            return False
        if s.kind == "absoluteMonthly":
            return day.day == s.day_of_month
        return day.weekday() == s.day_of_week and _is_week_index(day, s.week_index)

    def _blocked(self, span: Span) -> bool:
        for first, last in self.not_allowed:
            blocked_from = datetime.combine(first, time(0), tzinfo=self.zone)
            blocked_until = datetime.combine(last + timedelta(days=1), time(0), tzinfo=self.zone)
            if span[0] < blocked_until and blocked_from < span[1]:
                return True
        return False


@dataclass(frozen=True)
class Gate:
    """May a disruptive upgrade start now? `opens_at`/`closes_at` bound the relevant window, if any."""

    open: bool
    opens_at: datetime | None
    closes_at: datetime | None
    reason: str


def parse_window(window: Mapping[str, Any]) -> Window:
    """Validate ARM's `maintenanceWindow` JSON (extra keys and null schedule kinds are ignored)."""
    if not isinstance(window, Mapping):
        raise MaintenanceWindowError("", window, "an object with schedule, durationHours and startTime")
    start_date = _parse_date(window.get("startDate"), "startDate") if window.get("startDate") is not None else None
    schedule = _parse_schedule(window.get("schedule"))
    if schedule.interval > 1 and start_date is None:
        raise MaintenanceWindowError(
            "startDate",
            None,
            f"a date: an interval of {schedule.interval} needs it to count from (ARM always returns it)",
        )
    return Window(
        schedule=schedule,
        duration=timedelta(hours=_parse_int(window.get("durationHours"), "durationHours", DURATION_HOURS)),
        zone=_parse_utc_offset(window.get("utcOffset")),
        start_time=_parse_start_time(window.get("startTime")),
        start_date=start_date,
        not_allowed=_parse_not_allowed(window.get("notAllowedDates")),
    )


def upgrade_gate(window_json: Mapping[str, Any] | None, now: datetime, horizon_days: int = 400) -> Gate:
    """Decide whether a node-image upgrade may start at `now`; raises `MaintenanceWindowError` if invalid."""
    now = _as_utc(now, "now")
    if window_json is None:
        return Gate(True, None, None, "cluster has no aksManagedNodeOSUpgradeSchedule: upgrading immediately")
    window = parse_window(window_json)
    span = window.next_opening(now, horizon_days)
    if span is None:
        return Gate(False, None, None, f"no node-OS window opens within {horizon_days} days ({window.describe()})")
    start, end = span
    if start <= now:
        return Gate(True, start, end, f"inside the node-OS window until {_stamp(end)} ({window.describe()})")
    return Gate(False, start, end, f"outside the node-OS window; opens {_stamp(start)} ({window.describe()})")


def timer_steps(now: datetime, until: datetime, max_days: int = DURABLE_TIMER_MAX_DAYS) -> list[datetime]:
    """Fire times of durable timers that wait from `now` to `until`, each at most `max_days` after the last."""
    now, until = _as_utc(now, "now"), _as_utc(until, "until")
    if max_days <= 0:
        raise ValueError(f"max_days must be positive; got {max_days!r}")
    step, steps, fire = timedelta(days=max_days), [], now
    while until - fire > step:
        fire += step
        steps.append(fire)
    if until > now:
        steps.append(until)
    return steps


def _parse_schedule(schedule: Any) -> Schedule:
    present = (
        [k for k, v in schedule.items() if k in SCHEDULE_KINDS and v is not None]
        if isinstance(schedule, Mapping)
        else []
    )
    if len(present) != 1:
        raise MaintenanceWindowError("schedule", schedule, f"exactly one of {', '.join(SCHEDULE_KINDS)}")
    kind = present[0]
    body, path = schedule[kind], f"schedule.{kind}"
    if not isinstance(body, Mapping):
        raise MaintenanceWindowError(path, body, "an object")
    interval_field, interval_range = SCHEDULE_KINDS[kind]
    interval = _parse_int(body.get(interval_field), f"{path}.{interval_field}", interval_range)
    if kind == "daily":
        return Schedule(kind, interval)
    if kind == "absoluteMonthly":
        return Schedule(
            kind, interval, day_of_month=_parse_int(body.get("dayOfMonth"), f"{path}.dayOfMonth", range(1, 32))
        )
    day_of_week = WEEKDAYS.index(_parse_name(body.get("dayOfWeek"), f"{path}.dayOfWeek", WEEKDAYS))
    if kind == "weekly":
        return Schedule(kind, interval, day_of_week=day_of_week)
    week_index = _parse_name(body.get("weekIndex"), f"{path}.weekIndex", WEEK_INDEXES)
    return Schedule(kind, interval, day_of_week=day_of_week, week_index=week_index)


def _parse_int(value: Any, field: str, allowed: range) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise MaintenanceWindowError(field, value, f"an integer from {allowed.start} to {allowed.stop - 1}")
    return value


def _parse_name(value: Any, field: str, names: tuple[str, ...]) -> str:
    """ARM's enum value, compared case-insensitively, in its canonical spelling."""
    for name in names:
        if isinstance(value, str) and value.lower() == name.lower():
            return name
    raise MaintenanceWindowError(field, value, f"one of {', '.join(names)}")


def _parse_utc_offset(value: Any) -> timezone:
    if value is None:
        return UTC
    match = _UTC_OFFSET.match(value) if isinstance(value, str) else None
    if not match or int(match[2]) > 14 or int(match[3]) > 59:
        raise MaintenanceWindowError("utcOffset", value, "+HH:MM or -HH:MM between -14:00 and +14:00, e.g. '+05:30'")
    minutes = int(match[2]) * 60 + int(match[3])
    return timezone(timedelta(minutes=-minutes if match[1] == "-" else minutes))


def _parse_start_time(value: Any) -> time:
    match = _HH_MM.match(value) if isinstance(value, str) else None
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise MaintenanceWindowError("startTime", value, "HH:MM from '00:00' to '23:59'")
    return time(int(match[1]), int(match[2]))


def _parse_date(value: Any, field: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        if isinstance(value, str) and len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise MaintenanceWindowError(field, value, "a date YYYY-MM-DD")


def _parse_not_allowed(spans: Any) -> tuple[tuple[date, date], ...]:
    if spans is None:
        return ()
    if not isinstance(spans, list | tuple):
        raise MaintenanceWindowError("notAllowedDates", spans, "a list of {start, end} date ranges")
    parsed = []
    for i, span in enumerate(spans):
        path = f"notAllowedDates[{i}]"
        if not isinstance(span, Mapping):
            raise MaintenanceWindowError(path, span, "an object {start, end}")
        first, last = _parse_date(span.get("start"), f"{path}.start"), _parse_date(span.get("end"), f"{path}.end")
        if last < first:
            raise MaintenanceWindowError(
                f"{path}.end", span.get("end"), f"a date on or after start {span.get('start')}"
            )
        parsed.append((first, last))
    return tuple(parsed)


def _as_utc(t: datetime, name: str) -> datetime:
    if not isinstance(t, datetime) or t.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime; got {t!r}")
    return t.astimezone(UTC)


def _week_sunday(day: date) -> date:
    """The Sunday that begins `day`'s week (AKS counts weekly intervals in Sunday-to-Saturday weeks)."""
    return day - timedelta(days=(day.weekday() + 1) % 7)


def _is_week_index(day: date, week_index: str) -> bool:
    """Whether `day` is the First..Fourth or the Last of its weekday in its month (a day can be both)."""
    if week_index == "Last":
        return day.day + 7 > calendar.monthrange(day.year, day.month)[1]
    return WEEK_INDEXES.index(week_index) == (day.day - 1) // 7


def _offset_text(zone: timezone) -> str:
    minutes = int(zone.utcoffset(None).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _stamp(t: datetime) -> str:
    return f"{t.astimezone(UTC):%Y-%m-%dT%H:%M}Z"
