"""Event -> reconcile orchestration -> ARM, end to end on the local Azure (real SDKs, real replay engine)."""

from shared.core.models import ClusterRef
from shared.core.records import PoolStatus
from shared.orchestration import names
from tests.emulator_fixtures import SUB_A, SUB_B
from tests.warden_fixtures import DEV, PROD, arm_event

AUTOMATIC = ClusterRef(SUB_B, "rg-prod-neu", "aks-auto-neu")
STOPPED = ClusterRef(SUB_B, "rg-dev-neu", "aks-sandbox-neu")

NODEPOOL1 = DEV.id + "/agentPools/nodepool1"
UPGRADE = "upgrade-node-image"


def test_pool_write_event_gives_one_put_then_one_upgrade_and_ssh_off_on_the_nodes(warden, arm_emulator):
    w = warden({"default": "Disabled"})
    before = arm_emulator.pool_body(NODEPOOL1)["properties"]
    w.deliver(arm_event(NODEPOOL1))
    assert w.writes() == [("PUT", "agentPools/nodepool1"), ("POST", "nodepool1/upgradeNodeImageVersion")]
    after = arm_emulator.pool_body(NODEPOOL1)["properties"]
    assert after["securityProfile"]["sshAccess"] == "Disabled"
    kept = {
        k: v for k, v in before.items() if k not in ("securityProfile", "provisioningState", "eTag", "nodeImageVersion")
    }
    assert {k: after.get(k) for k in kept} == kept
    assert arm_emulator.sshd_states(NODEPOOL1) == {("inactive", "disabled")}
    steps = w.steps(pool="nodepool1")
    assert steps == [
        ("event", "planned"),
        ("plan", "planned"),
        ("update-ssh-access", "started"),
        ("update-ssh-access", "succeeded"),
        ("upgrade-node-image", "started"),
        ("upgrade-node-image", "succeeded"),
        ("outcome", "succeeded"),
        ("verify", "succeeded"),  # the nodes checked after the reimage
    ]
    state = w.pool_state(DEV, "nodepool1")
    assert (state.status, state.configured_mode, state.pending_reimage) == (PoolStatus.COMPLIANT, "Disabled", False)
    assert state.last_upgrade_time is not None
    assert (state.verdict, state.nodes_checked, state.nodes_drifted) == ("ok", 2, 0)


def test_the_upgrade_starts_only_after_the_put_succeeded(warden, arm_emulator):
    w = warden({"default": "Disabled"})
    w.deliver(arm_event(NODEPOOL1))
    requests = arm_emulator.requests
    put = next(i for i, r in enumerate(requests) if r.method == "PUT")
    upgrade = next(i for i, r in enumerate(requests) if r.method == "POST")
    assert put < upgrade
    assert any("/operations/" in r.path.lower() for r in requests[put:upgrade]), "no poll of the PUT before the upgrade"


def test_the_upgrade_right_after_the_update_goes_out_from_the_update_s_last_poll(warden, arm_emulator):
    """Nothing waits between them: the poll that sees the PUT succeed sends the upgrade, and the
    upgrade's own start activity never runs (it would only when a retry or a window comes between)."""
    w = warden({"default": "Disabled"})
    w.deliver(arm_event(NODEPOOL1))
    assert w.activity_times(names.START_NODE_IMAGE_UPGRADE) == []
    [chained] = [e for e in w.progress if e.kind == "activity-completed" and "next" in e.payload.get("value", {})]
    assert chained.activity == names.POLL_OPERATION
    sent = chained.payload["value"]["next"]
    assert w.writes() == [("PUT", "agentPools/nodepool1"), ("POST", "nodepool1/upgradeNodeImageVersion")]
    [started] = [r for r in w.audit(DEV) if (r.pool, r.step, r.outcome.value) == ("nodepool1", UPGRADE, "started")]
    assert sent["ok"] and sent["value"]["operation"]["url"] == started.operation_id


def test_the_update_s_last_poll_names_the_upgrade_s_poller_and_an_upgrade_refused_names_none(warden, arm_emulator):
    """The poll that hands the upgrade over names its orchestration on the pool's row with the
    update's success, in one write of the row (the pool's rolling events wake it); an upgrade
    refused at its start leaves the row naming nobody once the pool's reconcile has ended."""
    running, row_writes = [None], []  # the activity running; the one that wrote each pool row

    def count_row_writes(request) -> None:
        if "WardenPoolState" in request.http_request.url and request.http_request.method != "GET":
            row_writes.append(running[0])

    w = warden({"default": "Disabled"}, store_options={"raw_request_hook": count_row_writes})
    named, after_handing = [], {}  # the row's name at each upgrade poll; right after the handing poll

    def watch(event) -> None:
        if event.kind == "activity":
            running[0] = (event.activity, "then" in event.payload, event.payload.get("pool"))
        if event.kind == "activity" and event.activity == names.POLL_OPERATION and event.payload["step"] == UPGRADE:
            named.append((event.instance_id, w.pool_state(DEV, event.payload["pool"]).upgrade_instance_id))
        if event.kind == "activity-completed" and running[0][:2] == (names.POLL_OPERATION, True):
            after_handing[running[0][2]] = w.pool_state(DEV, running[0][2]).upgrade_instance_id

    w.on_progress = watch
    w.deliver(arm_event(NODEPOOL1))
    assert w.activity_times(names.START_NODE_IMAGE_UPGRADE) == [], "handed over by the update's last poll"
    assert named and all(polling == on_row for polling, on_row in named), named
    assert row_writes.count((names.POLL_OPERATION, True, "nodepool1")) == 1, "the handing poll writes the row once"
    assert after_handing["nodepool1"], "named by the poll that sent its upgrade"
    assert w.pool_state(DEV, "nodepool1").upgrade_instance_id == ""  # ended: nobody polls it

    arm_emulator.faults.arm("POST", r"spot/upgradeNodeImageVersion$", 400, code="BadRequest", message="refused")
    w.deliver(arm_event(DEV.id + "/agentPools/spot"))
    assert w.writes()[-2:] == [("PUT", "agentPools/spot"), ("POST", "spot/upgradeNodeImageVersion")]  # refused
    assert ("outcome", "failed") in w.steps(pool="spot")
    assert after_handing["spot"] == "", "the poll whose upgrade was refused named nobody"
    assert w.pool_state(DEV, "spot").upgrade_instance_id == ""


def test_compliant_pool_gets_no_write(warden):
    w = warden({"default": "Disabled"})
    w.deliver(arm_event(PROD.id + "/agentPools/system"))
    assert w.writes() == []
    assert w.steps(PROD, "system") == [("event", "planned"), ("plan", "skipped")]
    assert w.pool_state(PROD, "system").status is PoolStatus.COMPLIANT


def test_audit_mode_records_drift_and_writes_nothing(warden):
    w = warden({"default": "Disabled"}, mode="audit")
    w.deliver(arm_event(NODEPOOL1))
    assert w.writes() == []
    [event, plan] = w.audit()
    assert event.step == "event" and "reconcile started" in event.message
    assert (plan.step, plan.outcome.value, plan.mode_before, plan.mode_after) == (
        "plan",
        "skipped",
        "LocalUser",
        "Disabled",
    )
    assert plan.message.startswith("drifted: audit mode, nothing written")
    assert w.pool_state(DEV, "nodepool1").status is PoolStatus.DRIFTED


def test_unsupported_and_stopped_pools_get_no_write_and_a_recorded_reason(warden, arm_emulator):
    policy = {
        "default": "Disabled",
        "rules": [
            {"name": "entra", "match": {"pool": "npwin"}, "sshAccess": "EntraId"},
            {"name": "automatic", "match": {"cluster": "aks-auto-*"}, "sshAccess": "EntraId"},
        ],
    }
    w = warden(policy, WARDEN_SUBSCRIPTIONS=f"{SUB_A},{SUB_B}")
    w.deliver(
        arm_event(PROD.id + "/agentPools/npwin"),
        arm_event(DEV.id + "/agentPools/vmpool"),
        arm_event(AUTOMATIC.id + "/agentPools/systempool"),
        arm_event(STOPPED.id + "/agentPools/nodepool1"),
    )
    assert w.writes() == []
    reasons = {
        (cluster.name, pool): next(r.message for r in w.audit(cluster) if r.pool == pool and r.step == "plan")
        for cluster, pool in [(PROD, "npwin"), (DEV, "vmpool"), (AUTOMATIC, "systempool"), (STOPPED, "nodepool1")]
    }
    assert "not supported on Windows" in reasons[("aks-prod-weu", "npwin")]
    assert "VirtualMachineScaleSets" in reasons[("aks-dev-weu", "vmpool")]
    assert "not supported on AKS Automatic" in reasons[("aks-auto-neu", "systempool")]
    assert "cluster is stopped" in reasons[("aks-sandbox-neu", "nodepool1")]


def test_kubernetes_1_37_gets_the_put_and_no_upgrade(warden, arm_emulator):
    w = warden({"default": "Disabled"})
    apps = PROD.id + "/agentPools/apps"
    w.deliver(arm_event(apps))
    assert w.writes() == [("PUT", "agentPools/apps")]
    assert arm_emulator.sshd_states(apps) == {("inactive", "disabled")}  # AKS reimaged at the PUT
    assert w.pool_state(PROD, "apps").pending_reimage is False


def test_a_cluster_write_reconciles_every_pool_one_after_another(warden):
    w = warden(
        {"default": "Disabled", "rules": [{"name": "keep batch", "match": {"pool": "batch"}, "sshAccess": "ignore"}]}
    )
    w.deliver(arm_event(DEV.id, "Microsoft.ContainerService/managedClusters/write"))
    # nodepool1 (LocalUser) and spot (EntraId) drift; batch ignored; vmpool unsupported.
    assert w.writes() == [
        ("PUT", "agentPools/nodepool1"),
        ("POST", "nodepool1/upgradeNodeImageVersion"),
        ("PUT", "agentPools/spot"),
        ("POST", "spot/upgradeNodeImageVersion"),
    ]
    assert not [s for s in w.steps() if s[1] == "retried"]  # never overlapped: no 409 was ever met
    verified = [s.input["pools"] for s in w.functions.durable.statuses() if s.name == names.VERIFY_CLUSTER]
    assert verified == [["nodepool1", "spot"]], "the pools remediated are verified next, together"


def test_a_thousand_copies_of_one_event_give_one_put_and_one_upgrade(warden):
    w = warden({"default": "Disabled"})
    event = arm_event(NODEPOOL1, event_id="same-event")
    w.deliver(*[event] * 1000)
    assert w.writes() == [("PUT", "agentPools/nodepool1"), ("POST", "nodepool1/upgradeNodeImageVersion")]


def test_events_for_two_pools_of_one_cluster_never_overlap(warden):
    w = warden({"default": "Disabled"})
    w.deliver(arm_event(NODEPOOL1), arm_event(DEV.id + "/agentPools/spot"))
    assert w.writes() == [
        ("PUT", "agentPools/nodepool1"),
        ("POST", "nodepool1/upgradeNodeImageVersion"),
        ("PUT", "agentPools/spot"),
        ("POST", "spot/upgradeNodeImageVersion"),
    ]
    assert not [s for s in w.steps() if s[1] == "retried"]


def test_own_writes_start_nothing(warden, arm_emulator):
    w = warden({"default": "Disabled"}, AZURE_CLIENT_ID="11111111-2222-3333-4444-555555555555")
    w.deliver(arm_event(NODEPOOL1, caller_appid="11111111-2222-3333-4444-555555555555"))
    assert arm_emulator.requests == []
    assert w.steps() == [("event", "skipped")]
    assert w.functions.durable.statuses() == []


def test_node_os_schedule_holds_the_upgrade_until_the_window_opens(warden, arm_emulator):
    """A window days away does not hold the cluster's worker: the pool waits pending-reimage, and
    the resync within the hour before the window opens brings the upgrade, inside the window."""
    from datetime import timedelta

    from shared.policy.window import upgrade_gate
    from shared.triggers.resync import resync

    w = warden({"default": "Disabled", "upgrade": {"window": "nodeOSSchedule"}})
    [config] = w.runtime.arm.list_maintenance_configurations(DEV)
    gate = upgrade_gate(dict(config.window), w.clock.now())
    assert not gate.open and gate.opens_at - w.clock.now() > timedelta(hours=1), "the test needs the window far off"
    w.deliver(arm_event(NODEPOOL1))
    assert w.activity_times(names.START_NODE_IMAGE_UPGRADE) == []
    assert ("upgrade-window", "waiting") in w.steps(pool="nodepool1") and ("outcome", "waiting") in w.steps(
        pool="nodepool1"
    )
    assert w.pool_state(DEV, "nodepool1").pending_reimage
    assert arm_emulator.sshd_states(NODEPOOL1) == {("active", "enabled")}, "nodes unchanged until the reimage"

    w.clock.advance_to(gate.opens_at - timedelta(minutes=30))
    w.functions.with_client(lambda client: resync(client, w.runtime))
    w.functions.run()

    def nodepool1(activity: str) -> list:
        return [
            e.at
            for e in w.progress
            if e.kind == "activity" and e.activity == activity and e.payload["pool"] == "nodepool1"
        ]

    [update] = nodepool1(names.START_SSH_UPDATE)
    [upgrade] = nodepool1(names.START_NODE_IMAGE_UPGRADE)
    assert update < gate.opens_at <= upgrade < gate.closes_at
    assert arm_emulator.sshd_states(NODEPOOL1) == {("inactive", "disabled")}


def test_outcomes_are_published_when_an_events_endpoint_is_set(warden, receiver):
    w = warden(
        {"default": "Disabled", "rules": [{"name": "entra", "match": {"pool": "npwin"}, "sshAccess": "EntraId"}]},
        WARDEN_EVENTS_ENDPOINT=receiver.url,
    )
    w.deliver(arm_event(NODEPOOL1), arm_event(PROD.id + "/agentPools/npwin"))
    published = {(e["type"], e["subject"]) for e in receiver.events}
    assert published == {
        ("Warden.SshAccess.Remediated", NODEPOOL1),
        ("Warden.SshAccess.Unsupported", PROD.id + "/agentPools/npwin"),
    }
    remediated = next(e for e in receiver.events if e["type"] == "Warden.SshAccess.Remediated")
    assert (remediated["data"]["modeBefore"], remediated["data"]["modeAfter"]) == ("LocalUser", "Disabled")


def test_a_cloudevents_delivery_is_enforced_too(warden, arm_emulator):
    from tests.warden_fixtures import cloud_event

    w = warden({"default": "Disabled"})
    w.deliver(cloud_event(NODEPOOL1))
    assert w.writes() == [("PUT", "agentPools/nodepool1"), ("POST", "nodepool1/upgradeNodeImageVersion")]


def test_node_os_schedule_without_a_configuration_upgrades_at_once_and_says_so(warden, start_arm_emulator, test_fleet):
    for cluster in test_fleet["clusters"]:
        cluster["maintenanceConfigurations"] = []
    emulator = start_arm_emulator(test_fleet)
    w = warden({"default": "Disabled", "upgrade": {"window": "nodeOSSchedule"}}, emulator=emulator)
    w.deliver(arm_event(NODEPOOL1))
    assert w.writes() == [("PUT", "agentPools/nodepool1"), ("POST", "nodepool1/upgradeNodeImageVersion")]
    [window] = [r for r in w.audit() if r.step == "upgrade-window"]
    assert window.outcome.value == "planned" and "no aksManagedNodeOSUpgradeSchedule" in window.message
