"""History timestamps read at the speed of `datetime.fromisoformat`.

At every episode the replay engine (azure-functions-durable) builds each history event anew and
reads its timestamp with dateutil's general-purpose parser: about 30 us an event, two thirds of an
episode's time, paid again for the whole history at every activity result and timer. The Durable
extension sends ISO 8601 (`2025-08-08T11:29:27.8766843Z`), which `datetime.fromisoformat` reads
(Python >= 3.11, fractions beyond microseconds cut as dateutil cuts them) to the same instant in
about 1 us. Anything it does not read goes to dateutil, as before. `function_app.py` sets it up.
"""

from __future__ import annotations

import importlib
import logging
from datetime import datetime

from dateutil.parser import parse as parse_any

log = logging.getLogger(__name__)
# The module whose `dt_parse` `HistoryEvent.__init__` calls (its package exports the class under
# the same name). A private name of azure-functions-durable 1.7: `read_history_timestamps_fast`
# checks it before it changes anything.
HISTORY_EVENT_MODULE = "azure.durable_functions.models.history.HistoryEvent"


def parse_timestamp(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return parse_any(text)


def read_history_timestamps_fast() -> bool:
    """Make the engine's history events read their timestamps with `parse_timestamp`; returns
    whether they do. Only where the engine reads them through the name this expects, bound to
    dateutil's parser: if an upgrade of azure-functions-durable moved or changed it, nothing is
    changed, the engine keeps its own (slower, equal) parser, and a warning says so
    (tests/orchestration/test_replay_timestamps.py fails on such an upgrade)."""
    try:
        module = importlib.import_module(HISTORY_EVENT_MODULE)
    except ImportError:
        module = None
    current = getattr(module, "dt_parse", None)
    if current is parse_timestamp:
        return True
    if current is not parse_any:
        log.warning(
            "history timestamps: %s.dt_parse is not dateutil's parser here; left as it is", HISTORY_EVENT_MODULE
        )
        return False
    module.dt_parse = parse_timestamp
    return True
