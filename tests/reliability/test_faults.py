"""ARM faults met by the reconcile, end to end: the ARM emulator answers chosen requests with
errors, the real SDKs read them and the real replay engine decides (virtual clock, no mocks).

Transient faults (429, 409, 5xx) are retried with durable timers until the pool converges;
terminal ones (a failed or canceled operation, a 4xx, a deleted pool, spent retries) end that
pool with ARM's code and message in the audit trail and leave the rest of the cluster going.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.core.records import PoolStatus
from shared.local.durable_host import RuntimeStatus
from shared.orchestration import names
from shared.orchestration.operations import MAX_ATTEMPTS
from shared.orchestration.reconcile import UPDATE, UPGRADE
from tests.warden_fixtures import DEV, arm_event, is_run_command

NODEPOOL1 = DEV.id + "/agentPools/nodepool1"
SPOT = DEV.id + "/agentPools/spot"
CLUSTER_WRITE = "Microsoft.ContainerService/managedClusters/write"
POOL_PATH = r"/agentPools/nodepool1$"
CLUSTER_PATH = r"/managedClusters/aks-dev-weu$"  # read first by every plan
UPGRADE_PATH = r"/agentPools/nodepool1/upgradeNodeImageVersion$"
OPERATION_STATUS_PATH = r"/locations/[^/]+/operations/"
SSH_OFF = {("inactive", "disabled")}
SSH_ON = {("active", "enabled")}


def assert_converged(w, arm_emulator, pool_id: str = NODEPOOL1) -> None:
    """sshAccess Disabled on the pool, sshd off on every node, the outcome recorded, the host done."""
    pool = pool_id.rsplit("/", 1)[-1]
    assert arm_emulator.pool_body(pool_id)["properties"]["securityProfile"]["sshAccess"] == "Disabled"
    assert arm_emulator.sshd_states(pool_id) == SSH_OFF
    assert ("outcome", "succeeded") in w.steps(pool=pool)
    state = w.pool_state(DEV, pool)
    assert (state.status, state.configured_mode, state.pending_reimage) == (PoolStatus.COMPLIANT, "Disabled", False)
    assert_finished_cleanly(w)


def assert_finished_cleanly(w) -> None:
    """Every orchestration Completed (none Failed or stuck), no activity raised, no reimage held."""
    statuses = w.functions.durable.statuses()
    assert statuses and {s.runtime_status for s in statuses} == {RuntimeStatus.COMPLETED}
    assert [e for e in w.progress if e.kind == "activity-failed"] == []
    assert w.runtime.store.reimage_claims(datetime.now(UTC)) == ([], []), "a reimage hold or ticket was left"


def starts(w) -> list:
    return [e for e in w.progress if e.kind == "activity" and e.activity == names.START_SSH_UPDATE]


def gaps(times: list) -> list[float]:
    return [(later - earlier).total_seconds() for earlier, later in zip(times, times[1:], strict=False)]


def rows(w, pool: str, step: str, outcome: str) -> list:
    return [r for r in w.audit() if r.pool == pool and r.step == step and r.outcome.value == outcome]


def on_activity(w, activity: str, action, *, nth: int = 1, when=lambda event: True) -> None:
    """Run `action` once, as the `nth` matching call of `activity` is about to run."""
    seen = 0

    def watch(event) -> None:
        nonlocal seen
        if event.kind == "activity" and event.activity == activity and when(event):
            seen += 1
            if seen == nth:
                action()

    w.on_progress = watch


# --- transient faults: retried, then converged -------------------------------------------------


@pytest.mark.parametrize("retry_after", [37, 120], ids=["retry-after-37s", "retry-after-120s"])
def test_a_throttled_put_is_retried_after_retry_after_and_converges(warden, arm_emulator, retry_after):
    w = warden({"default": "Disabled"})
    arm_emulator.faults.arm(
        "PUT",
        POOL_PATH,
        429,
        code="Throttled",
        message="Too many requests to agent pool.",
        headers={"Retry-After": str(retry_after)},
    )
    w.deliver(arm_event(NODEPOOL1))
    first, second = w.activity_times(names.START_SSH_UPDATE)
    assert second - first >= timedelta(seconds=retry_after)
    assert [m for m, _ in w.writes()].count("PUT") == 2
    [retried] = rows(w, "nodepool1", names.START_SSH_UPDATE, "retried")
    assert retried.code == "Throttled" and f"in {retry_after}s" in retried.message
    assert_converged(w, arm_emulator)


@pytest.mark.parametrize("times", [1, 3], ids=["once", "three-times"])
def test_a_put_refused_with_409_waits_for_idle_retries_and_converges(warden, arm_emulator, times):
    w = warden({"default": "Disabled"})
    arm_emulator.faults.arm(
        "PUT",
        POOL_PATH,
        409,
        code="OperationNotAllowed",
        times=times,
        message="Operation is not allowed: Another operation (Updating) is in progress.",
    )
    w.deliver(arm_event(NODEPOOL1))
    assert len(w.activity_times(names.START_SSH_UPDATE)) == times + 1
    retried = rows(w, "nodepool1", names.START_SSH_UPDATE, "retried")
    assert [r.code for r in retried] == ["OperationNotAllowed"] * times
    # The plan saw the cluster idle before the first attempt; every retry reads the cluster again.
    assert [e.payload["fresh"] for e in starts(w)] == [True] + [False] * times
    assert_converged(w, arm_emulator)


@pytest.mark.parametrize("busy_id", [NODEPOOL1, DEV.id], ids=["this-pool", "the-cluster"])
def test_an_operation_in_progress_is_waited_out_without_a_write(warden, arm_emulator, busy_id):
    """Something else updates the pool or the cluster when the plan runs, for two attempts of the
    PUT: the plan sees it busy, so each attempt reads the cluster and its pools first, sees them
    busy and sends nothing. (Another pool's operation the plan does not read: see below.)"""
    w = warden({"default": "Disabled"})
    on_activity(w, names.PLAN_POOL, lambda: arm_emulator.set_provisioning_state(busy_id, "Updating"))
    attempts: list = []

    def watch(event, plan_watch=w.on_progress) -> None:
        plan_watch(event)
        if event.kind == "activity" and event.activity == names.START_SSH_UPDATE:
            attempts.append(event.at)
            if len(attempts) == 3:  # as the third attempt runs, the other operation has just ended
                arm_emulator.set_provisioning_state(busy_id, "Succeeded")

    w.on_progress = watch
    w.deliver(arm_event(NODEPOOL1))
    assert [e.payload["fresh"] for e in starts(w)] == [False, False, False]
    assert [m for m, _ in w.writes()] == ["PUT", "POST"]
    assert not rows(w, "nodepool1", names.START_SSH_UPDATE, "retried"), "a PUT was sent while the cluster was busy"
    assert_converged(w, arm_emulator)


@pytest.mark.parametrize("busy_from", [names.START_SSH_UPDATE, names.PLAN_POOL], ids=["after-the-plan", "at-the-plan"])
def test_another_pool_turning_busy_before_the_put_gets_409_then_waits_and_converges(warden, arm_emulator, busy_from):
    """The plan reads only its pool (and the cluster): another pool's operation, begun before the
    plan or between plan and PUT, is found by ARM refusing the PUT itself (409)."""
    w = warden({"default": "Disabled"})
    on_activity(w, busy_from, lambda: arm_emulator.set_provisioning_state(SPOT, "Updating"))
    attempts: list = []

    def watch(event, put_watch=w.on_progress) -> None:
        put_watch(event)
        if event.kind == "activity" and event.activity == names.START_SSH_UPDATE:
            attempts.append(event.at)
            if len(attempts) == 3:  # busy at the first attempt after the 409, idle at the next
                arm_emulator.set_provisioning_state(SPOT, "Succeeded")

    w.on_progress = watch
    w.deliver(arm_event(NODEPOOL1))
    [retried] = rows(w, "nodepool1", names.START_SSH_UPDATE, "retried")
    assert retried.code == "OperationNotAllowed"  # no fault armed: the emulator refused the PUT itself
    assert [e.payload["fresh"] for e in starts(w)] == [True, False, False]
    assert [m for m, _ in w.writes()] == ["PUT", "PUT", "POST"], "the refused PUT, then one once idle"
    assert_converged(w, arm_emulator)


def test_500s_on_the_reads_of_the_plan_are_retried_with_growing_delays(warden, arm_emulator):
    w = warden({"default": "Disabled"})
    arm_emulator.faults.arm("GET", CLUSTER_PATH, 500, code="InternalServerError", message="Injected 500.", times=3)
    w.deliver(arm_event(NODEPOOL1))
    plans = w.activity_times(names.PLAN_POOL)
    assert len(plans) == 4
    delays = gaps(plans)
    assert delays == sorted(delays) and len(set(delays)) == 3, f"backoff does not grow: {delays}"
    retried = rows(w, "nodepool1", names.PLAN_POOL, "retried")
    assert [r.code for r in retried] == ["InternalServerError"] * 3
    assert_converged(w, arm_emulator)


def test_500s_on_the_operation_poll_are_retried_with_growing_delays(warden, arm_emulator):
    w = warden({"default": "Disabled"})
    arm_emulator.faults.arm(
        "GET", OPERATION_STATUS_PATH, 500, code="InternalServerError", message="Injected 500.", times=3
    )
    w.deliver(arm_event(NODEPOOL1))
    polls = [
        e.at
        for e in w.progress
        if e.kind == "activity" and e.activity == names.POLL_OPERATION and e.payload["step"] == UPDATE
    ]
    assert len(polls) >= 4
    delays = gaps(polls[:4])  # the three failed polls and the one after them
    assert delays == sorted(delays) and len(set(delays)) == 3, f"backoff does not grow: {delays}"
    assert_converged(w, arm_emulator)


# --- terminal faults: recorded, the pool ends, the cluster goes on ----------------------------


@pytest.mark.parametrize("end", ["Failed", "Canceled"])
def test_a_failed_upgrade_is_terminal_for_its_pool_and_pauses_the_next_pools_reimage(warden, arm_emulator, end):
    w = warden(
        {"default": "Disabled", "rules": [{"name": "keep batch", "match": {"pool": "batch"}, "sshAccess": "ignore"}]}
    )
    code, message = "NodeImageUpgradeFailed", f"Node image upgrade of nodepool1 {end.lower()}: injected."
    arm_emulator.faults.fail_operation(UPGRADE_PATH, code, message, status=end)
    w.deliver(arm_event(DEV.id, CLUSTER_WRITE))

    [failed] = rows(w, "nodepool1", UPGRADE, "failed")
    assert (failed.code, failed.message) == (code, message)
    [outcome] = rows(w, "nodepool1", "outcome", "failed")
    assert (outcome.code, outcome.message) == (code, message)
    assert ("outcome", "succeeded") not in w.steps(pool="nodepool1")
    assert not rows(w, "nodepool1", UPGRADE, "retried")
    state = w.pool_state(DEV, "nodepool1")
    assert (state.configured_mode, state.pending_reimage, state.status) == (
        "Disabled",
        True,
        PoolStatus.PENDING_REIMAGE,
    )
    assert arm_emulator.sshd_states(NODEPOOL1) == SSH_ON  # the sshAccess PUT alone reimages nothing
    # The next pool still gets its sshAccess; its reimage waits: a failed rollout does not roll on.
    assert w.writes() == [
        ("PUT", "agentPools/nodepool1"),
        ("POST", "nodepool1/upgradeNodeImageVersion"),
        ("PUT", "agentPools/spot"),
    ]
    [waiting] = rows(w, "spot", "outcome", "waiting")
    assert waiting.message.startswith("reimages of this cluster are paused after nodepool1's reimage failed at")
    assert w.pool_state(DEV, "spot").status is PoolStatus.PENDING_REIMAGE
    assert_finished_cleanly(w)


@pytest.mark.parametrize(
    "status, code, message",
    [
        (400, "InvalidParameter", "The value of parameter agentPoolProfile.securityProfile.sshAccess is invalid."),
        (403, "AuthorizationFailed", "The client does not have authorization to perform action agentPools/write."),
    ],
    ids=["400-invalid-parameter", "403-authorization-failed"],
)
def test_a_permanent_4xx_on_the_put_is_not_retried_and_is_recorded(warden, arm_emulator, status, code, message):
    w = warden({"default": "Disabled"})
    arm_emulator.faults.arm("PUT", POOL_PATH, status, code=code, message=message)
    w.deliver(arm_event(NODEPOOL1))
    assert len(w.activity_times(names.START_SSH_UPDATE)) == 1
    assert w.writes() == [("PUT", "agentPools/nodepool1")]
    assert not [s for s in w.steps() if s[1] == "retried"]
    [failed] = rows(w, "nodepool1", UPDATE, "failed")
    assert (failed.code, failed.message) == (code, message)
    [outcome] = rows(w, "nodepool1", "outcome", "failed")
    assert (outcome.code, outcome.message) == (code, message)
    assert w.pool_state(DEV, "nodepool1").status is PoolStatus.DRIFTED
    assert arm_emulator.sshd_states(NODEPOOL1) == SSH_ON
    assert_finished_cleanly(w)


PERSISTENT = {
    "put": ("PUT", POOL_PATH, arm_event(NODEPOOL1), names.START_SSH_UPDATE, "nodepool1", "update-ssh-access"),
    "cluster-get-in-plan": ("GET", CLUSTER_PATH, arm_event(NODEPOOL1), names.PLAN_POOL, "nodepool1", "plan"),
    "pool-list": (
        "GET",
        r"/managedClusters/aks-dev-weu/agentPools$",
        arm_event(DEV.id, CLUSTER_WRITE),
        names.LIST_POOLS,
        "",
        "list-pools",
    ),
}


@pytest.mark.parametrize(
    "method, path, event, activity, pool, terminal_step", PERSISTENT.values(), ids=PERSISTENT.keys()
)
def test_a_persistent_500_ends_after_max_attempts_with_a_recorded_failure(
    warden, arm_emulator, method, path, event, activity, pool, terminal_step
):
    w = warden({"default": "Disabled"})
    arm_emulator.faults.arm(method, path, 500, code="InternalServerError", message="Injected 500.", times=1000)
    w.deliver(event)
    assert len(w.activity_times(activity)) == MAX_ATTEMPTS
    assert [m for m, _ in w.writes()] == (["PUT"] * MAX_ATTEMPTS if method == "PUT" else [])
    retried = rows(w, pool, activity, "retried")
    assert len(retried) == MAX_ATTEMPTS - 1, "a retry was recorded that never happened"
    assert f"attempt {MAX_ATTEMPTS - 1} of {MAX_ATTEMPTS}" in retried[-1].message
    [failed, outcome] = [r for r in w.audit() if r.outcome.value == "failed"]
    assert (failed.step, failed.pool, failed.code) == (terminal_step, pool, "RetriesExhausted")
    assert "last error InternalServerError: Injected 500." in failed.message
    assert (outcome.step, outcome.pool, outcome.message) == ("outcome", pool, failed.message)
    assert arm_emulator.sshd_states(NODEPOOL1) == SSH_ON
    assert_finished_cleanly(w)


# --- the pool deleted by someone else between steps ------------------------------------------


def _delete_while_the_put_is_polled(w, arm_emulator) -> None:
    on_activity(
        w, names.POLL_OPERATION, lambda: arm_emulator.delete_pool(NODEPOOL1), when=lambda e: e.payload["step"] == UPDATE
    )


def _delete_after_the_put_succeeded(w, arm_emulator) -> None:
    # As the update's last poll is about to run: it finds the PUT succeeded and starts the upgrade
    # right away (without reading first).
    on_activity(
        w,
        names.POLL_OPERATION,
        lambda: arm_emulator.delete_pool(NODEPOOL1),
        nth=2,
        when=lambda e: e.payload["step"] == UPDATE,
    )


@pytest.mark.parametrize(
    "delete",
    [_delete_while_the_put_is_polled, _delete_after_the_put_succeeded],
    ids=["while-the-put-runs", "after-the-put-succeeded"],
)
def test_a_pool_deleted_between_steps_is_recorded_gone_with_no_further_write(warden, arm_emulator, delete):
    w = warden({"default": "Disabled"})
    delete(w, arm_emulator)
    w.deliver(arm_event(NODEPOOL1))
    assert NODEPOOL1.lower() not in {p.lower() for p in arm_emulator.pool_ids()}
    # The upgrade goes out right after the update without a read: ARM refuses it (404) for the
    # pool that is gone, which ends the pool `gone`; nothing else is sent.
    sent = w.writes()
    assert sent[0] == ("PUT", "agentPools/nodepool1")
    assert sent[1:] in ([], [("POST", "nodepool1/upgradeNodeImageVersion")])
    assert ("outcome", "gone") in w.steps(pool="nodepool1")
    assert ("outcome", "failed") not in w.steps(pool="nodepool1")
    assert not [s for s in w.steps() if s[1] == "retried"]
    assert_finished_cleanly(w)


def test_an_upgrade_that_ran_while_a_retry_waited_is_not_started_again(warden, arm_emulator):
    """The first upgrade POST is refused; before the retry, the pool's image moves on (as when
    an attempt whose answer was lost did run): the nodes are reimaged, no second upgrade."""
    w = warden({"default": "Disabled"})
    upgrade = r"/agentPools/nodepool1/upgradeNodeImageVersion$"
    arm_emulator.faults.arm(
        "POST", upgrade, 409, code="OperationNotAllowed", message="Another operation is in progress."
    )

    def upgrade_meanwhile() -> None:
        operation = w.runtime.arm.start_node_image_upgrade(DEV, "nodepool1")
        while not (polled := w.runtime.arm.poll_operation(operation, DEV.subscription)).state.done:
            operation = polled.operation

    # The first attempt goes out from the update's last poll; the retry is the start activity's first call.
    on_activity(w, names.START_NODE_IMAGE_UPGRADE, upgrade_meanwhile, nth=1)
    w.deliver(arm_event(NODEPOOL1))
    posts = [r for r in arm_emulator.requests if r.method == "POST" and not is_run_command(r.path)]
    assert len(posts) == 2, "the refused attempt and the one that ran meanwhile, none from the retry"
    [skipped] = [
        r for r in rows(w, "nodepool1", "upgrade-node-image", "succeeded") if "not upgrading twice" in r.message
    ]
    assert skipped.code == ""
    assert_converged(w, arm_emulator)


def test_a_put_whose_answer_was_lost_is_found_by_its_etag_not_sent_again(warden, arm_emulator):
    """The PUT right after the plan reads no receipt first: it goes out on the ETag the plan read.
    Run again after its answer was lost, it finds the pool changed (by itself), reads its receipt
    then and hands back the operation it started: one PUT, its rows once, no retry."""
    w = warden({"default": "Disabled"})
    lost = []

    def lose(name, payload) -> bool:
        if name == names.START_SSH_UPDATE and not lost:
            lost.append(payload)
            return True
        return False

    w.functions.durable.lose_completion = lose
    w.deliver(arm_event(NODEPOOL1))
    assert lost and lost[0]["fresh"] and lost[0]["poolEtag"], "the first attempt was a guarded one"
    assert [m for m, _ in w.writes()] == ["PUT", "POST"]
    assert len(rows(w, "nodepool1", UPDATE, "started")) == 1
    assert not [r for r in w.audit(DEV) if r.outcome.value == "retried"]
    assert_converged(w, arm_emulator)
