"""The ARM adapter against the local emulator: real SDK clients over real HTTP."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.adapters.arm import Arm
from shared.core.errors import ConflictError, NotFoundError, PermanentError, ThrottledError, TransientError
from shared.core.models import ClusterRef, RunCommandOutput, SshAccess, VmInstance
from tests.emulator_fixtures import SUB_A, SUB_B

DEV = ClusterRef(SUB_A, "rg-dev-weu", "aks-dev-weu")
PROD = ClusterRef(SUB_A, "rg-prod-weu", "aks-prod-weu")


@pytest.fixture
def arm(arm_emulator):
    with Arm(arm_emulator.base_url, local=True, retries=0) as adapter:
        yield adapter


def poll_to_end(arm, operation, subscription=SUB_A, limit=20):
    for _ in range(limit):
        polled = arm.poll_operation(operation, subscription)
        if polled.state.done:
            return polled.state
        operation = polled.operation
    raise AssertionError("operation never finished")


def test_lists_clusters_and_pools_as_plain_models(arm):
    clusters = {c.ref.name: c for c in arm.list_clusters(SUB_B)}
    assert set(clusters) == {"aks-auto-neu", "aks-sandbox-neu"}
    assert clusters["aks-auto-neu"].is_automatic and clusters["aks-sandbox-neu"].is_stopped
    pools = {p.name: p for p in arm.list_pools(DEV)}
    assert pools["nodepool1"].ssh_access is SshAccess.LOCAL_USER  # no securityProfile at all
    assert pools["spot"].ssh_access is SshAccess.ENTRA_ID
    assert pools["vmpool"].type == "VirtualMachines"
    assert arm.get_cluster(DEV).tags["env"] == "dev"


def test_a_paged_pool_list_is_read_to_its_last_page(arm, arm_emulator):
    whole = [p.name for p in arm.list_pools(DEV)]
    sent = len(arm_emulator.requests)
    arm_emulator.aks.page_size = 1
    assert [p.name for p in arm.list_pools(DEV)] == whole and len(whole) > 2
    pages = arm_emulator.requests[sent:]
    assert len(pages) == len(whole) and all("agentPools" in r.path for r in pages)
    assert "$skiptoken" in pages[-1].query and pages[-1].query.get("api-version")


def test_the_json_reads_speak_the_api_version_of_the_sdk_s_models():
    from azure.mgmt.containerservice import ContainerServiceClient

    from shared.adapters.arm import AKS_API_VERSION

    client = ContainerServiceClient(credential=object(), subscription_id=SUB_A)  # its default
    assert client._config.api_version == AKS_API_VERSION
    client.close()


def test_get_is_case_insensitive_on_ids(arm):
    pool = arm.get_pool(ClusterRef(SUB_A, "RG-DEV-WEU", "AKS-DEV-WEU"), "NODEPOOL1")
    assert pool.name == "nodepool1"


def test_set_ssh_access_puts_the_whole_pool_with_one_field_changed(arm, arm_emulator):
    pool_id = DEV.id + "/agentPools/nodepool1"
    before = arm_emulator.pool_body(pool_id)["properties"]
    operation = arm.set_pool_ssh_access(arm.pool_to_write(DEV, "nodepool1"), SshAccess.DISABLED)
    assert operation.kind == "async" and operation.url.startswith(arm_emulator.base_url)
    assert poll_to_end(arm, operation).succeeded
    after = arm_emulator.pool_body(pool_id)["properties"]
    assert after["securityProfile"]["sshAccess"] == "Disabled"
    preserved = {k: v for k, v in before.items() if k not in ("securityProfile", "provisioningState", "eTag")}
    assert {k: after.get(k) for k in preserved} == preserved
    writes = [r for r in arm_emulator.requests if r.method != "GET"]
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in writes] == [("PUT", "nodepool1")]
    assert arm_emulator.sshd_states(pool_id) == {("active", "enabled")}  # nodes keep SSH until a reimage


def test_node_image_upgrade_applies_the_mode_to_the_nodes(arm, arm_emulator):
    pool_id = DEV.id + "/agentPools/nodepool1"
    assert poll_to_end(arm, arm.set_pool_ssh_access(arm.pool_to_write(DEV, "nodepool1"), SshAccess.DISABLED)).succeeded
    assert poll_to_end(arm, arm.start_node_image_upgrade(DEV, "nodepool1")).succeeded
    assert arm_emulator.sshd_states(pool_id) == {("inactive", "disabled")}


def test_errors_are_translated_to_project_classes(arm, arm_emulator):
    with pytest.raises(NotFoundError):
        arm.get_pool(DEV, "nosuchpool")
    arm_emulator.faults.arm(
        "PUT", r"agentPools/nodepool1$", 429, code="Throttled", message="slow down", headers={"Retry-After": "7"}
    )
    with pytest.raises(ThrottledError) as throttled:
        arm.set_pool_ssh_access(arm.pool_to_write(DEV, "nodepool1"), SshAccess.DISABLED)
    assert throttled.value.retry_after == 7 and throttled.value.code == "Throttled"
    arm_emulator.faults.arm("GET", r"agentPools/nodepool1$", 500, code="InternalServerError", message="boom")
    with pytest.raises(TransientError):
        arm.get_pool(DEV, "nodepool1")
    with pytest.raises(PermanentError, match="EntraId"):
        arm.set_pool_ssh_access(arm.pool_to_write(PROD, "npwin"), SshAccess.ENTRA_ID)


def test_a_second_write_during_an_operation_is_a_conflict(arm):
    arm.set_pool_ssh_access(arm.pool_to_write(DEV, "nodepool1"), SshAccess.DISABLED)
    with pytest.raises(ConflictError) as conflict:
        arm.start_node_image_upgrade(DEV, "spot")
    assert conflict.value.code == "OperationNotAllowed" and "aka.ms/aks-pending-operation" in conflict.value.message


def test_failed_operation_reports_arm_error(arm, arm_emulator):
    arm_emulator.faults.fail_operation(r"nodepool1", code="ReimageFailed", message="node 0 did not come back")
    state = poll_to_end(arm, arm.start_node_image_upgrade(DEV, "nodepool1"))
    assert (state.status, state.error_code, state.error_message) == (
        "Failed",
        "ReimageFailed",
        "node 0 did not come back",
    )


def test_maintenance_configuration_and_node_scale_set(arm):
    [config] = arm.list_maintenance_configurations(DEV)
    assert config.name == "aksManagedNodeOSUpgradeSchedule" and "schedule" in config.window
    cluster = arm.get_cluster(DEV)
    vmss = arm.find_pool_vmss(cluster, "nodepool1")
    assert vmss is not None and vmss.resource_group == cluster.node_resource_group
    assert arm.find_pool_vmss(cluster, "vmpool") is None  # VirtualMachines pools have no scale set
    instances = arm.list_instances(vmss)
    assert instances == [VmInstance(str(i), "running") for i in range(3)]
    polled = arm.start_run_command(
        vmss, instances[0].instance_id, ["systemctl is-active ssh; systemctl is-enabled ssh"]
    )
    for _ in range(10):
        if polled.output is not None:
            break
        polled = arm.run_command_output(polled.operation, SUB_A)
    assert polled.output == RunCommandOutput("active\nenabled\n", "")


def test_pool_scale_sets_come_from_one_list_and_ignore_foreign_vmss(arm, arm_emulator):
    cluster = arm.get_cluster(DEV)
    arm_emulator.clear_requests()
    scale_sets = arm.list_pool_scale_sets(cluster)
    assert sorted(scale_sets) == ["batch", "nodepool1", "spot"]  # vmpool is VirtualMachines: no VMSS
    assert {v.pool for v in scale_sets.values()} == {"batch", "nodepool1", "spot"}
    assert [r.path.rsplit("/", 1)[-1] for r in arm_emulator.requests] == ["virtualMachineScaleSets"]


def test_list_instances_reads_the_power_state_from_the_instance_view(arm, arm_emulator):
    cluster = arm.get_cluster(DEV)
    vmss = arm.find_pool_vmss(cluster, "spot")
    arm_emulator.set_node_power_state(f"{DEV.id}/agentPools/spot", "1", "deallocated")
    arm_emulator.clear_requests()
    assert arm.list_instances(vmss) == [
        VmInstance("0", "running"),
        VmInstance("1", "deallocated"),
        VmInstance("2", "running"),
    ]
    assert arm_emulator.requests[0].query.get("$expand") == "instanceView"


def test_connection_failure_is_transient():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Arm(f"http://127.0.0.1:{port}", local=True, retries=0) as closed, pytest.raises(TransientError) as failed:
        closed.get_cluster(DEV)
    assert failed.value.retryable and failed.value.code == "ConnectionError"


@pytest.mark.parametrize("kind", ["aks", "compute"])
def test_threads_asking_at_once_share_one_client_per_subscription(arm, kind):
    """Eight threads ask for the same subscription's client at the same moment: without the
    lock several would each build one (and all but the last would leak)."""
    start = threading.Barrier(8, timeout=5)

    def client(_):
        start.wait()
        return getattr(arm, kind)(SUB_A)

    with ThreadPoolExecutor(max_workers=8) as pool:
        clients = list(pool.map(client, range(8)))
    assert len({id(c) for c in clients}) == 1
    assert clients[0] is getattr(arm, kind)(SUB_A) and getattr(arm, kind)(SUB_B) is not clients[0]


def test_the_put_sends_the_body_last_read_without_a_new_get_and_an_outdated_one_is_refused(arm, arm_emulator):
    """The pool read by the plan (list or GET) is the PUT's body: no second GET. If the pool
    changed since, its ETag makes ARM refuse the PUT (412) and the next attempt reads it anew."""
    pool_id = DEV.id + "/agentPools/nodepool1"
    arm.get_pool(DEV, "nodepool1")
    sent = len(arm_emulator.requests)
    assert poll_to_end(arm, arm.set_pool_ssh_access(arm.pool_to_write(DEV, "nodepool1"), SshAccess.ENTRA_ID)).succeeded
    assert [r.method for r in arm_emulator.requests[sent:]][0] == "PUT", "no GET before the PUT"

    arm.list_pools(DEV)  # the body as listed now...
    other = Arm(arm_emulator.base_url, local=True, retries=0)  # ...then someone else writes the pool
    assert poll_to_end(
        other, other.set_pool_ssh_access(other.pool_to_write(DEV, "nodepool1"), SshAccess.LOCAL_USER)
    ).succeeded
    other.close()
    with pytest.raises(ConflictError):  # 412: the ETag of what this adapter read is outdated
        arm.set_pool_ssh_access(arm.pool_to_write(DEV, "nodepool1"), SshAccess.DISABLED)
    assert arm_emulator.pool_body(pool_id)["properties"]["securityProfile"]["sshAccess"] == "LocalUser"
    sent = len(arm_emulator.requests)
    assert poll_to_end(arm, arm.set_pool_ssh_access(arm.pool_to_write(DEV, "nodepool1"), SshAccess.DISABLED)).succeeded
    assert [r.method for r in arm_emulator.requests[sent:]][:2] == ["GET", "PUT"], "read anew after the refusal"
    assert arm_emulator.pool_body(pool_id)["properties"]["securityProfile"]["sshAccess"] == "Disabled"


def test_a_put_on_the_etag_its_plan_read_refuses_a_pool_changed_since_without_sending(arm, arm_emulator):
    """`etag`: the ETag as the plan read it. A pool that changed since (another writer, or this
    step's own earlier attempt) is refused as ARM would (412), before the re-check and the PUT."""
    planned = arm.get_pool(DEV, "nodepool1")
    assert planned.etag, "the pool's properties.eTag is read"
    other = Arm(arm_emulator.base_url, local=True, retries=0)
    assert poll_to_end(
        other, other.set_pool_ssh_access(other.pool_to_write(DEV, "nodepool1"), SshAccess.ENTRA_ID)
    ).succeeded
    other.close()
    later = Arm(arm_emulator.base_url, local=True, retries=0)  # the step runs where the plan's body is not at hand
    sent, checked = len(arm_emulator.requests), []
    with pytest.raises(ConflictError) as refused:
        checked.append(later.pool_to_write(DEV, "nodepool1", etag=planned.etag))
    assert refused.value.status == 412 and checked == []
    assert [r.method for r in arm_emulator.requests[sent:]] == ["GET"], "read, found changed, nothing sent"
    now = later.get_pool(DEV, "nodepool1")
    assert now.etag != planned.etag
    assert poll_to_end(
        later, later.set_pool_ssh_access(later.pool_to_write(DEV, "nodepool1", etag=now.etag), SshAccess.DISABLED)
    ).succeeded
    later.close()


def test_only_a_recent_body_with_an_etag_is_reused():
    from shared.adapters.pool_bodies import PoolBodies

    now = [100.0]
    bodies = PoolBodies(clock=lambda: now[0])
    pool = lambda name, etag: {"name": name, "properties": {"eTag": etag} if etag else {}}  # noqa: E731
    bodies.keep(DEV, pool("a", "1"))
    bodies.keep(DEV, pool("b", None))
    bodies.keep(DEV, pool("c", "3"))
    assert bodies.take(DEV, "A")["name"] == "a"  # case-insensitive, and handed out once
    assert bodies.take(DEV, "a") is None
    assert bodies.take(DEV, "b") is None, "no ETag: the PUT would be unguarded, so it GETs"
    now[0] += PoolBodies.MAX_AGE_SECONDS + 1
    assert bodies.take(DEV, "c") is None, "too old: a GET is cheaper than a refused PUT"
