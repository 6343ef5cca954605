"""The warden's real node check (shared.evidence.sshd scripts, parse_output, judge) through the real ARM
adapter over HTTP to the emulator: run-command on VMSS instances of Ubuntu, Azure Linux and
Windows pools in each SSH mode, drift behind AKS's back, and the ways a check cannot conclude."""

from __future__ import annotations

import pytest

from shared.adapters.arm import RUN_SHELL_SCRIPT, Arm
from shared.core.errors import ConflictError, OperationFailedError, ThrottledError
from shared.core.models import ClusterRef, RunCommandOutput, RunCommandPoll, VmInstance
from shared.evidence.sshd import SshdState, Verdict, judge, parse_output, script_for
from tests.emulator_fixtures import SUB_A

REF = ClusterRef(SUB_A, "rg-checks", "aks-checks")
NODE_RG = "MC_rg-checks_aks-checks_westeurope"
POOLS = {  # name: (osType, osSKU, sshAccess)
    "ubdis": ("Linux", "Ubuntu", "Disabled"),
    "ubnew": ("Linux", None, "Disabled"),  # set to Disabled, not reimaged yet: nodes still run sshd
    "ubloc": ("Linux", "Ubuntu", "LocalUser"),
    "ubentra": ("Linux", "Ubuntu", "EntraId"),
    "azdis": ("Linux", "AzureLinux", "Disabled"),
    "azloc": ("Linux", "CBLMariner", "LocalUser"),
    "azentra": ("Linux", "AzureLinux3", "EntraId"),
    "winon": ("Windows", "Windows2022", "LocalUser"),
    "winoff": ("Windows", "Windows2025", "Disabled"),
}
NOT_REIMAGED = {"ubnew": [{"instanceId": "0", "active": "active", "enabled": "enabled"}]}


def fleet() -> dict:
    pools = []
    for name, (os_type, sku, mode) in POOLS.items():
        props = {"count": 2, "osType": os_type, "orchestratorVersion": "1.33.5", "securityProfile": {"sshAccess": mode}}
        if sku:
            props["osSKU"] = sku
        pools.append(
            {
                "agentPool": {"name": name, "properties": props},
                **({"nodes": NOT_REIMAGED[name]} if name in NOT_REIMAGED else {}),
            }
        )
    cluster = {
        "id": REF.id,
        "name": REF.name,
        "location": "westeurope",
        "properties": {"kubernetesVersion": "1.33.5", "nodeResourceGroup": NODE_RG},
    }
    return {"clusters": [{"managedCluster": cluster, "agentPools": pools}]}


@pytest.fixture
def emulator(start_arm_emulator):
    return start_arm_emulator(fleet())


@pytest.fixture
def arm(emulator):
    with Arm(emulator.base_url, local=True, retries=0) as adapter:
        yield adapter


def pool_id(name: str) -> str:
    return f"{REF.id}/agentPools/{name}"


def start(arm: Arm, pool: str, instance: str = "0", command_id: str | None = None) -> RunCommandPoll:
    """Start the warden's check on a node, as verification does: the script for the pool's OS."""
    found = arm.get_pool(REF, pool)
    vmss = arm.list_pool_scale_sets(arm.get_cluster(REF))[pool]
    default_id, script = script_for(found.os_type)
    return arm.start_run_command(vmss, instance, list(script), command_id or default_id)


def finish(arm: Arm, polled: RunCommandPoll) -> RunCommandOutput:
    for _ in range(10):
        if polled.output is not None:
            return polled.output
        polled = arm.run_command_output(polled.operation, SUB_A)
    raise AssertionError("the run-command never finished")


def check(arm: Arm, pool: str, instance: str = "0") -> tuple[Verdict, str, SshdState, RunCommandOutput]:
    output = finish(arm, start(arm, pool, instance))
    state = parse_output(output.stdout)
    return *judge(arm.get_pool(REF, pool).ssh_access, state), state, output


# --- verdicts ---

SSH_BACK = {"active": "active", "enabled": "enabled"}


@pytest.mark.parametrize(
    ("pool", "drift", "verdict", "fragment"),
    [
        ("ubdis", None, Verdict.OK, "ssh inactive/disabled, sshd inactive/-"),
        ("ubnew", None, Verdict.DRIFT, "sshd is running (ssh active/enabled, sshd active/alias"),
        ("ubdis", SSH_BACK, Verdict.DRIFT, "sshd is running"),  # SSH came back after an update
        ("ubdis", {"active": "inactive", "enabled": "enabled"}, Verdict.DRIFT, "stopped but enabled"),
        ("ubloc", None, Verdict.OK, "pubkeyauthentication yes"),
        ("ubloc", {"active": "inactive"}, Verdict.DRIFT, "sshd is not running"),
        ("ubentra", None, Verdict.OK, "pubkeyauthentication no"),
        ("ubentra", {"pubkey": "yes"}, Verdict.DRIFT, "public keys are allowed"),
        ("azdis", None, Verdict.OK, "ssh inactive/-, sshd inactive/disabled"),
        ("azdis", SSH_BACK, Verdict.DRIFT, "sshd active/enabled"),
        ("azloc", None, Verdict.OK, "ssh inactive/-, sshd active/enabled, pubkeyauthentication yes"),
        ("azentra", None, Verdict.OK, "sshd active/enabled, pubkeyauthentication no"),
        ("azentra", {"pubkey": "yes"}, Verdict.DRIFT, "EntraId wants pubkeyauthentication no"),
        ("winon", None, Verdict.OK, "sshd Running, start Automatic"),
        ("winoff", None, Verdict.OK, "no sshd service"),
        ("winoff", SSH_BACK, Verdict.DRIFT, "sshd Running, start Automatic"),
    ],
    ids=[
        "ubuntu-disabled",
        "ubuntu-disabled-not-reimaged",
        "ubuntu-disabled-ssh-came-back",
        "ubuntu-disabled-stopped-but-enabled",
        "ubuntu-localuser",
        "ubuntu-localuser-stopped",
        "ubuntu-entraid-keys-refused",
        "ubuntu-entraid-keys-allowed",
        "azurelinux-disabled",
        "azurelinux-disabled-ssh-came-back",
        "azurelinux-localuser",
        "azurelinux-entraid-keys-refused",
        "azurelinux-entraid-keys-allowed",
        "windows-localuser",
        "windows-disabled",
        "windows-disabled-but-running",
    ],
)
def test_verdicts_of_the_real_check_on_emulated_nodes(arm, emulator, pool, drift, verdict, fragment):
    if drift:
        emulator.set_node_sshd(pool_id(pool), "0", **drift)
    got, reason, state, _ = check(arm, pool)
    assert got is verdict, reason
    assert state.complete and fragment in reason


@pytest.mark.parametrize(
    ("pool", "stderr"),
    [
        ("ubloc", ""),
        ("ubdis", "Failed to get unit file state for sshd.service: No such file or directory\n"),  # no alias
        ("azloc", "Failed to get unit file state for ssh.service: No such file or directory\n"),
        ("winoff", ""),  # -ErrorAction SilentlyContinue
    ],
    ids=["ubuntu-enabled", "ubuntu-disabled", "azurelinux", "windows-absent-service"],
)
def test_the_check_s_stderr_is_what_systemctl_says_of_a_missing_unit(arm, pool, stderr):
    assert check(arm, pool)[3].stderr == stderr


def test_a_reimage_undoes_drift_on_the_nodes(arm, emulator):
    emulator.set_node_sshd(pool_id("ubentra"), None, pubkey="yes")
    assert check(arm, "ubentra", "1")[0] is Verdict.DRIFT
    operation = arm.start_node_image_upgrade(REF, "ubentra")
    while not (polled := arm.poll_operation(operation, SUB_A)).state.done:
        operation = polled.operation
    assert polled.state.succeeded
    assert [check(arm, "ubentra", i)[0] for i in ("0", "1")] == [Verdict.OK, Verdict.OK]


# --- checks that cannot conclude ---


@pytest.mark.parametrize(
    ("stdout", "fragment"),
    [
        ("== ssh is-active\nact", "cut off"),
        ("\x00\x1b[2J garbage \ufffd", "cut off"),
        ("", "cut off"),
        ("== ssh is-active\n== done\n", "does not say whether sshd runs"),
    ],
    ids=["cut", "garbled", "empty", "sections-missing"],
)
def test_garbled_or_cut_output_is_unknown(arm, emulator, stdout, fragment):
    emulator.override_node_output(pool_id("ubloc"), "0", stdout)
    verdict, reason, _, output = check(arm, "ubloc")
    assert (verdict, output.stdout) == (Verdict.UNKNOWN, stdout) and fragment in reason


def test_the_real_output_cut_anywhere_is_never_ok(arm, emulator):
    full = check(arm, "ubdis")[3].stdout
    assert judge(arm.get_pool(REF, "ubdis").ssh_access, parse_output(full))[0] is Verdict.OK
    for cut in range(len(full) - len("== done\n") + 1):
        assert judge(arm.get_pool(REF, "ubdis").ssh_access, parse_output(full[:cut]))[0] is Verdict.UNKNOWN, cut


def test_a_failing_run_command_operation_surfaces_its_error(arm, emulator):
    emulator.faults.fail_operation(
        r"/virtualMachines/0/runCommand$",
        "VMExtensionProvisioningError",
        "VM has reported a failure when processing extension 'RunCommandLinux'.",
    )
    operation = start(arm, "ubloc")
    with pytest.raises(OperationFailedError) as failed:  # the status body says Failed, with the error
        finish(arm, operation)
    assert failed.value.code == "VMExtensionProvisioningError" and "RunCommandLinux" in failed.value.message
    assert check(arm, "ubloc")[0] is Verdict.OK  # the VM is free again, the fault was used up


def test_a_second_run_command_on_a_busy_vm_is_a_conflict_until_the_first_ends(arm, emulator):
    first = start(arm, "azloc", "1")
    with pytest.raises(ConflictError) as conflict:
        start(arm, "azloc", "1")
    assert (conflict.value.code, conflict.value.message) == (
        "Conflict",
        "Run command extension execution is in progress. Please wait for completion before invoking a run command.",
    )
    assert check(arm, "azloc", "0")[0] is Verdict.OK  # another VM of the same scale set is free
    assert parse_output(finish(arm, first).stdout).complete
    assert check(arm, "azloc", "1")[0] is Verdict.OK


def test_a_deallocated_vm_shows_in_the_list_and_refuses_run_command(arm, emulator):
    emulator.set_node_power_state(pool_id("winon"), "1", "deallocated")
    vmss = arm.list_pool_scale_sets(arm.get_cluster(REF))["winon"]
    assert arm.list_instances(vmss) == [VmInstance("0", "running"), VmInstance("1", "deallocated")]
    with pytest.raises(ConflictError) as refused:
        start(arm, "winon", "1")
    assert (refused.value.code, refused.value.message) == (
        "OperationNotAllowed",
        "The operation requires the VM to be running (or set to run).",
    )
    assert emulator.run_command_log == []


def test_the_command_must_be_the_one_of_the_node_s_os(arm):
    with pytest.raises(ConflictError) as refused:
        start(arm, "winoff", "0", command_id=RUN_SHELL_SCRIPT)
    assert refused.value.message == "Run command OS type 'Linux' does not match the target OS Windows."


def test_a_throttled_run_command_says_when_to_retry(arm, emulator):
    emulator.faults.arm(
        "POST", r"/runCommand$", 429, code="TooManyRequests", message="slow down", headers={"Retry-After": "17"}
    )
    with pytest.raises(ThrottledError) as throttled:
        start(arm, "ubloc")
    assert throttled.value.retry_after == 17
