"""The CLI's tables and JSON style (pure)."""

from datetime import UTC, datetime, timedelta, timezone
from enum import Enum

from hypothesis import given
from hypothesis import strategies as st

from shared.cli.output import ELLIPSIS, MIN_CLIPPED, Column, camel, jsonable, table
from shared.core.table_keys import iso

COLUMNS = (Column("CLUSTER"), Column("POOL"), Column("OS", drop=2), Column("SUB", drop=1), Column("REASON", flex=True))
ROW = ("rg-dev-weu/aks-dev-weu", "nodepool1", "Linux", "3f2c8a51", "default: LocalUser -> Disabled; then a reimage")


def test_a_table_that_fits_is_left_whole():
    text = table(COLUMNS, [ROW], width=200)
    assert text.splitlines()[0].split() == ["CLUSTER", "POOL", "OS", "SUB", "REASON"]
    assert ELLIPSIS not in text and ROW[-1] in text


def test_low_value_columns_go_first_then_the_flexible_one_is_cut():
    text = table(COLUMNS, [ROW], width=80)
    header = text.splitlines()[0].split()
    assert header == ["CLUSTER", "POOL", "OS", "REASON"]  # SUB (drop=1) went first
    narrower = table(COLUMNS, [ROW], width=60)
    assert narrower.splitlines()[0].split() == ["CLUSTER", "POOL", "REASON"]
    assert max(map(len, narrower.splitlines())) <= 60 and narrower.splitlines()[1].endswith(ELLIPSIS)


def test_without_a_width_nothing_is_dropped_or_cut():
    assert table(COLUMNS, [ROW], width=None) == table(COLUMNS, [ROW], width=10_000)


@given(
    rows=st.lists(st.tuples(*(st.text(st.characters(codec="ascii", categories=["L", "N"]), max_size=60),) * 5)),
    width=st.integers(min_value=60, max_value=200),
)
def test_a_fitted_table_never_exceeds_the_width_when_the_fixed_columns_fit(rows, width):
    fixed = [
        max(len(c.title), *(len(r[i]) for r in rows)) if rows else len(c.title)
        for i, c in enumerate(COLUMNS)
        if not c.drop and not c.flex
    ]
    text = table(COLUMNS, rows, width=width)
    if sum(fixed) + MIN_CLIPPED + 2 * len(fixed) <= width:
        assert max(map(len, text.splitlines())) <= width
    assert text.count("\n") == len(rows)


def test_cells_are_one_line():
    assert table((Column("A"),), [("two\nlines",)]).splitlines() == ["A", "two lines"]


class Colour(Enum):
    RED = "red"


def test_json_is_camel_case_with_iso_utc_times():
    moment = datetime(2026, 12, 1, 16, 1, 6, 46538, tzinfo=timezone(timedelta(hours=1)))
    assert iso(moment) == "2026-12-01T15:01:06.046Z"
    assert camel("mode_before") == "modeBefore" and camel("pool") == "pool"
    document = jsonable({"mode_before": Colour.RED, "at": datetime(2026, 1, 1, tzinfo=UTC), "rows": [{"pool_id": 1}]})
    assert document == {"modeBefore": "red", "at": "2026-01-01T00:00:00.000Z", "rows": [{"poolId": 1}]}
