"""The replay engine reads history timestamps with `parse_timestamp` once the app is indexed,
and reads them to the same instants as its own dateutil parser did."""

import importlib
from datetime import UTC

import pytest
from azure.durable_functions.models.history.HistoryEvent import HistoryEvent
from dateutil.parser import parse as dateutil_parse
from dateutil.tz import tzutc

from shared.orchestration.replay import parse_timestamp

TIMESTAMPS = [
    "2025-08-08T11:29:27.8766843Z",  # the Durable extension's: 7 digits of fraction, Z
    "2025-08-08T11:29:27.876Z",
    "2025-08-08T11:29:27Z",
    "2025-08-08T11:29:27.876684+00:00",
    "2025-08-08T13:29:27.5+02:00",
    "2025-08-08T11:29:27.8766843",  # no zone: naive, as dateutil reads it
    "Fri, 08 Aug 2025 11:29:27 GMT",  # not ISO 8601: dateutil's own reading
]


@pytest.mark.parametrize("text", TIMESTAMPS)
def test_timestamps_read_as_dateutil_reads_them(text):
    ours, theirs = parse_timestamp(text), dateutil_parse(text)
    assert ours.replace(tzinfo=None) == theirs.replace(tzinfo=None)
    assert ours.utcoffset() == theirs.utcoffset()


def test_a_timestamp_nobody_reads_is_refused_as_before():
    with pytest.raises(ValueError):
        parse_timestamp("not a time")


def test_the_indexed_app_makes_history_events_use_it():
    importlib.import_module("function_app")
    event = HistoryEvent(EventType=12, EventId=-1, IsPlayed=False, Timestamp="2025-08-08T11:29:27.8766843Z")
    # fromisoformat's zone, not dateutil's tzutc(): the engine's own parser was not called
    assert event.timestamp.tzinfo is UTC and not isinstance(event.timestamp.tzinfo, tzutc)
    assert event.timestamp.microsecond == 876684


def test_the_engine_still_reads_timestamps_where_the_speed_up_expects():
    """An upgrade of azure-functions-durable that moves the private name fails here, loudly."""
    from shared.orchestration import replay

    module = importlib.import_module(replay.HISTORY_EVENT_MODULE)
    assert module.dt_parse in (dateutil_parse, parse_timestamp)
    assert replay.read_history_timestamps_fast() is True and module.dt_parse is parse_timestamp


def test_a_moved_name_changes_nothing_and_the_engine_keeps_its_parser(monkeypatch, caplog):
    from shared.orchestration import replay

    module = importlib.import_module(replay.HISTORY_EVENT_MODULE)
    monkeypatch.setattr(module, "dt_parse", lambda text: dateutil_parse(text))  # not the parser it expects
    moved = module.dt_parse
    assert replay.read_history_timestamps_fast() is False
    assert module.dt_parse is moved and "left as it is" in caplog.text
    monkeypatch.delattr(module, "dt_parse")
    assert replay.read_history_timestamps_fast() is False and not hasattr(module, "dt_parse")
