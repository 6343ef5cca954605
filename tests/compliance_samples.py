"""A small recorded fleet for the compliance report's tests: the rows the tables would hold.

Nine pools in three clusters and two subscriptions, one of every kind the report tells apart:
verified clean, verified with sshd on (drift), SSH allowed by policy (verified and not),
never verified, unsupported, ignored, pending reimage, a Windows pool, and text that would
break a page that did not escape it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.core.models import ClusterRef
from shared.core.protocol import Outcome
from shared.core.records import AuditRecord, NodeCheck, PoolState

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SUB_A = "3f2c8a51-6b0e-4d7a-9c21-5e8f0a1b2c3d"
SUB_B = "8d41e7b2-0c9f-4e35-a6d8-1b2c3d4e5f60"
DEV = ClusterRef(SUB_A, "rg-dev-weu", "aks-dev-weu")
PROD = ClusterRef(SUB_A, "rg-prod-weu", "aks-prod-weu")
AUTO = ClusterRef(SUB_B, "rg-prod-neu", "aks-auto-neu")
HOSTILE = '<img src=x onerror="window.pwned=1"></script><script>window.pwned=2</script>&amp;'
HOSTILE_POOL = "np<i>&'\""
OFF = "ssh inactive/disabled, sshd inactive/alias, pubkeyauthentication ?"
ON = "ssh active/enabled, sshd active/alias, pubkeyauthentication yes"


def state(cluster: ClusterRef, pool: str, configured: str, desired: str, status: str, **values) -> PoolState:
    return PoolState(cluster.id, pool, desired, configured, status, os=values.pop("os", "Linux"), **values)


def verified(nodes: int, drifted: int = 0, verdict: str = "ok", at: datetime = T0 - timedelta(hours=1), **values):
    summary = values.pop(
        "summary", f"{nodes} node(s): {nodes - drifted} ok" + (f", {drifted} drift" if drifted else "")
    )
    return {
        "last_verified_time": at,
        "nodes_checked": nodes,
        "nodes_drifted": drifted,
        "verdict": verdict,
        "verification_summary": summary,
        **values,
    }


def check(cluster: ClusterRef, pool: str, instance: str, on: bool | None, at: datetime, **values) -> NodeCheck:
    units = {True: ON, False: OFF, None: "ssh ?/-, sshd ?/-, pubkeyauthentication ?"}[on]
    return NodeCheck(
        cluster.id,
        pool,
        f"aks-{pool}-12345678-vmss",
        instance,
        at,
        values.pop("expected", "Disabled"),
        sshd_active=values.pop("active", on),
        sshd_enabled=values.pop("enabled", on),
        verdict=values.pop("verdict", "ok"),
        reason=values.pop("reason", "sshd is off"),
        units=units,
        run_command="succeeded",
        os=values.pop("os", "Linux"),
        **values,
    )


def outcome(cluster: ClusterRef, pool: str, result: Outcome, at: datetime, message: str, **values) -> AuditRecord:
    return AuditRecord(at, cluster.id, "outcome", result, pool=pool, message=message, actor="event", **values)


def pool_states() -> list[PoolState]:
    return [
        state(DEV, "batch", "Disabled", "Disabled", "compliant", os_sku="Ubuntu", **verified(2)),
        state(
            DEV,
            "nodepool1",
            "LocalUser",
            "Disabled",
            "drifted",
            reason="default: LocalUser -> Disabled",
            **verified(3, 3, "drift"),
        ),
        state(DEV, "spot", "EntraId", "EntraId", "compliant", os_sku="AzureLinux", **verified(2)),
        state(DEV, "vmpool", "LocalUser", "Disabled", "unsupported", reason="Disabled SSH needs a VMSS pool"),
        state(
            PROD,
            "system",
            "Disabled",
            "Disabled",
            "pending-reimage",
            pending_reimage=True,
            **verified(3, 1, "drift"),
        ),
        state(PROD, "apps", "LocalUser", "LocalUser", "compliant", reason="rule apps: LocalUser"),
        state(
            PROD,
            "npwin",
            "Disabled",
            "Disabled",
            "compliant",
            os="Windows",
            os_sku="Windows2025",
            last_upgrade_time=T0 - timedelta(hours=3),
            **verified(1),
        ),
        state(PROD, HOSTILE_POOL, "Disabled", "Disabled", "compliant", reason=HOSTILE, **verified(1, summary=HOSTILE)),
        state(AUTO, "systempool", "LocalUser", "ignore", "ignored", reason="rule auto: ignore"),
    ]


def node_checks() -> list[NodeCheck]:
    """The latest check of each node, as `latest_node_checks` gives them."""
    last = T0 - timedelta(hours=1, minutes=2)
    older = T0 - timedelta(days=2)
    return [
        check(DEV, "batch", "0", False, last),
        check(DEV, "batch", "1", False, last),
        check(DEV, "batch", "7", True, older),  # scaled in since: not evidence of the last verification
        *(
            check(DEV, "nodepool1", str(i), True, last, verdict="drift", reason="sshd is running on a Disabled pool")
            for i in range(3)
        ),
        *(
            check(DEV, "spot", str(i), True, last, expected="EntraId", reason="sshd runs, keys refused")
            for i in range(2)
        ),
        check(PROD, "system", "0", True, last, verdict="drift", reason="sshd is running on a Disabled pool"),
        check(PROD, "system", "1", False, last),
        check(PROD, "system", "2", False, last),
        check(PROD, "npwin", "0", False, last, os="Windows"),
        check(PROD, HOSTILE_POOL, "0", None, last, verdict="unknown", reason=HOSTILE),
    ]


def audit_rows() -> list[AuditRecord]:
    return [
        outcome(PROD, "npwin", Outcome.FAILED, T0 - timedelta(days=1), "Throttled: retries spent"),
        outcome(
            PROD,
            "npwin",
            Outcome.SUCCEEDED,
            T0 - timedelta(hours=3),
            "LocalUser -> Disabled",
            mode_before="LocalUser",
            mode_after="Disabled",
        ),
        outcome(PROD, "system", Outcome.WAITING, T0 - timedelta(hours=2), "no usable node-OS maintenance window"),
        outcome(PROD, HOSTILE_POOL, Outcome.FAILED, T0 - timedelta(hours=2), HOSTILE, code="Bad<Code>"),
        AuditRecord(T0, PROD.id, "plan", Outcome.SKIPPED, pool="apps", message="not a remediation"),
    ]
