"""NCRONTAB schedules: every field range-checked as the Functions timer reads it, errors naming
the setting, the field and the value."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.config import DEFAULT_RESYNC_SCHEDULE, DEFAULT_ROTATE_SCHEDULE, DEFAULT_VERIFY_SCHEDULE, Settings
from shared.config.ncrontab import CRON_FIELDS
from shared.core.errors import ConfigError

SUB = "11111111-1111-1111-1111-111111111111"
SCHEDULE_SETTINGS = ("WARDEN_VERIFY_SCHEDULE", "WARDEN_ROTATE_SCHEDULE", "WARDEN_RESYNC_SCHEDULE")


def read(schedule: str, name: str = "WARDEN_VERIFY_SCHEDULE") -> Settings:
    return Settings.from_env({"WARDEN_SUBSCRIPTIONS": SUB, name: schedule})


def refusal(schedule: str, name: str = "WARDEN_VERIFY_SCHEDULE") -> str:
    with pytest.raises(ConfigError) as raised:
        read(schedule, name)
    return str(raised.value)


VALID = {
    "verify-default-every-6h": DEFAULT_VERIFY_SCHEDULE,
    "rotate-default-monthly": DEFAULT_ROTATE_SCHEDULE,
    "resync-default-hourly": DEFAULT_RESYNC_SCHEDULE,
    "readme-verify": "0 0 */6 * * *",
    "readme-rotate": "0 0 3 1 * *",
    "readme-resync": "0 0 * * * *",
    "every-5-minutes": "0 */5 * * * *",
    "all-maxima": "59 59 23 31 12 6",
    "all-minima": "0 0 0 1 1 0",
    "weekday-mornings": "0 30 9 * * 1-5",
    "ranges-with-steps": "0 0-30/10 8-18/2 1-31/7 1-12/3 0-6/2",
    "value-with-step": "5/15 0 0 * * *",
    "lists": "0 0,15,30,45 6,18 1,15 * *",
    "month-and-day-names": "0 0 4 * Jan-Mar,Dec Mon-Fri",
    "full-and-mixed-case-names": "0 0 4 * SEPTEMBER Sunday,sat",
    "name-prefix": "0 0 4 * Sept Thurs",
    "leading-zeros": "00 05 09 01 01 00",
}


@pytest.mark.parametrize("schedule", VALID.values(), ids=VALID.keys())
@pytest.mark.parametrize("name", SCHEDULE_SETTINGS)
def test_valid_schedules_are_kept_as_written(name, schedule):
    settings = read(schedule, name)
    assert getattr(settings, name.removeprefix("WARDEN_").lower()) == schedule


INVALID = {
    "all-99": ("99 99 99 99 99 99", "second 99 is outside 0-59"),
    "minute-60": ("0 60 * * * *", "minute 60 is outside 0-59"),
    "hour-24": ("0 0 24 * * *", "hour 24 is outside 0-23"),
    "hour-99": ("0 0 99 * * *", "hour 99 is outside 0-23"),
    "day-0": ("0 0 0 0 * *", "day of month 0 is outside 1-31"),
    "day-32": ("0 0 0 32 * *", "day of month 32 is outside 1-31"),
    "month-0": ("0 0 0 1 0 *", "month 0 is outside 1-12"),
    "month-13": ("0 0 0 1 13 *", "month 13 is outside 1-12"),
    "weekday-7": ("0 0 0 * * 7", "day of week 7 is outside 0-6"),
    "range-end-out": ("0 0 20-24 * * *", "hour 24 is outside 0-23"),
    "list-item-out": ("0 0,61 * * * *", "minute 61 is outside 0-59"),
    "range-backwards": ("0 0 22-2 * * *", "hour range 22-2 runs backwards"),
    "step-zero": ("*/0 * * * * *", "second step '0' is not a whole number from 1 to 59"),
    "step-past-range": ("0 0 */24 * * *", "hour step '24' is not a whole number from 1 to 23"),
    "step-not-a-number": ("0 */x * * * *", "minute step 'x' is not a whole number from 1 to 59"),
    "two-slashes": ("0 0 1/2/3 * * *", "hour step '2/3'"),
    "unknown-month-name": ("0 0 0 1 Foo *", "month 'Foo' is not a number from 1 to 12 or a name Jan-Dec"),
    "two-letter-day": ("0 0 0 * * Su", "day of week 'Su' is not a number from 0 to 6 or a name Sun-Sat"),
    "name-in-hours": ("0 0 Mon * * *", "hour 'Mon' is not a number from 0 to 23"),
    "day-name-in-months": ("0 0 0 1 Mon *", "month 'Mon' is not a number from 1 to 12"),
    "negative": ("0 0 -1 * * *", "hour '-1' is not a value; expected *, */n, a, a-b, a-b/n or a list a,b"),
    "empty-list-item": ("0 1,,2 * * * *", "minute '' is not a value"),
    "question-mark": ("0 0 0 ? * *", "day of month '?' is not a number from 1 to 31"),
    "last-day": ("0 0 0 L * *", "day of month 'L' is not a number from 1 to 31"),
    "superscript-digit": ("0 0 ² * * *", "hour '²' is not a number from 0 to 23"),
    "fullwidth-digits": ("0 0 １２ * * *", "hour '１２' is not a number from 0 to 23"),
    "huge-number": ("0 0 " + "9" * 5000 + " * * *", "hour 999999999… (5000 digits) is outside 0-23"),
}


@pytest.mark.parametrize(("schedule", "problem"), INVALID.values(), ids=INVALID.keys())
def test_out_of_range_or_unreadable_fields_are_refused_naming_setting_field_and_value(schedule, problem):
    message = refusal(schedule)
    assert message.startswith(f"WARDEN_VERIFY_SCHEDULE: {problem}")
    assert "\n" not in message and len(message) < 300


def test_the_error_names_the_setting_it_came_from():
    assert refusal("0 0 3 1 13 *", "WARDEN_ROTATE_SCHEDULE") == (
        "WARDEN_ROTATE_SCHEDULE: month 13 is outside 1-12 (in '0 0 3 1 13 *')"
    )


@pytest.mark.parametrize(
    "schedule", ["0 */6 * * *", "0 0 */6 * * * *", "00:05:00"], ids=["five-fields", "seven-fields", "timespan"]
)
def test_a_schedule_needs_six_fields(schedule):
    assert refusal(schedule).startswith(
        f"WARDEN_VERIFY_SCHEDULE is {schedule!r}; expected an NCRONTAB expression of 6 fields "
        "(second minute hour day-of-month month day-of-week)"
    )


# --- properties: any value in range is read, any value outside is refused naming it ------------


FIELD_INDEX = st.integers(0, len(CRON_FIELDS) - 1)


def with_field(index: int, text: str) -> str:
    fields = ["0", "0", "0", "1", "1", "0"]
    fields[index] = text
    return " ".join(fields)


@given(index=FIELD_INDEX, data=st.data())
def test_every_value_in_a_fields_range_is_read(index, data):
    field = CRON_FIELDS[index]
    low = data.draw(st.integers(field.low, field.high))
    high = data.draw(st.integers(low, field.high))
    step = data.draw(st.integers(1, field.high))
    for text in (str(low), f"{low}-{high}", f"{low}-{high}/{step}", f"*/{step}", f"{low},{high}"):
        read(with_field(index, text))


@given(index=FIELD_INDEX, data=st.data())
def test_every_value_outside_a_fields_range_is_refused_naming_field_and_value(index, data):
    field = CRON_FIELDS[index]
    value = data.draw(st.integers(0, 10**6).filter(lambda v: not field.low <= v <= field.high))
    form = data.draw(st.sampled_from(["{v}", "{low}-{v}", "{v}/2", "*,{v}"]))
    text = form.format(v=value, low=field.low)
    message = refusal(with_field(index, text))
    assert message.startswith(f"WARDEN_VERIFY_SCHEDULE: {field.name} {value} is outside {field.low}-{field.high}")


NAMES = {
    "months": (4, "january february march april may june july august september october november december"),
    "days-of-week": (5, "sunday monday tuesday wednesday thursday friday saturday"),
}


@pytest.mark.parametrize(("index", "names"), NAMES.values(), ids=NAMES.keys())
def test_every_name_and_abbreviation_is_read_as_its_number(index, names):
    """`Mar-3` is a range of one value and `Mar-2` runs backwards: March is 3, no other number."""
    field = CRON_FIELDS[index]
    for number, name in enumerate(names.split(), start=field.low):
        for text in (name, name[:3], name.upper(), name[:3].title()):
            read(with_field(index, f"{text}-{number}"))
            if number > field.low:
                assert "runs backwards" in refusal(with_field(index, f"{text}-{number - 1}"))
