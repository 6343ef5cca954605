"""The race at a worker's end: a request that arrives after the worker's last look at the table.

Both sides of the moment, through the real trigger, Azurite and the real replay engine:
- just before the worker closes: its close finds the request and it goes round again;
- after it closed, while its orchestration is still finishing: the trigger learns that no
  worker is committed, and starts a new one as soon as the old one has ended.
Either way the request is done without any further event.
"""

from __future__ import annotations

import copy
import threading
import time

from shared.core.records import WorkRequest
from shared.local.durable_host import RuntimeStatus
from shared.orchestration import names
from tests.warden_fixtures import DEV, T0, arm_event

NODEPOOL1 = DEV.id + "/agentPools/nodepool1"
SPOT = DEV.id + "/agentPools/spot"


def converged(w, emulator, pool_id: str) -> bool:
    pool = pool_id.rsplit("/", 1)[-1]
    return emulator.pool_body(pool_id)["properties"]["securityProfile"]["sshAccess"] == "Disabled" and (
        "outcome",
        "succeeded",
    ) in w.steps(pool=pool)


def test_a_request_written_just_before_the_worker_closes_is_taken_by_it(warden, arm_emulator):
    w = warden({"default": "Disabled"})
    added = []

    def before_close(event) -> None:
        if event.kind == "activity" and event.activity == names.CLOSE_WORKER and not added:
            added.append(w.runtime.store.add_request(WorkRequest(DEV.id, "spot", T0, reason="arrived late")))

    w.on_progress = before_close
    w.deliver(arm_event(NODEPOOL1))
    assert [a.value for a in added] == ["joined"], "the worker was still committed when the request came"
    closes = [e.payload for e in w.progress if e.kind == "activity-completed" and e.activity == names.CLOSE_WORKER]
    assert [c["value"]["closed"] for c in closes] == [False, True], "the first close must see the request"
    assert converged(w, arm_emulator, NODEPOOL1) and converged(w, arm_emulator, SPOT)
    assert w.runtime.store.list_requests(DEV.key) == []
    assert {s.runtime_status for s in w.functions.durable.statuses()} == {RuntimeStatus.COMPLETED}


def test_a_request_after_the_final_close_starts_a_new_worker_without_another_event(warden, arm_emulator):
    w = warden({"default": "Disabled"})
    late: list[threading.Thread] = []

    def after_close(event) -> None:
        closed = event.kind == "activity-completed" and event.activity == names.CLOSE_WORKER
        if closed and event.payload["value"]["closed"] and not late:
            # The worker has closed; its orchestration ends in the next episode. The event's
            # trigger runs now, beside the host, as a concurrent Event Grid delivery would.
            thread = threading.Thread(target=w.functions.deliver_events, args=([copy.deepcopy(arm_event(SPOT))],))
            late.append(thread)
            thread.start()
            # Hold the host here, the old worker still running, until the trigger has met it.
            deadline = time.monotonic() + 5
            while w.functions.durable.refused_starts == 0 and time.monotonic() < deadline:
                time.sleep(0.01)

    w.on_progress = after_close
    w.deliver(arm_event(NODEPOOL1))
    late[0].join(timeout=30)
    assert not late[0].is_alive()
    w.functions.run()  # whatever the trigger started, with no further event
    assert converged(w, arm_emulator, NODEPOOL1) and converged(w, arm_emulator, SPOT)
    assert w.runtime.store.list_requests(DEV.key) == []
    assert w.functions.durable.refused_starts >= 1, "the trigger came while the closed worker still ran"
    workers = [e for e in w.progress if e.kind == "started" and e.orchestration == names.CLUSTER_WORKER]
    assert len(workers) == 2, "the late request needs a worker of its own: the first had closed"
    assert {s.runtime_status for s in w.functions.durable.statuses()} == {RuntimeStatus.COMPLETED}
