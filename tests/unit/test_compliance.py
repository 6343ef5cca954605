"""The compliance report (pure): per-pool rows, evidence, STIG standing, summary, filters, paging,
its JSON, its HTML page (escaping, self-containment) and the CLI table's width."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import replace
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.cli.compliance import render_table
from shared.core.records import NodeCheck
from shared.evidence.compliance import (
    NEVER_VERIFIED,
    NodeEvidence,
    ReportQuery,
    ReportQueryError,
    Verification,
    build_report,
)
from shared.evidence.compliance_html import SCRIPT, STYLE, render_page
from shared.evidence.stig import STIG_RULES, Standing, stig_standing
from tests.compliance_samples import (
    AUTO,
    DEV,
    HOSTILE,
    HOSTILE_POOL,
    PROD,
    SUB_A,
    SUB_B,
    T0,
    audit_rows,
    node_checks,
    pool_states,
)

RUNNING, ENABLED = (rule for rule in STIG_RULES)
OPEN, NF, NR = Standing.OPEN, Standing.NOT_A_FINDING, Standing.NOT_REVIEWED


def report(query: ReportQuery | None = None, scope: frozenset[str] | None = None, states=None):
    return build_report(states or pool_states(), node_checks(), audit_rows(), T0, query, scope)


def pools_by_name(built) -> dict:
    return {p.pool: p for p in built.pools}


# --- per pool -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pool", "status", "verdict", "standing", "deviation", "remediation"),
    [
        ("batch", "compliant", "ok", (NF, NF), False, None),
        ("nodepool1", "drifted", "drift", (OPEN, OPEN), False, None),
        ("spot", "compliant", "ok", (OPEN, OPEN), True, None),
        (
            "vmpool",
            "unsupported",
            NEVER_VERIFIED,
            (OPEN, OPEN),
            False,
            None,
        ),  # runs LocalUser: sshd by its mode, an open finding
        ("system", "pending-reimage", "drift", (OPEN, OPEN), False, "waiting"),
        ("apps", "compliant", NEVER_VERIFIED, (OPEN, OPEN), True, None),
        ("npwin", "compliant", "ok", (NF, NF), False, "succeeded"),
        (HOSTILE_POOL, "compliant", "ok", (NR, NR), False, "failed"),
        ("systempool", "ignored", NEVER_VERIFIED, (OPEN, OPEN), False, None),  # left on LocalUser: an open finding
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_each_pool_stands_as_its_rows_say(pool, status, verdict, standing, deviation, remediation):
    row = pools_by_name(report())[pool]
    assert (row.status, row.verdict) == (status, verdict)
    assert tuple(s.status for s in row.stig.values()) == standing
    assert {s.accepted_deviation for s in row.stig.values()} == {deviation}
    assert (row.last_remediation.outcome if row.last_remediation else None) == remediation
    assert row.exemption is None


def test_a_pool_never_verified_says_so():
    apps = pools_by_name(report())["apps"]
    assert apps.last_verification is None and apps.verdict == NEVER_VERIFIED
    assert all("never verified on the nodes" in s.note for s in apps.stig.values())
    assert all("accepted deviation" in s.note for s in apps.stig.values())  # LocalUser by policy


def test_evidence_is_the_nodes_of_the_last_verification_only():
    batch = pools_by_name(report())["batch"]
    assert [n.instance for n in batch.last_verification.nodes] == ["0", "1"]  # node 7: two days older, scaled in
    assert {(n.sshd_active, n.sshd_enabled) for n in batch.last_verification.nodes} == {(False, False)}
    system = pools_by_name(report())["system"]
    assert [(n.instance, n.verdict) for n in system.last_verification.nodes] == [
        ("0", "drift"),
        ("1", "ok"),
        ("2", "ok"),
    ]
    assert "instance 0" in system.stig["V-242393"].note


def test_last_remediation_is_the_newest_outcome_row_and_other_steps_do_not_count():
    npwin, apps = pools_by_name(report())["npwin"], pools_by_name(report())["apps"]
    assert (npwin.last_remediation.outcome, npwin.last_remediation.mode_before) == ("succeeded", "LocalUser")
    assert npwin.last_remediation.time == T0 - timedelta(hours=3)
    assert apps.last_remediation is None  # its only row is a `plan` row


def test_os_and_sku_come_from_the_pool_state_else_from_the_node_checks():
    pools = pools_by_name(report(states=[replace(s, os="") for s in pool_states()]))
    assert (pools["npwin"].os, pools["npwin"].os_sku) == ("Windows", "Windows2025")  # from its node check
    assert pools["apps"].os == ""  # never checked, no OS recorded: nothing is guessed


# --- STIG standing ------------------------------------------------------------------------------


def verification_of(*values: bool | None) -> Verification:
    checks = [
        NodeCheck(DEV.id, "p", "vmss", str(i), T0, "Disabled", sshd_active=v, sshd_enabled=v)
        for i, v in enumerate(values)
    ]
    return Verification(T0, "ok", "", len(checks), 0, tuple(NodeEvidence.of(c) for c in checks))


@pytest.mark.parametrize(
    ("desired", "nodes", "expected", "deviation"),
    [
        ("Disabled", (False, False), NF, False),
        ("Disabled", (False, True), OPEN, False),
        ("Disabled", (False, None), NR, False),
        ("Disabled", (), NR, False),
        ("Disabled", None, NR, False),
        ("ignore", None, NR, False),
        ("LocalUser", None, OPEN, True),
        ("EntraId", (True, True), OPEN, True),
        ("entraid", (None,), OPEN, True),
        ("LocalUser", (False, False), NF, False),
    ],
    ids=[
        "off-everywhere",
        "on-one-node",
        "one-node-silent",
        "no-node-checked",
        "never-verified",
        "ignored-never-verified",
        "localuser-by-policy",
        "entraid-running",
        "entraid-silent-any-casing",
        "localuser-but-off",
    ],
)
def test_stig_standing(desired, nodes, expected, deviation):
    verification = None if nodes is None else verification_of(*nodes)
    for rule in STIG_RULES:
        standing = stig_standing(rule, verification, desired)
        assert (standing.status, standing.accepted_deviation) == (expected, deviation)
        assert standing.note


@pytest.mark.parametrize(
    ("desired", "configured", "status", "nodes", "expected", "deviation"),
    [
        ("EntraId", "LocalUser", "unsupported", None, OPEN, False),  # an Automatic cluster's pool
        ("Disabled", "LocalUser", "drifted", (True,), OPEN, False),
        ("LocalUser", "LocalUser", "pending-reimage", (True,), OPEN, False),
        ("Disabled", "LocalUser", "unsupported", None, OPEN, False),
        ("LocalUser", "LocalUser", "compliant", None, OPEN, True),
        ("EntraId", "EntraId", "exempted", (True,), OPEN, True),
        ("Disabled", "Disabled", "drifted", None, NR, False),
    ],
    ids=[
        "asked-entraid-runs-localuser",
        "asked-disabled-runs-localuser",
        "localuser-pending",
        "disabled-unsupported",
        "localuser-chosen",
        "exempted",
        "disabled-never-verified",
    ],
)
def test_only_a_mode_chosen_on_purpose_is_an_accepted_deviation(
    desired, configured, status, nodes, expected, deviation
):
    """A pool on a mode its policy did not ask for is an open finding, never an accepted deviation."""
    verification = None if nodes is None else verification_of(*nodes)
    for rule in STIG_RULES:
        standing = stig_standing(rule, verification, desired, configured, status)
        assert (standing.status, standing.accepted_deviation) == (expected, deviation)
        assert ("open finding" in standing.note) == (expected is OPEN and not deviation)


def test_the_two_rules_read_their_own_evidence():
    check = NodeCheck(DEV.id, "p", "vmss", "0", T0, "Disabled", sshd_active=False, sshd_enabled=True)
    verification = Verification(T0, "drift", "", 1, 1, (NodeEvidence.of(check),))
    assert stig_standing(RUNNING, verification, "Disabled").status is NF
    assert stig_standing(ENABLED, verification, "Disabled").status is OPEN


# --- summary, filters, paging -----------------------------------------------------------------


def test_summary_counts_the_rows():
    built = report()
    pools, summary = built.pools, built.summary
    assert summary.pools == len(pools) == 9
    assert summary.by_status == {
        "compliant": 5,
        "drifted": 1,
        "pending-reimage": 1,
        "unsupported": 1,
        "ignored": 1,
        "exempted": 0,
    }
    assert summary.by_mode == {"Disabled": 4, "EntraId": 1, "LocalUser": 4}
    assert summary.by_verdict == {
        "ok": 4,
        "drift": 2,
        "unknown": 0,
        "unsupported": 0,
        "not-checked": 0,
        NEVER_VERIFIED: 3,
    }
    for rule in STIG_RULES:
        counted = {s.value: sum(1 for p in pools if p.stig[rule.id].status is s) for s in Standing}
        assert summary.stig[rule.id] == counted == {"open": 6, "not-a-finding": 2, "not-reviewed": 1}
        assert summary.accepted_deviations[rule.id] == 2


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (ReportQuery(subscription=SUB_B.upper()), {"systempool"}),
        (ReportQuery(cluster=DEV.id.upper()), {"batch", "nodepool1", "spot", "vmpool"}),
        (ReportQuery(status="Drifted"), {"nodepool1"}),
        (ReportQuery(subscription=SUB_A, status="compliant", cluster=PROD.id), {"apps", "npwin", HOSTILE_POOL}),
    ],
    ids=["subscription", "cluster-any-casing", "status", "all-three"],
)
def test_filters_select_the_pools_and_the_summary_follows(query, expected):
    built = report(query)
    assert {p.pool for p in built.pools} == expected
    assert built.summary.pools == len(expected)


def test_pools_outside_the_scope_are_left_out():
    assert {p.subscription for p in report(scope=frozenset({SUB_A})).pools} == {SUB_A}


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"subscription": "not-a-guid"}, "subscription"),
        ({"cluster": DEV.id + "/agentPools/batch"}, "cluster"),
        ({"cluster": "/subscriptions/x/resourceGroups/y"}, "cluster"),
        ({"status": "green"}, "status"),
        ({"continuationToken": "%%%"}, "continuationToken"),
        ({"continuationToken": base64.urlsafe_b64encode(b"[1, 2]").decode()}, "continuationToken"),
        ({"sort": "pool"}, "sort"),
    ],
    ids=["subscription", "pool-id", "not-aks", "status", "token-garbage", "token-not-ours", "unknown-param"],
)
def test_bad_queries_are_refused_naming_the_parameter(params, parameter):
    with pytest.raises(ReportQueryError) as raised:
        report(ReportQuery.from_params(params))
    assert raised.value.parameter == parameter
    assert "\n" not in str(raised.value)


def test_a_token_is_refused_with_other_filters():
    first = report(ReportQuery(page_size=2))
    with pytest.raises(ReportQueryError, match="other filters"):
        report(ReportQuery(status="compliant", continuation_token=first.continuation_token, page_size=2))


@settings(max_examples=40, deadline=None)
@given(page_size=st.integers(1, 10), status=st.sampled_from([None, "compliant", "ignored"]))
def test_pages_joined_are_the_whole_report_and_each_carries_the_whole_summary(page_size, status):
    whole = report(ReportQuery(status=status))
    seen, token = [], None
    for _ in range(20):
        page = report(ReportQuery(status=status, continuation_token=token, page_size=page_size))
        assert page.summary == whole.summary
        assert len(page.pools) <= page_size
        seen += page.pools
        token = page.continuation_token
        if token is None:
            break
    assert seen == list(whole.pools)


# --- JSON -------------------------------------------------------------------------------------------


def test_json_has_camel_case_keys_iso_utc_times_and_full_ids():
    document = json.loads(json.dumps(report().to_json()))
    npwin = next(p for p in document["pools"] if p["pool"] == "npwin")
    assert npwin["clusterId"] == PROD.id
    assert npwin["poolId"] == PROD.id + "/agentPools/npwin"
    assert (npwin["os"], npwin["osSku"], npwin["exemption"]) == ("Windows", "Windows2025", None)
    assert npwin["lastVerification"]["time"] == "2026-11-24T11:00:00.000Z"
    assert npwin["lastVerification"]["nodes"][0]["sshdActive"] is False
    assert npwin["lastRemediation"]["modeAfter"] == "Disabled"
    assert npwin["stig"]["V-242393"]["status"] == "not-a-finding"
    assert document["generatedAt"] == "2026-11-24T12:00:00.000Z"
    assert document["continuationToken"] is None
    assert [r["id"] for r in document["stigRules"]] == ["V-242393", "V-242394"]
    keys = set(_keys(document))
    assert not {k for k in keys if "_" in k}, "snake_case key in the JSON"
    assert next(p for p in document["pools"] if p["pool"] == "apps")["lastVerification"] is None


def _keys(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            if not key.startswith("V-"):  # rule ids and status names are values used as keys
                yield key
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


# --- the page ---------------------------------------------------------------------------------------


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of the JSON data block."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.data_block = ""
        self._in_data = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_data = tag == "script" and dict(attrs).get("type") == "application/json"

    def handle_endtag(self, tag):
        self._in_data = False

    def handle_data(self, data):
        if self._in_data:
            self.data_block += data


def parsed(page: str) -> Elements:
    elements = Elements()
    elements.feed(page)
    return elements


def test_the_page_embeds_the_report_json_exactly():
    built = report()
    assert json.loads(parsed(render_page(built)).data_block) == built.to_json()


def test_text_from_the_tables_cannot_inject_markup():
    page = render_page(report())
    elements = parsed(page)
    hostile = next(p for p in json.loads(elements.data_block)["pools"] if p["pool"] == HOSTILE_POOL)
    assert hostile["reason"] == HOSTILE  # kept as text, not lost
    assert not [tag for tag, _ in elements.tags if tag in ("img", "i")]
    assert [tag for tag, _ in elements.tags].count("script") == 2  # the data block and the page's own
    assert not any(name.startswith("on") for _, attrs in elements.tags for name in attrs)
    assert "&lt;img src=x" in page


def test_the_page_loads_nothing_and_runs_only_its_own_script_and_style():
    page = render_page(report())
    elements = parsed(page)
    assert not [a for _, attrs in elements.tags for a in ("src", "href") if a in attrs]
    policy = next(a["content"] for t, a in elements.tags if a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in policy
    for text, directive in ((SCRIPT, "script-src"), (STYLE, "style-src")):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in policy
        assert f">{text}</" in page


def test_the_chart_and_cards_show_the_summary_numbers():
    built = report()
    bars = {
        (a["data-chart"], a["data-key"]): int(a["data-count"])
        for t, a in parsed(render_page(built)).tags
        if t == "g" and a.get("class") == "bar"
    }
    assert {k: n for (chart, k), n in bars.items() if chart == "status"} == built.summary.by_status
    assert {k: n for (chart, k), n in bars.items() if chart == "mode"} == built.summary.by_mode


def test_one_table_row_per_pool():
    built = report()
    rows = [a for t, a in parsed(render_page(built)).tags if t == "tr" and "data-pool-id" in a]
    assert [r["data-pool-id"] for r in rows] == [p.pool_id for p in built.pools]


# --- the CLI table ------------------------------------------------------------------------------


def test_the_table_fits_100_columns_and_cuts_long_names_with_an_ellipsis():
    long_name = "aks-" + "x" * 59
    states = [replace(s, cluster_id=s.cluster_id.replace("aks-dev-weu", long_name)) for s in pool_states()]
    text = render_table(report(states=states), 100)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100
    assert "…" in text and long_name not in text
    assert re.search(r"^aks-x+… +batch ", text, re.M)
    assert "V-242393 (sshd must not be running): 6 open (2 by policy), 1 not a finding, 2 not reviewed" in lines


def test_the_wide_table_keeps_every_column_uncut():
    text = render_table(report(), None)
    assert "Windows2025" in text and "VERIFIED AT" in text and "REMEDIATED" in text
    assert "…" not in text.splitlines()[0]


def test_query_values_are_checked_on_construction():
    with pytest.raises(ReportQueryError, match="pageSize"):
        ReportQuery(page_size=0)
    assert ReportQuery(cluster=AUTO.key).cluster == ReportQuery(cluster=AUTO.id).cluster
