"""Copies of one event: Event Grid delivers at least once, so a storm brings the same event (the
same id) many times, and a delivery whose function failed comes again.

A copy of an event already handled costs one Table read and starts nothing. An event whose first
delivery failed before it was handled (no worker could be started, Table Storage was down) is
done when it comes again: the copy is no excuse to lose it.
"""

from __future__ import annotations

import json
import socket

import pytest

from shared.local.durable_host.client_api import binding, run_client_function
from shared.local.functions_host import decode_event
from shared.triggers.event_grid import EVENT_FUNCTION
from shared.triggers.start import StartError
from tests.table_faults import FlakyTransport
from tests.warden_fixtures import DEV, arm_event

NODEPOOL1 = DEV.id + "/agentPools/nodepool1"
REMEDIATED = [("PUT", "agentPools/nodepool1"), ("POST", "nodepool1/upgradeNodeImageVersion")]


def test_a_copy_of_a_handled_event_costs_one_table_read_and_starts_nothing(warden):
    transport = FlakyTransport()
    w = warden(store_options={"transport": transport})
    event = arm_event(NODEPOOL1, event_id="redelivered")
    w.deliver(event)
    assert w.writes() == REMEDIATED
    audit, statuses, arm = w.audit(), w.functions.durable.statuses(), len(w.emulator.requests)
    sent = transport.sent

    w.functions.deliver_events([event])

    assert transport.sent - sent == 1, "a copy is one point read of the event's audit marker"
    assert w.functions.durable.statuses() == statuses, "a copy started an orchestration"
    assert len(w.emulator.requests) == arm and w.audit() == audit
    assert w.runtime.store.list_requests(DEV.key) == []


def test_a_storm_of_copies_writes_one_event_row(warden):
    event = arm_event(NODEPOOL1, event_id="storm")
    w = warden()
    w.deliver(*[event] * 50)
    assert w.writes() == REMEDIATED
    assert [s for s in w.steps(pool="nodepool1") if s[0] == "event"] == [("event", "planned")]


def test_an_event_whose_worker_could_not_be_started_is_done_when_it_comes_again(warden):
    """The Durable extension does not answer the first delivery (its port is closed): the
    trigger fails, so Event Grid redelivers; the redelivery, same id, does the work."""
    w = warden()
    event = arm_event(NODEPOOL1, event_id="first-try-failed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = json.dumps(binding(f"http://127.0.0.1:{probe.getsockname()[1]}"))
    trigger = w.functions.durable.functions.require_client(EVENT_FUNCTION)
    with pytest.raises(StartError):
        run_client_function(trigger.function, **{trigger.parameter: dead}, event=decode_event(event))
    assert w.writes() == [] and w.steps() == []

    w.deliver(event)

    assert w.writes() == REMEDIATED
    assert w.steps(pool="nodepool1")[:2] == [("event", "planned"), ("plan", "planned")]


def test_an_event_whose_request_could_not_be_recorded_is_done_when_it_comes_again(warden):
    transport = FlakyTransport()
    w = warden(store_options={"transport": transport})
    transport.fail_when = lambda text: "WardenRequests" in text and "$batch" in text  # the request's write
    event = arm_event(NODEPOOL1, event_id="table-down")
    with pytest.raises(Exception, match="Table Storage unreachable"):
        w.functions.deliver_events([event])
    assert transport.failed and w.runtime.store.list_requests(DEV.key) == []
    transport.fail_when = lambda text: False

    w.deliver(event)

    assert w.writes() == REMEDIATED
    assert [s for s in w.steps(pool="nodepool1") if s[0] == "event"] == [("event", "planned")]


def test_an_event_whose_audit_row_could_not_be_written_is_recorded_once_when_it_comes_again(warden):
    """The request is recorded and its worker started, then the event's audit row fails: the
    redelivery joins the same request and writes the row; the pool is remediated once."""
    transport = FlakyTransport()
    w = warden(store_options={"transport": transport})
    transport.fail_when = lambda text: '"Step": "event"' in text
    event = arm_event(NODEPOOL1, event_id="audit-down")
    with pytest.raises(Exception, match="Table Storage unreachable"):
        w.functions.deliver_events([event])
    transport.fail_when = lambda text: False

    w.deliver(event)

    assert w.writes() == REMEDIATED
    assert [s for s in w.steps(pool="nodepool1") if s[0] == "event"] == [("event", "planned")]
