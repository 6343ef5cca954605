"""The cluster worker and the waits of a reconcile, end to end on the local Azure (real SDKs,
Azurite, the ARM emulator, the real replay engine on a virtual clock).

- One writer per cluster, for every kind of work: a second kind (a test-only probe that looks
  at the cluster twice, as a run-command would) never runs inside a reconcile of the same
  cluster, whichever arrives first, while work on another cluster does overlap. A kind with no
  orchestrator is recorded as failed and its request removed.
- A decision re-checked after a long wait: settings that change while an upgrade waits for
  its maintenance window stop the upgrade, with the reason recorded.
- `Retry-After` values that are unusable or absurd neither crash nor stall a reconcile.
- The operation-status URL: a 404 is judged by the pool itself; persistent 500s end after
  bounded retries.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from shared.adapters.store import Admission
from shared.core.protocol import WorkKind
from shared.core.records import PoolStatus, WorkRequest
from shared.orchestration import names, runtime, worker
from shared.orchestration.backoff import MAX_RETRY_AFTER_SECONDS
from shared.orchestration.operations import MAX_ATTEMPTS
from shared.orchestration.reconcile import UPDATE, UPGRADE
from shared.policy import parse_policy
from tests.emulator_fixtures import SUB_B
from tests.reliability import probe_work
from tests.reliability.probe_work import PROBE, PROBE_ACTIVITY, PROBE_STEP, PROBE_WORK
from tests.reliability.test_faults import (
    NODEPOOL1,
    OPERATION_STATUS_PATH,
    POOL_PATH,
    SSH_ON,
    assert_converged,
    assert_finished_cleanly,
    gaps,
    on_activity,
    rows,
)
from tests.table_faults import FlakyTransport
from tests.warden_fixtures import DEV, PROD, arm_event

POLL_SECONDS = 10  # WARDEN_POLL_SECONDS of the warden fixture: the backoff's base


@pytest.fixture
def probe(arm_emulator, monkeypatch):
    """`verify` work is the probe, for this test only; the probe reads `arm_emulator`."""
    monkeypatch.setitem(worker.WORK_ORCHESTRATORS, WorkKind.VERIFY.value, PROBE_WORK)
    monkeypatch.setattr(PROBE, "emulator", arm_emulator)
    monkeypatch.setattr(PROBE, "observations", [])
    return PROBE


def activity_indices(w, activity: str, when=lambda event: True) -> list[int]:
    """Where in the host's (strictly ordered) progress the calls of `activity` ran."""
    return [i for i, e in enumerate(w.progress) if e.kind == "activity" and e.activity == activity and when(e)]


def lifetimes(w, orchestration: str, cluster: str = DEV.name) -> list[tuple[int, int]]:
    """(started, completed) progress indices of each `orchestration` instance of the cluster's worker."""
    ids = {e.instance_id for e in w.progress if e.orchestration == orchestration and cluster in e.instance_id}
    spans = []
    for instance in sorted(ids):
        marks = [
            i for i, e in enumerate(w.progress) if e.instance_id == instance and e.kind in ("started", "completed")
        ]
        spans.append((marks[0], marks[-1]))
    return spans


def reconcile_writing(w) -> tuple[int, int]:
    """From the reconcile's first ARM write to the poll that saw its upgrade finish."""
    first_write = activity_indices(w, names.START_SSH_UPDATE)[0]
    upgrade_done = activity_indices(w, names.POLL_OPERATION, lambda e: e.payload["step"] == UPGRADE)[-1]
    return first_write, upgrade_done


def assert_worker_closed(w, cluster=DEV) -> None:
    """No request left for the cluster, and its worker's last execution closed it and ended."""
    assert w.runtime.store.list_requests(cluster.key) == []
    [last] = [
        s for s in w.functions.durable.statuses() if s.name == names.CLUSTER_WORKER and cluster.name in s.instance_id
    ]
    assert last.output["closed"] is True, last.output


# --- one writer per cluster, for every kind of work -------------------------------------------


def _reconcile_then_verify(w) -> None:
    w.functions.deliver_events([arm_event(NODEPOOL1)])
    assert probe_work.request(w.functions, DEV.id, WorkKind.VERIFY)["admission"] == "joined"


def _verify_then_reconcile(w) -> None:
    assert probe_work.request(w.functions, DEV.id, WorkKind.VERIFY)["admission"] == "started"
    w.functions.deliver_events([arm_event(NODEPOOL1)])


def _verify_joins_mid_reconcile(w) -> None:
    """The verify request arrives as the reconcile's first ARM write is about to go out. It is
    written to the requests table as `request_work` writes it (a call through the Durable client
    cannot run here: the host holds its lock while it reports progress)."""
    admissions = []
    request = WorkRequest(DEV.id, "", datetime.now(UTC), WorkKind.VERIFY, "joined mid-reconcile")
    on_activity(w, names.START_SSH_UPDATE, lambda: admissions.append(w.runtime.store.add_request(request)))
    w.functions.deliver_events([arm_event(NODEPOOL1)])
    w.functions.run()
    assert admissions == [Admission.JOINED]


ORDERS = {
    "reconcile-then-verify": _reconcile_then_verify,
    "verify-then-reconcile": _verify_then_reconcile,
    "verify-joins-mid-reconcile": _verify_joins_mid_reconcile,
}


@pytest.mark.parametrize("arrive", ORDERS.values(), ids=ORDERS.keys())
def test_a_second_kind_of_work_never_runs_inside_a_reconcile_of_the_same_cluster(warden, arm_emulator, probe, arrive):
    w = warden({"default": "Disabled"}, app=probe_work.app())
    arrive(w)
    w.functions.run()

    # The probe stands in for verify, which also follows the remediation: two runs or more.
    looks = [o.look for o in probe.observations]
    assert looks and looks == ["first", "second"] * (len(looks) // 2)
    assert {o.busy for o in probe.observations} == {()}, "the probe ran while an operation was in progress"
    first_write, upgrade_done = reconcile_writing(w)
    inside = [i for i in activity_indices(w, PROBE_ACTIVITY) if first_write < i < upgrade_done]
    assert inside == [], "the probe ran between the reconcile's first write and its upgrade's end"
    [reconcile] = lifetimes(w, names.RECONCILE_CLUSTER)
    for probing in lifetimes(w, PROBE_WORK):
        assert reconcile[1] < probing[0] or probing[1] < reconcile[0], f"overlapping work: {reconcile} {probing}"

    # Both requests were taken, their work recorded, and their rows removed.
    assert_converged(w, arm_emulator)
    assert w.writes() == [("PUT", "agentPools/nodepool1"), ("POST", "nodepool1/upgradeNodeImageVersion")]
    probed = [r for r in w.audit() if r.step == PROBE_STEP]
    assert probed and {r.outcome.value for r in probed} == {"succeeded"}, [r.message for r in probed]
    assert_worker_closed(w)


def test_work_on_another_cluster_does_overlap_a_reconcile(warden, arm_emulator, probe):
    """The control: the probe can see an overlap, and one cluster's worker does not hold up another's."""
    w = warden({"default": "Disabled"}, app=probe_work.app())
    w.functions.deliver_events([arm_event(NODEPOOL1)])
    probe_work.request(w.functions, PROD.id, WorkKind.VERIFY)
    w.functions.run()

    first_write, upgrade_done = reconcile_writing(w)
    inside = [i for i in activity_indices(w, PROBE_ACTIVITY) if first_write < i < upgrade_done]
    assert inside, "the two clusters' workers ran one after the other"
    prod = [o for o in probe.observations if o.cluster == PROD.id]
    assert [o.busy for o in prod] == [(), ()], "PROD has no operation of its own"
    assert_converged(w, arm_emulator)
    assert_worker_closed(w, DEV)
    assert_worker_closed(w, PROD)


@pytest.mark.parametrize("with_reconcile", [False, True], ids=["alone", "next-to-a-reconcile"])
def test_a_kind_without_an_orchestrator_is_recorded_failed_and_its_request_removed(
    warden, arm_emulator, with_reconcile, monkeypatch
):
    """A request of a kind this version cannot do (left by a newer one, say): dropped, recorded."""
    monkeypatch.delitem(worker.WORK_ORCHESTRATORS, WorkKind.ROTATE_KEYS.value)
    w = warden({"default": "Disabled"}, app=probe_work.app())
    probe_work.request(w.functions, DEV.id, WorkKind.ROTATE_KEYS)
    if with_reconcile:
        w.functions.deliver_events([arm_event(NODEPOOL1)])
    w.functions.run()

    [dropped] = [r for r in w.audit() if r.step == WorkKind.ROTATE_KEYS.value]
    assert dropped.outcome.value == "failed"
    assert "no rotate-keys work" in dropped.message and "request dropped" in dropped.message
    if with_reconcile:
        assert_converged(w, arm_emulator)
    else:
        assert w.writes() == []
        assert_finished_cleanly(w)
    assert_worker_closed(w)


def test_the_verification_a_remediation_asks_for_survives_a_store_that_refuses_its_write(warden, arm_emulator):
    """The verify requests the reconcile asks for go with the removal of its request, in one
    write. When every write of them fails past its retries, the worker carries them in its
    input to its next round and writes them there: the pool is verified, once, and the worker
    closes owing nothing."""
    transport = FlakyTransport()
    w = warden({"default": "Disabled"}, store_options={"transport": transport})
    refused, carried = [], []

    def refuse_the_follow_up_for_a_round(text: str) -> bool:
        if "verify%7Cnodepool1" in text and len(refused) < 2 * MAX_ATTEMPTS:  # with the rows, then alone
            refused.append(text)
            return True
        return False

    def watch(event) -> None:
        if event.kind == "continued-as-new" and event.orchestration == names.CLUSTER_WORKER:
            carried.append(event.payload.get("followUps"))

    transport.fail_when = refuse_the_follow_up_for_a_round
    w.on_progress = watch
    w.deliver(arm_event(NODEPOOL1))

    assert len(refused) == 2 * MAX_ATTEMPTS, "every write of the follow-up was refused past its retries"
    assert [f["pool"] for f in carried[0]] == ["nodepool1"], "carried to the next round"
    assert_converged(w, arm_emulator)
    verified = [s.input["pools"] for s in w.functions.durable.statuses() if s.name == names.VERIFY_CLUSTER]
    assert verified == [["nodepool1"]]
    assert w.runtime.store.list_requests(DEV.key) == []
    assert_worker_closed(w)


def test_a_reconcile_that_fails_after_remediating_has_the_whole_cluster_verified(warden, arm_emulator, monkeypatch):
    """The pools a failed reconcile remediated are lost with its result: the worker records the
    failure and asks for the whole cluster's verification instead."""
    from shared.orchestration import reconcile

    remediate = reconcile.reconcile_cluster

    def remediate_then_fail(context):
        yield from remediate(context)
        raise RuntimeError("lost its way after the pools")

    monkeypatch.setattr(reconcile, "reconcile_cluster", remediate_then_fail)
    w = warden({"default": "Disabled"})
    w.deliver(arm_event(NODEPOOL1))

    assert ("PUT", "agentPools/nodepool1") in w.writes()
    failed = [r for r in w.audit() if r.step == WorkKind.RECONCILE.value]
    assert failed and all(r.outcome.value == "failed" for r in failed)
    verified = [s.input["pools"] for s in w.functions.durable.statuses() if s.name == names.VERIFY_CLUSTER]
    # The whole cluster, its remediated pools among them (the drift it finds on `batch` is
    # re-enforced by another reconcile, which fails the same way and asks the same).
    assert verified and all(pools is None for pools in verified)
    assert_worker_closed(w)


# --- settings changed while an upgrade waits for its maintenance window ------------------------

WINDOWED = {"default": "Disabled", "upgrade": {"window": "nodeOSSchedule"}}
KEEP_NODEPOOL1 = {
    **WINDOWED,
    "rules": [{"name": "hands off nodepool1", "match": {"pool": "nodepool1"}, "sshAccess": "ignore"}],
}
CHANGES = {
    "mode-audit": (lambda s: dataclasses.replace(s, mode="audit"), "WARDEN_MODE"),
    "subscription-removed": (
        lambda s: dataclasses.replace(s, subscriptions=frozenset({SUB_B})),
        "WARDEN_SUBSCRIPTIONS",
    ),
    "policy-ignores-the-pool": (lambda s: dataclasses.replace(s, policy=parse_policy(KEEP_NODEPOOL1)), "policy"),
}


@pytest.mark.parametrize("change, named", CHANGES.values(), ids=CHANGES.keys())
def test_settings_changed_while_the_upgrade_waits_for_its_window_stop_the_upgrade(warden, arm_emulator, change, named):
    from shared.policy.window import upgrade_gate

    w = warden(WINDOWED)
    [config] = w.runtime.arm.list_maintenance_configurations(DEV)
    # The window opens in 30 minutes: near enough for the worker to wait for it.
    w.clock.advance_to(upgrade_gate(dict(config.window), w.clock.now()).opens_at - timedelta(minutes=30))
    puts_at_switch = []

    def switch() -> None:
        puts_at_switch.append(sum(1 for r in arm_emulator.requests if r.method == "PUT"))
        runtime.update_settings(change(w.settings))

    on_activity(w, names.RECORD, switch, when=lambda e: e.payload["step"] == "upgrade-window")
    w.deliver(arm_event(NODEPOOL1))

    assert puts_at_switch == [1], "the switch must come after the PUT, while the upgrade waits"
    assert ("upgrade-window", "waiting") in w.steps(pool="nodepool1")
    assert w.writes() == [("PUT", "agentPools/nodepool1")], "an upgrade was sent after the settings changed"
    assert arm_emulator.sshd_states(NODEPOOL1) == SSH_ON
    [skipped] = rows(w, "nodepool1", UPGRADE, "skipped")
    [outcome] = rows(w, "nodepool1", "outcome", "skipped")
    assert named in outcome.message and outcome.message == skipped.message
    state = w.pool_state(DEV, "nodepool1")
    assert (state.status, state.configured_mode, state.pending_reimage) == (
        PoolStatus.PENDING_REIMAGE,
        "Disabled",
        True,
    )
    assert_finished_cleanly(w)


# --- Retry-After that would crash or stall a reconcile -----------------------------------------


def _in_90_seconds() -> str:
    """An HTTP date 90 s ahead: `retry_after_seconds` reads HTTP dates against the real clock."""
    return format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)


RETRY_AFTERS = {
    "nan": ("nan", None),
    "inf": ("inf", None),
    "negative": ("-5", None),
    "junk": ("junk", None),
    "1e12-seconds": ("1e12", (MAX_RETRY_AFTER_SECONDS, MAX_RETRY_AFTER_SECONDS)),
    "http-date-in-90s": (_in_90_seconds, (60.0, 90.0)),
}


@pytest.mark.parametrize("header, expected", RETRY_AFTERS.values(), ids=RETRY_AFTERS.keys())
def test_an_unusable_or_absurd_retry_after_neither_crashes_nor_stalls_the_reconcile(
    warden, arm_emulator, header, expected
):
    w = warden({"default": "Disabled"})
    value = header() if callable(header) else header
    arm_emulator.faults.arm(
        "PUT", POOL_PATH, 429, code="Throttled", message="Too many requests.", headers={"Retry-After": value}
    )
    w.deliver(arm_event(NODEPOOL1))

    assert [m for m, _ in w.writes()] == ["PUT", "PUT", "POST"], "the refused PUT, one successful retry, the upgrade"
    [waited] = gaps(w.activity_times(names.START_SSH_UPDATE))
    assert 0 < waited <= MAX_RETRY_AFTER_SECONDS
    # Unusable: the first step of the normal backoff, base WARDEN_POLL_SECONDS with jitter in [50%, 100%].
    low, high = expected or (POLL_SECONDS / 2, POLL_SECONDS)
    assert low <= waited <= high, f"Retry-After {value!r}: waited {waited}s"
    [retried] = rows(w, "nodepool1", names.START_SSH_UPDATE, "retried")
    assert retried.code == "Throttled"
    assert_converged(w, arm_emulator)


# --- the operation-status URL ------------------------------------------------------------------


@pytest.mark.parametrize("times", [1, 1000], ids=["once", "always"])
def test_a_404_on_the_operation_status_url_is_judged_by_the_pool_and_converges(warden, arm_emulator, times):
    w = warden({"default": "Disabled"})
    arm_emulator.faults.arm(
        "GET", OPERATION_STATUS_PATH, 404, code="NotFound", message="Operation not found.", times=times
    )
    w.deliver(arm_event(NODEPOOL1))
    assert [m for m, _ in w.writes()] == ["PUT", "POST"]
    assert ("outcome", "gone") not in w.steps(pool="nodepool1")
    assert not [r for r in w.audit() if r.outcome.value in ("gone", "failed", "retried")]
    assert_converged(w, arm_emulator)


def test_a_404_on_the_operation_status_url_of_a_deleted_pool_is_gone(warden, arm_emulator):
    w = warden({"default": "Disabled"})
    arm_emulator.faults.arm(
        "GET", OPERATION_STATUS_PATH, 404, code="NotFound", message="Operation not found.", times=1000
    )
    on_activity(
        w, names.POLL_OPERATION, lambda: arm_emulator.delete_pool(NODEPOOL1), when=lambda e: e.payload["step"] == UPDATE
    )
    w.deliver(arm_event(NODEPOOL1))
    assert w.writes() == [("PUT", "agentPools/nodepool1")]
    assert ("outcome", "gone") in w.steps(pool="nodepool1")
    assert ("outcome", "failed") not in w.steps(pool="nodepool1")
    assert not [s for s in w.steps() if s[1] == "retried"]
    assert_finished_cleanly(w)


def test_a_poll_that_keeps_failing_ends_after_max_attempts(warden, arm_emulator):
    w = warden({"default": "Disabled"})
    arm_emulator.faults.arm(
        "GET", OPERATION_STATUS_PATH, 500, code="InternalServerError", message="Injected 500.", times=1000
    )
    w.deliver(arm_event(NODEPOOL1))

    assert len(activity_indices(w, names.POLL_OPERATION)) == MAX_ATTEMPTS
    assert w.writes() == [("PUT", "agentPools/nodepool1")], "no upgrade after a PUT whose end is unknown"
    retried = rows(w, "nodepool1", names.POLL_OPERATION, "retried")
    assert len(retried) == MAX_ATTEMPTS - 1
    assert f"failure {MAX_ATTEMPTS - 1} of {MAX_ATTEMPTS}" in retried[-1].message
    [failed, outcome] = [r for r in w.audit() if r.outcome.value == "failed"]
    assert (failed.step, failed.code) == (UPDATE, "RetriesExhausted")
    assert "last error InternalServerError: Injected 500." in failed.message
    assert (outcome.step, outcome.pool, outcome.message) == ("outcome", "nodepool1", failed.message)
    assert_finished_cleanly(w)
