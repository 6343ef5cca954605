"""What the warden asks a node about sshd, how it reads the answer, and the verdict. Pure.

The check runs through VMSS run-command, one short script per node:

- Linux (`RunShellScript`): for both unit names — Ubuntu runs `ssh.service` with `sshd.service`
  as an alias, Azure Linux runs `sshd.service` only — `systemctl is-active` and `is-enabled`;
  then the effective `pubkeyauthentication` from `sshd -T` (EntraId nodes set `PubkeyAuthentication
  no` globally and let Entra users in through `AuthorizedKeysCommand /usr/sbin/aad_certhandler`).
- Windows (`RunPowerShellScript`): `Get-Service sshd` — the OpenSSH.Server capability and its
  service exist only when SSH is enabled.

Every answer is framed by `== <section>` lines and ends with `== done`, so a cut or garbled
output is told from a real one. Expected state by the pool's configured mode: Disabled → no
sshd running or enabled; LocalUser → sshd running, public keys allowed; EntraId → sshd running,
public keys refused. A node is `ok` only when its output shows exactly that; anything unread is
`unknown`, never `ok`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from shared.core.models import SshAccess

LINUX_COMMAND = "RunShellScript"
WINDOWS_COMMAND = "RunPowerShellScript"
UNITS = ("ssh", "sshd")
DONE = "done"
PUBKEY = "pubkeyauthentication"
KEYS = "authorized keys"  # the fingerprints of the admin user's keys: is the cluster's key there?
WINDOWS_SERVICE = "sshd service"

LINUX_SCRIPT = (
    *(
        line
        for unit in UNITS
        for line in (
            f"echo '== {unit} is-active'; systemctl is-active {unit}",
            f"echo '== {unit} is-enabled'; systemctl is-enabled {unit}",
        )
    ),
    f"echo '== {PUBKEY}'; sshd -T 2>/dev/null | grep -i '^{PUBKEY} '",
    f"echo '== {KEYS}'; cat /home/*/.ssh/authorized_keys 2>/dev/null | ssh-keygen -lf - 2>/dev/null",
    f"echo '== {DONE}'",
)
WINDOWS_SCRIPT = (
    f"Write-Output '== {WINDOWS_SERVICE}'",
    "Get-Service -Name sshd -ErrorAction SilentlyContinue | Format-List Name,Status,StartType",
    f"Write-Output '== {DONE}'",
)

# `systemctl is-active` states in which sshd accepts (or is about to accept) connections.
RUNNING = frozenset({"active", "activating", "reloading", "refreshing"})
# `systemctl is-enabled` states in which the unit starts at boot or on demand. `alias` says
# nothing of its own (the unit it names answers), `disabled`/`masked` mean off.
ENABLED = frozenset({"enabled", "enabled-runtime", "static", "indirect", "generated", "linked", "linked-runtime"})
_SECTION = re.compile(r"^== (.+?)\s*$")
_FIELD = re.compile(r"^\s*(\w+)\s*:\s*(.*?)\s*$")


def script_for(os_type: str) -> tuple[str, tuple[str, ...]]:
    """(run-command id, script lines) for a node of `os_type`."""
    if os_type.lower() == "windows":
        return WINDOWS_COMMAND, WINDOWS_SCRIPT
    return LINUX_COMMAND, LINUX_SCRIPT


class Verdict(StrEnum):
    OK = "ok"
    DRIFT = "drift"
    UNKNOWN = "unknown"  # a check was due and could not conclude: proves nothing
    # A pool's verdict only, with the reason: no node of it can be asked by VMSS run-command
    # (not a scale-set pool; a node resource group locked down to reads)...
    UNSUPPORTED = "unsupported"
    # ...or none is asked now by design (the policy ignores the pool; a stopped cluster or pool).
    NOT_CHECKED = "not-checked"

    @staticmethod
    def worst(verdicts) -> Verdict:
        """A pool's verdict: drift over unknown over ok; no node checked is unknown."""
        verdicts = set(verdicts)
        for verdict in (Verdict.DRIFT, Verdict.UNKNOWN, Verdict.OK):
            if verdict in verdicts:
                return verdict
        return Verdict.UNKNOWN


@dataclass(frozen=True)
class SshdState:
    """What one node's output says. `None`: the output did not say."""

    complete: bool = False  # the `== done` line came: nothing was cut off
    units: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # unit -> (active, enabled)
    pubkey: str | None = None  # effective pubkeyauthentication: "yes" | "no"
    service: dict[str, str] | None = None  # Windows: Get-Service fields; {} when there is no sshd service
    keys: tuple[str, ...] | None = None  # fingerprints in authorized_keys; None: not asked

    @property
    def running(self) -> bool | None:
        if self.service is not None:
            return self.service.get("status", "").lower() in ("running", "startpending")
        states = [active for active, _ in self.units.values() if active]
        return any(state in RUNNING for state in states) if states else None

    @property
    def enabled(self) -> bool | None:
        if self.service is not None:
            return self.service.get("starttype", "").lower() in ("automatic", "automaticdelayedstart")
        states = [enabled for _, enabled in self.units.values() if enabled and enabled != "alias"]
        return any(state in ENABLED for state in states) if states else self._enabled_unknown()

    def _enabled_unknown(self) -> bool | None:
        # Every unit answered is-enabled with nothing on stdout: none exists, so none is enabled.
        return False if self.units and all(e is None for _, e in self.units.values()) and self.complete else None

    def summary(self) -> str:
        if self.service is not None:
            if not self.service:
                return "no sshd service"
            return f"sshd {self.service.get('status', '?')}, start {self.service.get('starttype', '?')}"
        parts = [f"{unit} {active or '?'}/{enabled or '-'}" for unit, (active, enabled) in self.units.items()]
        return ", ".join(parts + [f"{PUBKEY} {self.pubkey or '?'}"])


def parse_output(stdout: str) -> SshdState:
    """Read the sections of a check's stdout (the script above, on either OS)."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in stdout.splitlines():
        if match := _SECTION.match(line):
            current = match.group(1).strip().lower()
            sections[current] = []
        elif current is not None and line.strip():
            sections[current].append(line.strip())
    units = {
        unit: (_first(sections.get(f"{unit} is-active")), _first(sections.get(f"{unit} is-enabled")))
        for unit in UNITS
        if f"{unit} is-active" in sections or f"{unit} is-enabled" in sections
    }
    service = _service(sections[WINDOWS_SERVICE]) if WINDOWS_SERVICE in sections else None
    keys = _fingerprints(sections[KEYS]) if KEYS in sections else None
    return SshdState(DONE in sections, units, _pubkey(sections.get(PUBKEY)), service, keys)


def _fingerprints(lines: list[str]) -> tuple[str, ...]:
    """`ssh-keygen -l` lines: `<bits> SHA256:<base64> <comment> (<type>)`."""
    return tuple(word for line in lines for word in line.split()[1:2] if word.startswith("SHA256:"))


_LOADED = re.compile(r"^\s*Loaded:\s*\S+\s*\([^;]*;\s*([\w-]+)", re.M)
_ACTIVE = re.compile(r"^\s*Active:\s*([\w-]+)", re.M)


def parse_status(text: str, unit: str = "ssh") -> SshdState:
    """`systemctl status <unit>` as the AKS guide reads it by hand (its `Loaded:` line says
    whether the unit is enabled, its `Active:` line whether it runs). Complete only when
    both lines are there."""
    loaded, active = _LOADED.search(text), _ACTIVE.search(text)
    state = (active.group(1).lower() if active else None, loaded.group(1).lower() if loaded else None)
    return SshdState(complete=bool(loaded and active), units={unit: state}, pubkey=None)


def _first(lines: list[str] | None) -> str | None:
    return lines[0].lower() if lines else None


def _pubkey(lines: list[str] | None) -> str | None:
    for line in lines or ():
        words = line.lower().split()
        if len(words) == 2 and words[0] == PUBKEY and words[1] in ("yes", "no"):
            return words[1]
    return None


def _service(lines: list[str]) -> dict[str, str]:
    fields = {}
    for line in lines:
        if match := _FIELD.match(line):
            fields[match.group(1).lower()] = match.group(2)
    return fields


def judge(expected: SshAccess, state: SshdState, cluster_key: str = "") -> tuple[Verdict, str]:
    """A node's verdict against the mode its pool is configured with, and why. `cluster_key`:
    the fingerprint of the cluster's node key, which a LocalUser node must hold (AKS puts a new
    key on the nodes only at a reimage: a rotation is proven here)."""
    verdict, reason = _judge_sshd(expected, state)
    if verdict is not Verdict.OK or not cluster_key or expected is not SshAccess.LOCAL_USER:
        return verdict, reason
    if state.keys is None:
        return verdict, reason  # an answer to a check without the keys section
    if cluster_key not in state.keys:
        held = ", ".join(state.keys) or "none"
        return Verdict.DRIFT, f"the node does not hold the cluster's key {cluster_key} (it holds: {held}); {reason}"
    return verdict, f"{reason}; it holds the cluster's key"


def _judge_sshd(expected: SshAccess, state: SshdState) -> tuple[Verdict, str]:
    if not state.complete:
        return Verdict.UNKNOWN, "the output was cut off or is not the check's (no '== done' line)"
    running, enabled = state.running, state.enabled
    if running is None:
        return Verdict.UNKNOWN, "the output does not say whether sshd runs"
    if expected is SshAccess.DISABLED:
        return _judge_disabled(running, enabled, state)
    if not running:
        return Verdict.DRIFT, f"sshd is not running ({state.summary()}); {expected.value} needs it"
    if state.service is not None:
        return Verdict.OK, f"sshd runs ({state.summary()})"
    return _judge_keys(expected, state)


def _judge_disabled(running: bool, enabled: bool | None, state: SshdState) -> tuple[Verdict, str]:
    if running:
        return Verdict.DRIFT, f"sshd is running ({state.summary()}); Disabled means it must not"
    if enabled:
        return Verdict.DRIFT, f"sshd is stopped but enabled, it would start at boot ({state.summary()})"
    if enabled is None:
        return Verdict.UNKNOWN, f"sshd is stopped; the output does not say whether it is enabled ({state.summary()})"
    return Verdict.OK, f"sshd is stopped and disabled ({state.summary()})"


def _judge_keys(expected: SshAccess, state: SshdState) -> tuple[Verdict, str]:
    want = "no" if expected is SshAccess.ENTRA_ID else "yes"
    if state.pubkey is None:
        return Verdict.UNKNOWN, f"sshd runs, but `sshd -T` did not say {PUBKEY} ({state.summary()})"
    if state.pubkey != want:
        allowed = "allowed" if state.pubkey == "yes" else "refused"
        return Verdict.DRIFT, f"public keys are {allowed} ({state.summary()}); {expected.value} wants {PUBKEY} {want}"
    return Verdict.OK, f"sshd runs with {PUBKEY} {want} ({state.summary()})"
