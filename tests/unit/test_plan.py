"""The planner: statuses, reasons, AKS limitations, and that applying a plan converges."""

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.models import Cluster, ClusterRef, Pool, SshAccess
from shared.policy import parse_policy
from shared.policy.plan import Status, Step, apply_plan, plan_pool

REF = ClusterRef("11111111-1111-1111-1111-111111111111", "rg", "aks")
RUNNING = Cluster(REF, kubernetes_version="1.33.2")


def policy(mode):
    return parse_policy({"default": mode})


def linux(mode=SshAccess.LOCAL_USER, **changes):
    return replace(Pool(REF, "np", ssh_access=mode, orchestrator_version="1.33.2"), **changes)


@pytest.mark.parametrize(
    ("cluster", "pool", "mode", "status", "steps", "reason"),
    [
        (
            RUNNING,
            linux(),
            "Disabled",
            Status.DRIFTED,
            (Step.UPDATE_SSH_ACCESS, Step.UPGRADE_NODE_IMAGE),
            "LocalUser -> Disabled",
        ),
        (RUNNING, linux(SshAccess.DISABLED), "disabled", Status.COMPLIANT, (), "default: Disabled"),
        (RUNNING, linux(), "ignore", Status.IGNORED, (), "says ignore"),
        (RUNNING, linux(os_type="Windows"), "EntraId", Status.UNSUPPORTED, (), "not supported on Windows"),
        (replace(RUNNING, sku_name="Automatic"), linux(), "EntraId", Status.UNSUPPORTED, (), "AKS Automatic"),
        (RUNNING, linux(type="VirtualMachines"), "Disabled", Status.UNSUPPORTED, (), "type 'VirtualMachines'"),
        (
            RUNNING,
            linux(type="VirtualMachines"),
            "EntraId",
            Status.DRIFTED,
            (Step.UPDATE_SSH_ACCESS, Step.UPGRADE_NODE_IMAGE),
            "-> EntraId",
        ),
        (
            RUNNING,
            linux(os_type="Windows"),
            "Disabled",
            Status.DRIFTED,
            (Step.UPDATE_SSH_ACCESS, Step.UPGRADE_NODE_IMAGE),
            "-> Disabled",
        ),
        (replace(RUNNING, power_state="Stopped"), linux(), "Disabled", Status.DRIFTED, (), "cluster is stopped"),
        (
            RUNNING,
            linux(orchestrator_version="1.37.0"),
            "Disabled",
            Status.DRIFTED,
            (Step.UPDATE_SSH_ACCESS,),
            "reimages the nodes",
        ),
    ],
    ids=[
        "drifted",
        "compliant-case-insensitive",
        "ignored",
        "entra-windows",
        "entra-automatic",
        "disabled-non-vmss",
        "entra-non-vmss-ok",
        "disabled-windows-ok",
        "stopped",
        "k8s-1.37-no-upgrade",
    ],
)
def test_plan_pool(cluster, pool, mode, status, steps, reason):
    plan = plan_pool(cluster, pool, policy(mode))
    assert (plan.status, plan.steps) == (status, steps)
    assert reason in plan.reason


def test_pending_reimage_plans_only_the_upgrade():
    plan = plan_pool(RUNNING, linux(SshAccess.DISABLED), policy("Disabled"), pending_reimage=True)
    assert (plan.status, plan.steps) == (Status.PENDING_REIMAGE, (Step.UPGRADE_NODE_IMAGE,))


clusters = st.builds(
    Cluster,
    st.just(REF),
    sku_name=st.sampled_from(["Base", "Automatic"]),
    power_state=st.sampled_from(["Running", "Stopped"]),
)
pools = st.builds(
    Pool,
    st.just(REF),
    st.sampled_from(["np", "sys"]),
    os_type=st.sampled_from(["Linux", "Windows"]),
    type=st.sampled_from(["VirtualMachineScaleSets", "VirtualMachines", "AvailabilitySet"]),
    ssh_access=st.sampled_from(list(SshAccess)),
    orchestrator_version=st.sampled_from(["1.32.1", "1.36.9", "1.37.0", ""]),
)
modes = st.sampled_from(["Disabled", "EntraId", "LocalUser", "ignore"])


@given(clusters, pools, modes, st.booleans())
def test_applying_a_plan_leaves_nothing_to_do(cluster, pool, mode, pending):
    running = replace(cluster, power_state="Running")
    plan = plan_pool(running, pool, policy(mode), pending_reimage=pending)
    again = plan_pool(running, apply_plan(plan), policy(mode))
    assert again.steps == ()
    assert again.status in (Status.COMPLIANT, Status.IGNORED, Status.UNSUPPORTED)


@given(clusters, pools, modes, st.booleans())
def test_no_writes_are_planned_where_aks_cannot_take_them(cluster, pool, mode, pending):
    plan = plan_pool(cluster, pool, policy(mode), pending_reimage=pending)
    if cluster.is_stopped or plan.status in (Status.UNSUPPORTED, Status.IGNORED, Status.COMPLIANT):
        assert Step.UPDATE_SSH_ACCESS not in plan.steps
    if plan.desired is SshAccess.ENTRA_ID and (pool.os_type == "Windows" or cluster.is_automatic):
        assert plan.status is Status.UNSUPPORTED
    if plan.desired is SshAccess.DISABLED and pool.type != "VirtualMachineScaleSets":
        assert plan.status is Status.UNSUPPORTED


@pytest.mark.parametrize(
    ("mode", "status", "reason"),
    [
        ("Disabled", Status.UNSUPPORTED, "always allow local users"),
        ("EntraId", Status.UNSUPPORTED, "AKSNodeClass has no SSH setting"),
        ("LocalUser", Status.COMPLIANT, "default: LocalUser"),
        ("ignore", Status.IGNORED, "says ignore"),
    ],
    ids=["disabled", "entraid", "localuser", "ignore"],
)
def test_auto_provisioned_nodes_are_local_user_and_never_written(mode, status, reason):
    from shared.policy.plan import auto_provisioned_nodes

    auto = auto_provisioned_nodes(replace(RUNNING, node_provisioning_mode="Auto"))
    plan = plan_pool(RUNNING, auto, policy(mode))
    assert (plan.status, plan.steps) == (status, ())
    assert reason in plan.reason
    assert auto_provisioned_nodes(RUNNING) is None


def test_the_node_provisioning_mode_is_read_from_arm():
    from shared.adapters.arm_parse import cluster_from_arm

    body = {"id": REF.id, "properties": {"nodeProvisioningProfile": {"mode": "Auto"}}}
    assert cluster_from_arm(body).node_provisioning_mode == "Auto"
    assert cluster_from_arm({"id": REF.id, "properties": {}}).node_provisioning_mode == "Manual"  # the API's default
