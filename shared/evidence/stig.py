"""Where a pool stands against the two DISA Kubernetes STIG rules on sshd (V-242393: not running,
V-242394: not enabled), judged from the nodes' evidence and the mode the pool runs. Pure.
docs/compliance.md explains the mapping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from shared.core.models import SshAccess
from shared.core.records import NodeCheck
from shared.core.table_keys import utc
from shared.policy.plan import Status

if TYPE_CHECKING:
    from shared.evidence.compliance import Verification

SSH_ALLOWED_MODES = frozenset({SshAccess.LOCAL_USER.value.lower(), SshAccess.ENTRA_ID.value.lower()})


class Standing(StrEnum):
    """A STIG check's status, as a STIG checklist records it."""

    OPEN = "open"
    NOT_A_FINDING = "not-a-finding"
    NOT_REVIEWED = "not-reviewed"


@dataclass(frozen=True)
class StigRule:
    id: str
    stig_id: str
    severity: str
    title: str
    check: str  # the command the STIG's check text runs on each worker node
    state: str  # what the rule forbids sshd to be: "running" | "enabled"

    def seen(self, node: NodeCheck) -> bool | None:
        return node.sshd_active if self.state == "running" else node.sshd_enabled


# DISA Kubernetes STIG (V2R4 and later): both rules are CAT II, checked on every worker node.
STIG_RULES = (
    StigRule(
        "V-242393",
        "CNTR-K8-000400",
        "CAT II",
        "Kubernetes Worker Nodes must not have sshd service running.",
        "systemctl status sshd",
        "running",
    ),
    StigRule(
        "V-242394",
        "CNTR-K8-000410",
        "CAT II",
        "Kubernetes Worker Nodes must not have the sshd service enabled.",
        "systemctl is-enabled sshd.service",
        "enabled",
    ),
)


@dataclass(frozen=True)
class StigStanding:
    rule: str
    status: Standing
    note: str
    accepted_deviation: bool = False  # open because the policy allows SSH on this pool


def stig_standing(
    rule: StigRule, verification: Verification | None, desired_mode: str, configured_mode: str = "", status: str = ""
) -> StigStanding:
    """The pool against `rule`: by the nodes' evidence when it decides; else open when the mode the
    pool runs allows SSH (sshd runs by design), else not reviewed. Open is an accepted deviation only
    where the pool runs what its policy (or a live exemption) chose on purpose: a pool on a mode it
    was not asked for (drifted, unsupported, pending a reimage) is an open finding. `status` "" (no
    row to say) reads as running the desired mode."""
    standing, note = _judged_by_evidence(rule, verification)
    chosen = status in ("", Status.COMPLIANT.value, Status.EXEMPTED.value)
    running = desired_mode if chosen or not configured_mode else configured_mode
    if standing is None:
        standing = Standing.OPEN if running.lower() in SSH_ALLOWED_MODES else Standing.NOT_REVIEWED
        if standing is Standing.OPEN:
            note += f"; in {running} mode AKS runs sshd on the nodes"
    deviation = chosen and desired_mode.lower() in SSH_ALLOWED_MODES and standing is Standing.OPEN
    if deviation:
        note += f"; the policy allows SSH ({desired_mode}): an accepted deviation"
    elif standing is Standing.OPEN and not chosen:
        note += f"; the pool is {status} (the policy asks for {desired_mode or 'nothing'}): an open finding"
    return StigStanding(rule.id, standing, note, deviation)


def _judged_by_evidence(rule: StigRule, verification: Verification | None) -> tuple[Standing | None, str]:
    if verification is None:
        return None, "never verified on the nodes"
    when = f"checked {readable_time(verification.time)}"
    nodes = verification.nodes
    if not nodes:
        return None, f"no node {when}: {verification.summary or 'no evidence'}"
    seen = [rule.seen(n) for n in nodes]
    on = [n.instance for n, value in zip(nodes, seen, strict=True) if value]
    if on:
        return Standing.OPEN, f"sshd {rule.state} on {len(on)} of {_nodes(nodes)} {when} (instance {', '.join(on)})"
    if all(value is False for value in seen):
        return Standing.NOT_A_FINDING, f"sshd not {rule.state} on any of the {_nodes(nodes)} {when}"
    unsaid = sum(1 for value in seen if value is None)
    return None, f"{unsaid} of {_nodes(nodes)} {when} did not say whether sshd is {rule.state}"


def _nodes(nodes: tuple) -> str:
    return f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}"


def readable_time(moment: datetime) -> str:
    return f"{utc(moment):%Y-%m-%d %H:%M} UTC"
