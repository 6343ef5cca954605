"""Reading a node's sshd state and judging it against its pool's mode. Pure, on real texts."""

import json
from pathlib import Path

import pytest

from shared.core.models import SshAccess
from shared.evidence.sshd import (
    LINUX_SCRIPT,
    WINDOWS_SCRIPT,
    SshdState,
    Verdict,
    judge,
    parse_output,
    parse_status,
    script_for,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
D, L, E = SshAccess.DISABLED, SshAccess.LOCAL_USER, SshAccess.ENTRA_ID


def linux(ssh=("inactive", "disabled"), sshd=("inactive", "alias"), pubkey="yes", done=True, stderr_units=()):
    """Our script's stdout as a node prints it; a unit in `stderr_units` does not exist (empty is-enabled)."""
    lines = []
    for unit, (active, enabled) in (("ssh", ssh), ("sshd", sshd)):
        lines += [f"== {unit} is-active", active, f"== {unit} is-enabled"]
        if unit not in stderr_units:
            lines.append(enabled)
    lines += ["== pubkeyauthentication"] + ([f"pubkeyauthentication {pubkey}"] if pubkey else [])
    return "\n".join(lines + (["== done"] if done else [])) + "\n"


def windows(status=None):
    block = ["", "Name      : sshd", f"Status    : {status}", "StartType : Automatic", ""] if status else []
    return "\n".join(["== sshd service", *block, "== done"]) + "\n"


UBUNTU_ON = linux(("active", "enabled"), ("active", "alias"))
AZURE_LINUX_ON = linux(("inactive", ""), ("active", "enabled"), stderr_units=("ssh",))
AZURE_LINUX_OFF = linux(("inactive", ""), ("inactive", "disabled"), stderr_units=("ssh",))

CASES = {
    "ubuntu-disabled-ok": (D, linux(), Verdict.OK, "stopped and disabled"),
    "ubuntu-disabled-but-running": (D, UBUNTU_ON, Verdict.DRIFT, "sshd is running"),
    "ubuntu-disabled-stopped-but-enabled": (D, linux(("inactive", "enabled")), Verdict.DRIFT, "start at boot"),
    "ubuntu-localuser-ok": (L, UBUNTU_ON, Verdict.OK, "pubkeyauthentication yes"),
    "ubuntu-localuser-not-running": (L, linux(), Verdict.DRIFT, "not running"),
    "ubuntu-localuser-keys-refused": (L, linux(("active", "enabled"), pubkey="no"), Verdict.DRIFT, "refused"),
    "ubuntu-entraid-keys-refused-ok": (
        E,
        linux(("active", "enabled"), pubkey="no"),
        Verdict.OK,
        "pubkeyauthentication no",
    ),
    "ubuntu-entraid-keys-allowed": (E, UBUNTU_ON, Verdict.DRIFT, "public keys are allowed"),
    "azure-linux-disabled-ok": (D, AZURE_LINUX_OFF, Verdict.OK, "stopped and disabled"),
    "azure-linux-localuser-ok": (L, AZURE_LINUX_ON, Verdict.OK, "runs"),
    "azure-linux-entraid-ok": (
        E,
        linux(("inactive", ""), ("active", "enabled"), "no", stderr_units=("ssh",)),
        Verdict.OK,
        "no",
    ),
    "azure-linux-disabled-but-running": (D, AZURE_LINUX_ON, Verdict.DRIFT, "sshd is running"),
    "windows-localuser-ok": (L, windows("Running"), Verdict.OK, "sshd Running"),
    "windows-disabled-ok": (D, windows(), Verdict.OK, "no sshd service"),
    "windows-disabled-but-running": (D, windows("Running"), Verdict.DRIFT, "running"),
    "windows-localuser-absent": (L, windows(), Verdict.DRIFT, "not running"),
    "cut-off-output": (D, linux(done=False), Verdict.UNKNOWN, "cut off"),
    "no-pubkey-line": (L, linux(("active", "enabled"), pubkey=None), Verdict.UNKNOWN, "did not say"),
    "garbage": (D, "Enable succeeded\n== done\n", Verdict.UNKNOWN, "whether sshd runs"),
    "empty": (L, "", Verdict.UNKNOWN, "cut off"),
}


@pytest.mark.parametrize(("mode", "stdout", "verdict", "reason"), CASES.values(), ids=CASES.keys())
def test_verdicts(mode, stdout, verdict, reason):
    got, why = judge(mode, parse_output(stdout))
    assert got is verdict, why
    assert reason in why


def test_the_scripts_ask_both_unit_names_and_the_effective_setting():
    text = "\n".join(LINUX_SCRIPT)
    for needle in ("systemctl is-active ssh", "systemctl is-active sshd", "systemctl is-enabled sshd", "sshd -T"):
        assert needle in text
    assert script_for("Linux") == ("RunShellScript", LINUX_SCRIPT)
    assert script_for("Windows") == ("RunPowerShellScript", WINDOWS_SCRIPT)
    assert "Get-Service -Name sshd" in "\n".join(WINDOWS_SCRIPT)


@pytest.mark.parametrize(
    ("fixture", "mode", "verdict"),
    [
        ("docs_systemctl_status_ssh_disabled.txt", D, Verdict.OK),
        ("docs_systemctl_status_ssh_enabled.txt", D, Verdict.DRIFT),
    ],
    ids=["disabled", "enabled"],
)
def test_the_systemctl_status_texts_of_the_aks_guide(fixture, mode, verdict):
    state = parse_status((FIXTURES / fixture).read_text(encoding="utf-8"))
    assert judge(mode, state)[0] is verdict


def test_the_run_command_json_of_the_aks_guide():
    message = json.loads((FIXTURES / "docs_az_vmss_run-command_invoke_systemctl_status_ssh_disabled.json").read_text())[
        "value"
    ][0]["message"]
    stdout = message.split("[stdout]\n", 1)[1].split("\n[stderr]", 1)[0]
    state = parse_status(stdout)
    assert state.units == {"ssh": ("inactive", "disabled")}
    assert judge(D, state) == (
        Verdict.OK,
        "sshd is stopped and disabled (ssh inactive/disabled, pubkeyauthentication ?)",
    )


@pytest.mark.parametrize(
    ("verdicts", "worst"),
    [((), Verdict.UNKNOWN), ((Verdict.OK,), Verdict.OK), ((Verdict.OK, Verdict.UNKNOWN), Verdict.UNKNOWN)]
    + [((Verdict.UNKNOWN, Verdict.DRIFT, Verdict.OK), Verdict.DRIFT)],
    ids=["none", "ok", "unknown", "drift"],
)
def test_a_pool_has_its_worst_node_verdict(verdicts, worst):
    assert Verdict.worst(verdicts) is worst


def test_never_ok_by_default():
    assert judge(D, SshdState())[0] is Verdict.UNKNOWN
    assert judge(L, SshdState(complete=True))[0] is Verdict.UNKNOWN


KEY = "SHA256:nCQFpgve2vwZse2HUzilyty7p9bi9hX8602cJF0moow"
OTHER = "SHA256:3odXCWzk+QEKW73cHiyqKR7okZyA7MTj7ogNyDqlnCs"


def with_keys(stdout: str, *fingerprints: str) -> str:
    lines = [f"3072 {fp} azureuser (RSA)" for fp in fingerprints]
    return stdout.replace("== done", "\n".join(["== authorized keys", *lines, "== done"]))


@pytest.mark.parametrize(
    ("stdout", "verdict", "reason"),
    [
        (with_keys(UBUNTU_ON, KEY), Verdict.OK, "holds the cluster's key"),
        (with_keys(UBUNTU_ON, OTHER), Verdict.DRIFT, f"does not hold the cluster's key {KEY}"),
        (with_keys(UBUNTU_ON), Verdict.DRIFT, "it holds: none"),
        (UBUNTU_ON, Verdict.OK, "pubkeyauthentication yes"),  # an answer without the keys section
    ],
    ids=["holds-it", "holds-another", "holds-none", "not-asked"],
)
def test_a_local_user_node_must_hold_the_cluster_key(stdout, verdict, reason):
    got, why = judge(L, parse_output(stdout), KEY)
    assert got is verdict and reason in why


def test_the_key_matters_only_where_keys_log_in():
    assert judge(E, parse_output(with_keys(linux(("active", "enabled"), pubkey="no"), OTHER)), KEY)[0] is Verdict.OK
    assert judge(D, parse_output(with_keys(linux(), OTHER)), KEY)[0] is Verdict.OK
    assert "cat /home/*/.ssh/authorized_keys" in "\n".join(LINUX_SCRIPT)
