"""The emulator's node shells: what bash (RunShellScript) and PowerShell (RunPowerShellScript)
print on a node, per OS and sshd state, as the real commands do."""

from __future__ import annotations

import pytest

from shared.local.arm_emulator.node_shell import run_bash, run_powershell, split_unquoted, windows_service
from shared.local.arm_emulator.state import AZURE_LINUX, UBUNTU, Node, fresh_node

SCRIPT = "/var/lib/waagent/run-command/download/0/script.sh"
NOT_FOUND = "Failed to get unit file state for {}: No such file or directory\n"


def node(mode: str = "localuser", **changes) -> Node:
    fresh = fresh_node("0", mode)
    for name, value in changes.items():
        setattr(fresh, name, value)
    return fresh


@pytest.mark.parametrize(
    ("os", "mode", "command", "stdout", "stderr"),
    [
        (UBUNTU, "localuser", "systemctl is-active ssh", "active\n", ""),
        (UBUNTU, "localuser", "systemctl is-enabled ssh", "enabled\n", ""),
        (UBUNTU, "localuser", "systemctl is-active sshd", "active\n", ""),
        (UBUNTU, "localuser", "systemctl is-enabled sshd", "alias\n", ""),
        (UBUNTU, "localuser", "sudo systemctl is-enabled sshd.service", "alias\n", ""),
        (UBUNTU, "disabled", "systemctl is-active ssh", "inactive\n", ""),
        (UBUNTU, "disabled", "systemctl is-enabled ssh.service", "disabled\n", ""),
        (UBUNTU, "disabled", "systemctl is-active sshd", "inactive\n", ""),
        (UBUNTU, "disabled", "systemctl is-enabled sshd", "", NOT_FOUND.format("sshd.service")),
        (UBUNTU, "disabled", "systemctl status sshd", "", "Unit sshd.service could not be found.\n"),
        (AZURE_LINUX, "localuser", "systemctl is-active ssh", "inactive\n", ""),
        (AZURE_LINUX, "localuser", "systemctl is-enabled ssh", "", NOT_FOUND.format("ssh.service")),
        (AZURE_LINUX, "localuser", "systemctl is-active sshd", "active\n", ""),
        (AZURE_LINUX, "localuser", "systemctl is-enabled sshd", "enabled\n", ""),
        (AZURE_LINUX, "disabled", "systemctl is-enabled sshd", "disabled\n", ""),
        (AZURE_LINUX, "entraid", "systemctl --quiet is-active sshd", "", ""),
        (UBUNTU, "localuser", "systemctl is-active kubelet.socket", "inactive\n", ""),
        (UBUNTU, "localuser", "systemctl is-active", "", "Too few arguments.\n"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None,
)
def test_systemctl_answers_per_os_unit_names(os, mode, command, stdout, stderr):
    assert run_bash([command], node(mode), os) == (stdout, stderr)


def test_systemctl_status_is_the_documented_text_on_ubuntu_and_names_sshd_on_azure_linux():
    ubuntu, _ = run_bash(["systemctl status ssh"], node("disabled"), UBUNTU)
    assert ubuntu.splitlines()[0] == "ssh.service - OpenBSD Secure Shell server"
    assert "; disabled; vendor preset: enabled)" in ubuntu and "Active: inactive (dead)" in ubuntu
    assert (
        run_bash(["systemctl status sshd"], node("localuser"), UBUNTU)[0]
        == run_bash(["systemctl status ssh"], node("localuser"), UBUNTU)[0]
    )  # the alias shows the unit it names
    azure, _ = run_bash(["systemctl status sshd"], node("localuser"), AZURE_LINUX)
    assert azure.startswith("sshd.service - ") and "/lib/systemd/system/sshd.service; enabled;" in azure


@pytest.mark.parametrize(
    ("os", "mode", "state", "stdout", "stderr"),
    [
        (UBUNTU, "localuser", {}, "pubkeyauthentication yes\n", ""),
        (UBUNTU, "entraid", {}, "pubkeyauthentication no\n", ""),
        (UBUNTU, "entraid", {"pubkey": "yes"}, "pubkeyauthentication yes\n", ""),
        (AZURE_LINUX, "entraid", {}, "pubkeyauthentication no\n", ""),
        (AZURE_LINUX, "disabled", {}, "pubkeyauthentication yes\n", ""),  # privsep dir in /var/lib/sshd
        (UBUNTU, "disabled", {}, "", ""),  # /run/sshd is gone with the unit: sshd -T fails, 2>/dev/null
    ],
    ids=["ubuntu-localuser", "ubuntu-entraid", "entraid-drifted", "azl-entraid", "azl-disabled", "ubuntu-stopped"],
)
def test_effective_pubkey_authentication_through_a_pipeline(os, mode, state, stdout, stderr):
    command = "sshd -T 2>/dev/null | grep -i '^pubkeyauthentication '"
    assert run_bash([command], node(mode, **state), os) == (stdout, stderr)


def test_plain_sshd_dump_and_its_ubuntu_failure_when_stopped():
    dump, _ = run_bash(["sshd -T"], node("localuser"), UBUNTU)
    assert dump.splitlines()[:2] == ["port 22", "addressfamily any"]
    assert {"passwordauthentication no", "pubkeyauthentication yes", "port 22"} <= set(dump.splitlines())
    assert run_bash(["/usr/sbin/sshd -T"], node("disabled"), UBUNTU) == (
        "",
        "Missing privilege separation directory: /run/sshd\n",
    )


@pytest.mark.parametrize(
    ("script", "stdout"),
    [
        (["echo '== ssh is-active'"], "== ssh is-active\n"),
        (['echo "== a; b"'], "== a; b\n"),  # a `;` inside quotes does not split
        (["echo == done"], "== done\n"),
        (["echo -n x; echo y"], "xy\n"),
        (["echo a\necho b", "", "# comment", "echo c"], "a\nb\nc\n"),
        (["echo visible 2>&1 | grep -v hidden"], "visible\n"),
        (["echo quiet >/dev/null; true"], ""),
    ],
    ids=[
        "single-quotes",
        "quoted-semicolon",
        "bare-words",
        "echo-n",
        "newlines-and-comments",
        "pipe-grep-v",
        "devnull",
    ],
)
def test_echo_and_command_splitting(script, stdout):
    assert run_bash(script, node(), UBUNTU) == (stdout, "")


def test_unknown_commands_are_bash_command_not_found_with_the_script_line():
    stdout, stderr = run_bash(["echo a", "unknown-tool --flag; echo b"], node(), UBUNTU)
    assert stdout == "a\nb\n"
    assert stderr == f"{SCRIPT}: line 2: unknown-tool: command not found\n"


def test_an_unterminated_quote_stops_the_script_as_bash_does():
    stdout, stderr = run_bash(["echo a", "echo 'b", "echo c"], node(), UBUNTU)
    assert stdout == "a\n"
    assert stderr.splitlines() == [
        f"{SCRIPT}: line 2: unexpected EOF while looking for matching `''",
        f"{SCRIPT}: line 4: syntax error: unexpected end of file",
    ]


def test_the_script_path_counts_the_node_s_run_commands():
    assert "/download/3/script.sh: line 1: nope" in run_bash(["nope"], node(runs=3), UBUNTU)[1]


# --- PowerShell ---

GET_SERVICE = "Get-Service -Name sshd -ErrorAction SilentlyContinue | Format-List Name,Status,StartType"


@pytest.mark.parametrize(
    ("mode", "state", "stdout"),
    [
        ("localuser", {}, "\nName      : sshd\nStatus    : Running\nStartType : Automatic\n\n\n"),
        (
            "localuser",
            {"active": "inactive", "enabled": "manual"},
            "\nName      : sshd\nStatus    : Stopped\nStartType : Manual\n\n\n",
        ),
        ("disabled", {}, ""),  # the OpenSSH.Server capability and its service are absent
        (
            "disabled",
            {"active": "active", "enabled": "enabled"},
            "\nName      : sshd\nStatus    : Running\nStartType : Automatic\n\n\n",
        ),
    ],
    ids=["enabled", "stopped-manual", "disabled-absent", "disabled-but-running"],
)
def test_get_service_format_list(mode, state, stdout):
    assert run_powershell([GET_SERVICE], node(mode, **state)) == (stdout, "")


def test_write_output_and_the_get_service_table():
    stdout, stderr = run_powershell(
        ["Write-Output '== sshd service'; Get-Service sshd", 'Write-Output "== done"'], node()
    )
    assert stdout.startswith("== sshd service\n\nStatus   Name               DisplayName\n")
    assert "Running  sshd               OpenSSH SSH Server\n" in stdout and stdout.endswith("== done\n")
    assert stderr == ""


def test_powershell_errors_are_error_records_on_stderr():
    stdout, stderr = run_powershell(["Get-Service -Name sshd", "Write-Output ok; Get-Thing -x"], node("disabled"))
    assert stdout == "ok\n"
    first, second = stderr.split(" \n")[:2]
    assert first.startswith(
        "Get-Service : Cannot find any service with service name 'sshd'.\nAt C:\\Packages\\Plugins\\"
    )
    assert "script0.ps1:1 char:1\n" in first and "NoServiceFoundForGivenName" in first
    assert second.startswith("Get-Thing : The term 'Get-Thing' is not recognized as the name of a cmdlet")
    assert f"script0.ps1:2 char:18\n+ Write-Output ok; Get-Thing -x\n+ {' ' * 17}{'~' * 9}\n" in second


def test_windows_service_exists_only_with_ssh_on_the_node():
    assert windows_service(node("disabled")) is None
    assert windows_service(node("localuser"))["StartType"] == "Automatic"


@pytest.mark.parametrize(
    ("text", "separators", "pieces"),
    [
        ("a; b", ";", [("a", 0), (" b", 2)]),
        ("echo 'x;y'; z", ";", [("echo 'x;y'", 0), (" z", 11)]),
        ('echo "a\\"; b"', ";", [('echo "a\\"; b"', 0)]),
        ("a | b", "|", [("a ", 0), (" b", 3)]),
    ],
    ids=["plain", "single-quoted", "escaped-double-quote", "pipe"],
)
def test_split_unquoted(text, separators, pieces):
    assert split_unquoted(text, separators) == pieces
