"""Nothing asked for is lost, nothing is done twice: faults outside ARM, at every step.

Table-driven over a real reconcile (Event Grid event -> worker -> PUT -> upgrade), through the
real SDKs, Azurite, the ARM emulator and the real replay engine: a Table Storage failure at
each Table request in turn, and a lost activity completion (the activity ran, the host never
heard, it runs again) after each activity in turn. Every run must end with the pool converged,
exactly one PUT and one upgrade, every audit step written once, one outcome event, each of the
pool's nodes verified once afterwards, no run-command slot nor reimage hold left, and no request left.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from shared.adapters.store import StoreError
from shared.local.durable_host import RuntimeStatus
from tests.table_faults import FlakyTransport
from tests.warden_fixtures import DEV, arm_event

pytestmark = pytest.mark.slow

NODEPOOL1 = DEV.id + "/agentPools/nodepool1"
REDELIVERIES = 3  # Event Grid retries a delivery whose function failed


def run_once(
    warden, start_arm_emulator, receiver, *, fail_request: int | None = None, lose_activity: int | None = None
):
    """One enforcement of nodepool1; `fail_request`: the n-th Table request fails (counted from
    the event); `lose_activity`: the n-th activity's completion is lost. Returns (warden, emulator,
    Table requests sent, activities run)."""
    emulator, transport = start_arm_emulator(), FlakyTransport()
    w = warden(
        {"default": "Disabled"},
        emulator=emulator,
        store_options={"transport": transport},
        WARDEN_EVENTS_ENDPOINT=receiver.url,
    )
    receiver.requests.clear()
    first = transport.sent
    if fail_request is not None:
        transport.fail = {first + fail_request}
    activities = Counter()

    def lose(name, payload) -> bool:
        activities["run"] += 1
        return activities["run"] == lose_activity

    w.functions.durable.lose_completion = lose
    deliver(w, arm_event(NODEPOOL1))
    w.functions.run()
    transport.fail = set()
    return w, emulator, transport.sent - first, activities["run"]


def deliver(w, event: dict) -> None:
    for attempt in range(REDELIVERIES):
        try:
            w.functions.deliver_events([event])
            return
        except StoreError:
            if attempt + 1 == REDELIVERIES:
                raise


def problems_of(w, emulator, receiver) -> list[str]:
    problems = []
    writes = [m for m, _ in w.writes()]
    if writes != ["PUT", "POST"]:
        problems.append(f"ARM writes {writes}, expected one PUT and one upgrade")
    if emulator.sshd_states(NODEPOOL1) != {("inactive", "disabled")}:
        problems.append(f"sshd on the nodes: {emulator.sshd_states(NODEPOOL1)}")
    steps = Counter((r.step, r.outcome.value) for r in w.audit() if r.outcome.value != "retried")
    twice = [step for step, n in steps.items() if n > 1]
    if twice:
        problems.append(f"audit rows written twice: {twice}")
    outcomes = [step for step in steps if step[0] == "outcome"]
    if outcomes != [("outcome", "succeeded")]:
        problems.append(f"outcome rows {outcomes}")
    events = Counter(e["type"] for e in receiver.events)
    if events != Counter({"Warden.SshAccess.Remediated": 1}):
        problems.append(f"events published {dict(events)}")
    checks = Counter((c.pool, c.instance_id) for c in w.runtime.store.list_node_checks(DEV.key))
    if sorted(checks.values()) != [1, 1]:
        problems.append(f"node checks recorded {dict(checks)}, expected each of the 2 nodes once")
    if held := w.runtime.store.slot_holders(DEV.subscription, datetime.now(UTC)):
        problems.append(f"run-command slots still held by {held}")
    if any(reimages := w.runtime.store.reimage_claims(datetime.now(UTC))):
        problems.append(f"reimage holds and tickets left: {reimages}")
    left = w.runtime.store.list_requests(DEV.key)
    if left:
        problems.append(f"requests left in the table: {[(r.kind.value, r.pool, r.lease) for r in left]}")
    statuses = {s.runtime_status for s in w.functions.durable.statuses()}
    if statuses != {RuntimeStatus.COMPLETED}:
        problems.append(f"orchestrations ended {statuses}")
    return problems


def test_the_clean_run_meets_every_check(warden, start_arm_emulator, receiver):
    w, emulator, table_requests, activities = run_once(warden, start_arm_emulator, receiver)
    assert problems_of(w, emulator, receiver) == []
    assert table_requests > 10 and activities > 5


def test_a_table_storage_failure_at_any_store_call_still_converges_once(warden, start_arm_emulator, receiver):
    clean, _, table_requests, _ = run_once(warden, start_arm_emulator, receiver)
    clean.close()
    found = {}
    for n in range(1, table_requests + 1):
        w, emulator, _, _ = run_once(warden, start_arm_emulator, receiver, fail_request=n)
        if problems := problems_of(w, emulator, receiver):
            found[n] = problems
        w.close()
    assert found == {}, f"of {table_requests} Table requests, failing these broke the run: {found}"


def test_a_lost_activity_completion_at_any_step_still_converges_once(warden, start_arm_emulator, receiver):
    clean, _, _, activities = run_once(warden, start_arm_emulator, receiver)
    clean.close()
    found = {}
    for n in range(1, activities + 1):
        w, emulator, _, _ = run_once(warden, start_arm_emulator, receiver, lose_activity=n)
        lost = [e.activity for e in w.progress if e.kind == "activity-lost"]
        if len(lost) != 1:
            found[n] = [f"expected one lost completion, saw {lost}"]
        elif problems := problems_of(w, emulator, receiver):
            found[n] = [f"after re-running {lost[0]}", *problems]
        w.close()
    assert found == {}, f"of {activities} activities, losing these completions broke the run: {found}"


def test_a_pool_whose_steps_keep_failing_outside_arm_is_recorded_failed_and_the_next_pool_goes_on(
    warden, arm_emulator, receiver
):
    """The plan of nodepool1 can never record its decision (its audit row always fails): after
    bounded retries that pool ends failed — outcome row, pool state, event — and spot converges."""
    transport = FlakyTransport()
    w = warden(store_options={"transport": transport}, WARDEN_EVENTS_ENDPOINT=receiver.url)
    transport.fail_when = lambda text: '"Step": "plan"' in text and '"Pool": "nodepool1"' in text and "planned" in text
    w.functions.deliver_events([arm_event(DEV.id, "Microsoft.ContainerService/managedClusters/write")])
    w.functions.run()
    assert transport.failed, "the fault never fired"
    outcomes = {r.pool: (r.outcome.value, r.message) for r in w.audit() if r.step == "outcome"}
    assert outcomes["nodepool1"][0] == "failed" and "gave up after bounded retries" in outcomes["nodepool1"][1]
    assert outcomes["spot"][0] == "succeeded"
    assert "last reconcile failed" in w.pool_state(DEV, "nodepool1").reason
    failed = [e for e in receiver.events if e["type"] == "Warden.SshAccess.RemediationFailed"]
    assert [e["subject"] for e in failed] == [NODEPOOL1]
    assert [m for m, path in w.writes() if "nodepool1" in path] == [], "a pool whose plan was not recorded was written"
    assert w.runtime.store.list_requests(DEV.key) == []
