"""The compliance report from tables a real run filled: reconcile and verification through the
warden's own triggers and orchestrations, against Azurite and the ARM emulator; then the report
read back (`read_compliance`) and `python -m shared compliance` in its three forms."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from shared.adapters.compliance_reader import read_compliance
from shared.adapters.store import WardenStore
from shared.cli import main
from shared.core.models import Target
from shared.core.protocol import WorkKind
from shared.evidence.compliance import NEVER_VERIFIED, REMEDIATION_STEP, ReportQuery
from shared.triggers.start import request_work
from tests.emulator_fixtures import SUB_A, SUB_B
from tests.warden_fixtures import DEV, PROD, arm_event, set_cli_env

NODEPOOL1 = DEV.id + "/agentPools/nodepool1"
OTHER_SUBSCRIPTION = "99999999-9999-9999-9999-999999999999"


def request_verify(w, cluster=DEV) -> None:
    """Verify work for the cluster, requested as every trigger does, run to the end."""

    async def request(client):
        return await request_work(
            client, w.runtime.store, Target(cluster), "verify from the test", "test", WorkKind.VERIFY
        )

    w.functions.with_client(request)
    w.functions.run()


def report_of(w, query: ReportQuery | None = None):
    return read_compliance(w.runtime.store, query or ReportQuery(), datetime.now(UTC), w.settings.subscriptions)


@pytest.fixture
def ran(warden, arm_emulator):
    """nodepool1 remediated (LocalUser -> Disabled) and verified; every DEV pool verified; PROD's
    system pool planned compliant by an event, never verified."""
    w = warden({"default": "Disabled"})
    w.deliver(arm_event(NODEPOOL1))
    w.deliver(arm_event(PROD.id + "/agentPools/system"))
    request_verify(w, DEV)
    return w


def test_each_pool_of_a_real_run_stands_as_the_run_left_it(ran):
    pools = {(p.cluster, p.pool): p for p in report_of(ran).pools}
    assert set(pools) == {
        ("aks-dev-weu", "nodepool1"),
        ("aks-dev-weu", "spot"),
        ("aks-dev-weu", "batch"),
        ("aks-dev-weu", "vmpool"),
        ("aks-prod-weu", "system"),
    }
    nodepool1 = pools["aks-dev-weu", "nodepool1"]
    assert (nodepool1.configured_mode, nodepool1.desired_mode, nodepool1.status) == (
        "Disabled",
        "Disabled",
        "compliant",
    )
    assert (nodepool1.os, nodepool1.verdict, nodepool1.pending_reimage) == ("Linux", "ok", False)
    remediation = nodepool1.last_remediation
    assert (remediation.outcome, remediation.mode_before, remediation.mode_after) == (
        "succeeded",
        "LocalUser",
        "Disabled",
    )
    nodes = nodepool1.last_verification.nodes
    assert len(nodes) == nodepool1.last_verification.nodes_checked >= 1
    assert {(n.sshd_active, n.sshd_enabled, n.verdict) for n in nodes} == {(False, False, "ok")}
    assert {s.status.value for s in nodepool1.stig.values()} == {"not-a-finding"}

    spot = pools["aks-dev-weu", "spot"]  # EntraId in AKS, the policy wants Disabled: audit-free drift
    assert (spot.configured_mode, spot.desired_mode, spot.status, spot.verdict) == (
        "EntraId",
        "Disabled",
        "drifted",
        "ok",
    )
    assert {(s.status.value, s.accepted_deviation) for s in spot.stig.values()} == {("open", False)}

    vmpool = pools["aks-dev-weu", "vmpool"]  # no scale set: checked by nothing, planned unsupported
    assert (vmpool.status, vmpool.verdict, vmpool.last_verification.nodes) == ("unsupported", "unsupported", ())
    # on LocalUser while its policy asks for Disabled: sshd runs by its mode, an open finding
    assert {(s.status.value, s.accepted_deviation) for s in vmpool.stig.values()} == {("open", False)}

    system = pools["aks-prod-weu", "system"]
    assert (system.status, system.verdict, system.last_verification) == ("compliant", NEVER_VERIFIED, None)
    assert all(s.note.startswith("never verified") for s in system.stig.values())


def test_the_summary_counts_the_rows_of_a_real_run(ran):
    report = report_of(ran)
    summary = report.summary
    assert summary.pools == len(report.pools) == 5
    assert summary.by_status == {
        "compliant": 3,
        "drifted": 1,
        "pending-reimage": 0,
        "unsupported": 1,
        "ignored": 0,
        "exempted": 0,
    }
    assert summary.by_verdict == {
        "ok": 3,
        "drift": 0,
        "unknown": 0,
        "unsupported": 1,
        "not-checked": 0,
        NEVER_VERIFIED: 1,
    }
    assert summary.by_mode == {"Disabled": 3, "EntraId": 1, "LocalUser": 1}
    assert summary.stig["V-242393"] == {"open": 2, "not-a-finding": 2, "not-reviewed": 1}  # vmpool: open


def test_a_cluster_filter_reads_one_cluster_and_pages_follow(ran):
    only_prod = report_of(ran, ReportQuery(cluster=PROD.id))
    assert [p.pool for p in only_prod.pools] == ["system"]
    first = report_of(ran, ReportQuery(page_size=3))
    rest = report_of(ran, ReportQuery(page_size=3, continuation_token=first.continuation_token))
    assert [p.pool for p in first.pools + rest.pools] == [p.pool for p in report_of(ran).pools]
    assert rest.continuation_token is None


def test_the_store_hands_over_only_the_outcome_rows(ran):
    rows = ran.runtime.store.list_audit(DEV.key, step=REMEDIATION_STEP)
    assert rows and {r.step for r in rows} == {REMEDIATION_STEP}
    assert len(rows) < len(ran.runtime.store.list_audit(DEV.key))


def test_nothing_recorded_yet_is_an_empty_report_and_creates_no_table(azurite):
    with WardenStore(azurite, table_prefix="nothingyet") as store:
        report = read_compliance(store, ReportQuery(), datetime.now(UTC))
        assert report.pools == () and report.summary.pools == 0
        assert not [t for t in store._service.list_tables() if t.name.startswith("nothingyet")]


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch, arm_emulator, azurite):
    set_cli_env(monkeypatch, arm_emulator, azurite, WARDEN_SUBSCRIPTIONS=f"{SUB_A},{SUB_B}")
    monkeypatch.setenv("COLUMNS", "100")
    yield arm_emulator
    with WardenStore(azurite) as store:  # the CLI uses the default table names: leave none behind
        store.delete_tables()


def columns(header: str, line: str) -> dict[str, str]:
    """A table line by its header's columns (titles may hold one space; cells may be empty)."""
    starts = [(m.group(), m.start()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    ends = [start for _, start in starts[1:]] + [None]
    return {title: line[start:end].strip() for (title, start), end in zip(starts, ends, strict=True)}


@pytest.fixture
def reconciled(cli_env, capsys):
    assert main(["reconcile", "--cluster", DEV.id]) == 0
    capsys.readouterr()


def test_cli_table_fits_100_columns(reconciled, capsys):
    assert main(["compliance"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    header, *lines = out.split("\n\n")[0].splitlines()
    rows = {row["POOL"]: row for row in (columns(header, line) for line in lines)}
    assert set(rows) == {"batch", "nodepool1", "spot", "vmpool"}
    nodepool1 = rows["nodepool1"]
    assert [nodepool1[t] for t in ("CONFIGURED", "DESIRED", "STATUS", "VERIFIED", "V-242393")] == [
        "Disabled",
        "Disabled",
        "compliant",
        "ok",
        "NF",
    ]
    assert rows["batch"]["VERIFIED"] == "never"  # planned compliant: nothing was remediated, so nothing verified
    assert "4 pools: 3 compliant, 1 unsupported" in out


def test_cli_json_and_html_of_a_reconciled_cluster(reconciled, capsys, tmp_path):
    assert main(["compliance", "--json", "--status", "compliant"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["filters"] == {"subscription": None, "cluster": None, "status": "compliant"}
    assert {p["pool"] for p in document["pools"]} == {"batch", "nodepool1", "spot"}
    assert all(
        p["clusterId"] == DEV.id and p["poolId"] == f"{DEV.id}/agentPools/{p['pool']}" for p in document["pools"]
    )
    assert document["summary"]["byStatus"]["compliant"] == 3

    page = tmp_path / "report.html"
    assert main(["compliance", "--html", str(page)]) == 0
    assert capsys.readouterr().out == f"wrote the compliance page (4 pools) to {page}\n"
    text = page.read_text(encoding="utf-8")
    assert text.count("<tr data-pool-id=") == 4
    assert f'data-pool-id="{NODEPOOL1}"' in text


def test_cli_json_and_html_give_the_same_report(cli_env, capsys, tmp_path):
    page = tmp_path / "empty.html"
    assert main(["compliance", "--json", "--html", str(page)]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)  # stdout stays JSON: where the page went is said on stderr
    assert printed["pools"] == [] and printed["summary"]["pools"] == 0
    assert f"wrote the compliance page (0 pools) to {page}" in captured.err
    embedded = json.loads(page.read_text(encoding="utf-8").split('id="report-data">')[1].split("</script>")[0])
    assert {k: v for k, v in embedded.items() if k != "generatedAt"} == {
        k: v for k, v in printed.items() if k != "generatedAt"
    }


@pytest.mark.parametrize(
    ("arguments", "needle"),
    [
        (["--status", "green"], "--status: is 'green'; expected one of compliant"),
        (["--subscription", "abc"], "--subscription: is 'abc'; expected a subscription id"),
        (["--subscription", OTHER_SUBSCRIPTION], "not in WARDEN_SUBSCRIPTIONS"),
        (["--cluster", NODEPOOL1], "names a pool; expected a managed-cluster resource id"),
        (["--cluster", DEV.id.replace(SUB_A, OTHER_SUBSCRIPTION)], "not in WARDEN_SUBSCRIPTIONS"),
        (["--html", "/nonexistent-dir/report.html"], "--html /nonexistent-dir/report.html: cannot write it"),
    ],
    ids=["status", "subscription", "out-of-scope", "pool-id", "cluster-out-of-scope", "unwritable"],
)
def test_cli_bad_input_exits_2_with_one_line(cli_env, capsys, arguments, needle):
    assert main(["compliance", *arguments]) == 2
    captured = capsys.readouterr()
    assert needle in captured.err and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.out == ""


def test_cli_without_tables_exits_2_naming_the_setting(cli_env, monkeypatch, capsys):
    monkeypatch.delenv("WARDEN_TABLES")
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    assert main(["compliance"]) == 2
    assert "WARDEN_TABLES (or AzureWebJobsStorage) is not set" in capsys.readouterr().err


def test_cli_with_nothing_recorded_says_so(cli_env, capsys):
    assert main(["compliance"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no pool recorded yet" in captured.err


# --- the whole fleet: every pool the plan sees ------------------------------------------------


def _plan_pools(w) -> set[tuple[str, str]]:
    from shared.policy.fleet import scan_fleet

    fleet = scan_fleet(w.runtime.arm, w.settings.subscriptions, w.settings.policy)
    return {(plan.cluster.ref.name, plan.pool.name) for plans in fleet.by_cluster().values() for plan in plans}


@pytest.mark.parametrize("trigger", ["verify-timer", "resync-timer"])
def test_the_report_lists_every_pool_the_plan_sees_after_either_timer(warden, trigger):
    """The stopped cluster's pool, and pools no reconcile has written, are in the report with the
    plan's status and no evidence yet; the totals are the plan's."""
    from azure.functions.timer import TimerRequest

    from shared.triggers.resync import RESYNC_FUNCTION
    from shared.triggers.verify import VERIFY_FUNCTION

    w = warden({"default": "Disabled"}, mode="audit", WARDEN_SUBSCRIPTIONS=f"{SUB_A},{SUB_B}")
    w.functions.call(VERIFY_FUNCTION if trigger == "verify-timer" else RESYNC_FUNCTION, timer=TimerRequest())
    w.functions.run()
    report = report_of(w)
    planned = _plan_pools(w)
    assert {(p.cluster, p.pool) for p in report.pools} == planned and report.summary.pools == len(planned)
    stopped = next(p for p in report.pools if p.cluster == "aks-sandbox-neu")
    assert stopped.verdict == NEVER_VERIFIED and "stopped" in stopped.reason
