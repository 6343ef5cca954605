"""How the CLI prints: tables that fit the terminal, and one JSON style for every command.

JSON: camelCase keys, ISO-8601 UTC times (`2026-12-01T15:01:06.046Z`), full resource ids on
every cluster and pool row. One document per command; the demo, which runs several, prints
JSON Lines (one document per line).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from shared.core.table_keys import iso

ELLIPSIS = "…"
GAP = "  "
MIN_CLIPPED = 12  # a clipped column keeps at least this many characters
FLEX_FLOOR = 30  # columns are dropped until the flexible ones can keep this much


@dataclass(frozen=True)
class Column:
    """A table column. `drop`: its rank among the columns given up first when the table is
    too wide (1 goes first; 0 never); `flex`: it may be cut with an ellipsis to fit."""

    title: str
    drop: int = 0
    flex: bool = False


def terminal_width() -> int:
    """The terminal's width (`COLUMNS` wins); 100 when stdout is not a terminal."""
    return shutil.get_terminal_size((100, 24)).columns


def table(columns: Sequence[Column], rows: Sequence[Sequence[Any]], *, width: int | None = None) -> str:
    """`rows` under `columns`, fitted to `width` (None: as wide as the content needs): low-value
    columns are dropped first, then flexible ones are cut with an ellipsis."""
    texts = [[_cell(v) for v in row] for row in rows]
    keep = list(range(len(columns)))
    if width is not None:
        for index in sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: columns[i].drop):
            if _width(columns, texts, keep) <= width:
                break
            keep.remove(index)
    widths = {i: _natural(columns, texts, i) for i in keep}
    if width is not None:
        _shrink(columns, widths, width)
    lines = [[columns[i].title for i in keep], *[[row[i] for i in keep] for row in texts]]
    return "\n".join(
        GAP.join(clip(text, widths[i]).ljust(widths[i]) for text, i in zip(line, keep, strict=True)).rstrip()
        for line in lines
    )


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + ELLIPSIS


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return " ".join(str(value).split())  # one line per row, whatever the text held


def _natural(columns: Sequence[Column], texts: list[list[str]], index: int) -> int:
    return max([len(columns[index].title), *(len(row[index]) for row in texts)])


def _width(columns: Sequence[Column], texts: list[list[str]], keep: list[int]) -> int:
    """The narrowest the kept columns can be: flexible ones cut to `FLEX_FLOOR`, others whole."""
    widths = [
        min(_natural(columns, texts, i), FLEX_FLOOR) if columns[i].flex else _natural(columns, texts, i) for i in keep
    ]
    return sum(widths) + len(GAP) * (len(widths) - 1)


def _shrink(columns: Sequence[Column], widths: dict[int, int], width: int) -> None:
    """Cut the widest flexible column, one character at a time, until the table fits."""
    while (over := sum(widths.values()) + len(GAP) * (len(widths) - 1) - width) > 0:
        flexible = [i for i in widths if columns[i].flex and widths[i] > MIN_CLIPPED]
        if not flexible:
            return
        widest = max(flexible, key=lambda i: widths[i])
        widths[widest] = max(MIN_CLIPPED, widths[widest] - over)


# JSON --------------------------------------------------------------------------------------


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def jsonable(value: Any) -> Any:
    """A record or result as the CLI's JSON: camelCase keys, ISO times, enums by value."""
    if hasattr(value, "__dataclass_fields__"):
        return {camel(k): jsonable(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {camel(k) if _SNAKE.match(str(k)) else k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    return value


_SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")


def print_json(document: Any, *, lines: bool = False) -> None:
    """One document: indented, or on one line (JSON Lines) when several follow each other."""
    text = json.dumps(jsonable(document), indent=None if lines else 2, ensure_ascii=False)
    print(text, flush=True)


def say(message: str) -> None:
    """A line for the person at the terminal (stderr, so stdout stays machine-readable)."""
    print(message, file=sys.stderr, flush=True)
