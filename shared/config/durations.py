"""Durations as people write them (`90m`, `24h`, `1d12h`) and as ISO 8601 (`PT24H`). Pure."""

from __future__ import annotations

import re
from datetime import timedelta

from shared.core.errors import shown

_SHORT_DURATION = re.compile(r"(?:([0-9]{1,9})d)?(?:([0-9]{1,9})h)?(?:([0-9]{1,9})m)?(?:([0-9]{1,9})s)?", re.I)
_ISO_DURATION = re.compile(
    r"P(?:([0-9]{1,9})D)?(?:T(?=[0-9])(?:([0-9]{1,9})H)?(?:([0-9]{1,9})M)?(?:([0-9]{1,9})S)?)?", re.I
)
DURATION_FORMS = "a duration such as 90m, 24h, 1d12h or ISO-8601 PT24H"


def parse_duration(text: str) -> timedelta:
    """`90m`, `24h`, `1d12h`, `3600s` or ISO-8601 `PT24H` / `P1DT12H` as a timedelta; raises
    `ValueError` naming the accepted forms for anything else (a bare number has no unit)."""
    value = text.strip()
    match = _SHORT_DURATION.fullmatch(value) or _ISO_DURATION.fullmatch(value)
    if match is None or not any(match.groups()):
        raise ValueError(f"{shown(text)} is not {DURATION_FORMS}")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def describe_duration(duration: timedelta) -> str:
    """`timedelta(hours=24)` -> `24h`, `timedelta(minutes=90)` -> `1h30m`: the short form back."""
    seconds = int(duration.total_seconds())
    parts = [(seconds // 3600, "h"), (seconds % 3600 // 60, "m"), (seconds % 60, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"
