"""NCRONTAB expressions as the Functions timer (NCrontab) reads them: six fields, second first. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from shared.core.errors import shown


@dataclass(frozen=True)
class CronField:
    """One NCRONTAB field as the Functions timer (NCrontab) reads it: `*`, `*/n`, `a`, `a/n`,
    `a-b`, `a-b/n` and comma lists of these. Stricter than NCrontab where it guesses: it swaps a
    backwards range and reads step 0 as 1; both are refused here."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # value names from `low` up; at least 3 letters of one are accepted

    def check(self, text: str) -> None:
        """Raises `ValueError` naming this field and the part of `text` that is wrong."""
        for part in text.split(","):
            self._check_part(part)

    def _check_part(self, part: str) -> None:
        base, slash, step = part.partition("/")
        if slash and not (ascii_digits(step) and len(step) <= 9 and 1 <= int(step) <= self.high):
            # A step past the field's range would fire once; NCrontab fails on one past 2**31.
            raise ValueError(f"{self.name} step {shown(step)} is not a whole number from 1 to {self.high}")
        if base == "*":
            return
        first, dash, last = base.partition("-")
        if not first:
            raise ValueError(f"{self.name} {shown(part)} is not a value; expected *, */n, a, a-b, a-b/n or a list a,b")
        start = self._value(first)
        if dash and self._value(last) < start:
            raise ValueError(f"{self.name} range {base} runs backwards; put the lower bound first")

    def _value(self, text: str) -> int:
        if ascii_digits(text):
            # Length first: int() of thousands of digits is slow, and refused past 4300.
            if len(text) > 9 or not self.low <= int(text) <= self.high:
                number = text if len(text) <= 9 else f"{text[:9]}… ({len(text)} digits)"
                raise ValueError(f"{self.name} {number} is outside {self.low}-{self.high}")
            return int(text)
        for offset, full_name in enumerate(self.names):
            if len(text) >= 3 and full_name.startswith(text.lower()):
                return self.low + offset
        names = f" or a name {self.names[0][:3].title()}-{self.names[-1][:3].title()}" if self.names else ""
        raise ValueError(f"{self.name} {shown(text)} is not a number from {self.low} to {self.high}{names}")


MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
DAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
CRON_FIELDS = (
    CronField("second", 0, 59),
    CronField("minute", 0, 59),
    CronField("hour", 0, 23),
    CronField("day of month", 1, 31),
    CronField("month", 1, 12, MONTH_NAMES),
    CronField("day of week", 0, 6, DAY_NAMES),
)


def ascii_digits(text: str) -> bool:
    # str.isdigit() alone also accepts '²' and '٣', which int() refuses or reads differently.
    return text.isascii() and text.isdigit()
