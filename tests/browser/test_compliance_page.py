"""The compliance page in a real browser: headless Chromium (Debian's `chromium`) renders the file
`compliance --html` writes, and the numbers it shows are checked against the report's JSON; a
header click sorts, typing in the filter box filters, a click opens a pool's evidence.

The browser is driven over the DevTools protocol on a pipe (tests/browser/devtools.py). Without
Chromium these tests skip, except in CI, where `.ci/run` installs it and they must run.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter

import pytest

from shared.adapters.store import WardenStore
from shared.cli import main
from shared.evidence.compliance import build_report
from shared.evidence.compliance_html import render_page, search_text
from shared.local.demo import DEMO_EVENT, DEMO_POLICY
from tests.browser.devtools import CHROMIUM, Chromium
from tests.compliance_samples import HOSTILE, HOSTILE_POOL, T0, audit_rows, node_checks, pool_states
from tests.emulator_fixtures import SUB_A, SUB_B
from tests.warden_fixtures import set_cli_env

ROWS = "#pool-table > tbody > tr"


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium; in CI this test must run")
        pytest.skip("chromium is not installed (apt-get install chromium); CI installs it and runs these tests")
    with Chromium() as chromium:
        yield chromium


@pytest.fixture
def sample(tmp_path):
    """The sample fleet's page, written to a file: (path, the report's JSON)."""
    report = build_report(pool_states(), node_checks(), audit_rows(), T0)
    path = tmp_path / "compliance.html"
    path.write_text(render_page(report), encoding="utf-8")
    return path, report.to_json()


def visible_pools(browser) -> list[str]:
    """The pool names of the rows shown, top to bottom."""
    return browser.evaluate(
        f"Array.from(document.querySelectorAll('{ROWS}')).filter(r => !r.hidden).map(r => r.cells[1].textContent)"
    )


def shown_text(browser) -> str:
    return browser.evaluate("document.getElementById('shown').textContent")


# --- what the page shows ------------------------------------------------------------------------


def test_the_page_shows_the_numbers_of_its_report(browser, sample):
    path, document = sample
    browser.open(path)
    assert browser.evaluate("JSON.parse(document.getElementById('report-data').textContent)") == document
    summary = document["summary"]
    bars = browser.evaluate(
        "Array.from(document.querySelectorAll('#chart g.bar'))"
        ".map(g => [g.dataset.chart, g.querySelector('text').textContent, g.querySelector('text.count').textContent])"
    )
    assert {key: int(count) for chart, key, count in bars if chart == "status"} == summary["byStatus"]
    assert {key: int(count) for chart, key, count in bars if chart == "mode"} == summary["byMode"]
    cards = browser.evaluate(
        "Array.from(document.querySelectorAll('.card [data-standing]'))"
        ".map(s => [s.closest('.card').dataset.rule, s.dataset.standing, s.querySelector('.count').textContent])"
    )
    assert {(rule, standing): int(n) for rule, standing, n in cards} == {
        (rule, standing): n for rule, counts in summary["stig"].items() for standing, n in counts.items()
    }
    assert browser.evaluate("document.getElementById('total').textContent") == str(summary["pools"])
    assert len(visible_pools(browser)) == len(document["pools"]) == 9
    assert shown_text(browser) == "9 of 9 pools shown"  # written by the page's script: it ran


def test_each_row_shows_its_pools_standing(browser, sample):
    path, document = sample
    browser.open(path)
    shown = browser.evaluate(
        f"Array.from(document.querySelectorAll('{ROWS}')).map(r => [r.dataset.poolId, r.cells[5].textContent,"
        " r.cells[9].dataset.value, r.cells[10].dataset.value])"
    )
    expected = [
        [p["poolId"], p["status"], p["stig"]["V-242393"]["status"], p["stig"]["V-242394"]["status"]]
        for p in document["pools"]
    ]
    assert shown == expected


def test_a_header_click_sorts_and_a_second_click_reverses(browser, sample):
    path, document = sample
    browser.open(path)
    names = [p["pool"] for p in document["pools"]]
    browser.click("th[data-key=pool] button")
    assert visible_pools(browser) == sorted(names, key=str.lower)
    assert browser.evaluate("document.querySelector('th[data-key=pool]').getAttribute('aria-sort')") == "ascending"
    browser.click("th[data-key=pool] button")
    assert visible_pools(browser) == sorted(names, key=str.lower, reverse=True)
    browser.click("th[data-key=status] button")
    statuses = browser.evaluate(f"Array.from(document.querySelectorAll('{ROWS}')).map(r => r.cells[5].textContent)")
    assert statuses == sorted(p["status"] for p in document["pools"])


@pytest.mark.parametrize(
    "typed",
    ["aks-prod-weu", "not-a-finding", "DEV drifted", "no-such-pool"],
    ids=["cluster", "standing", "two-terms", "nothing"],
)
def test_typing_in_the_filter_box_shows_only_the_matching_pools(browser, sample, typed):
    path, document = sample
    browser.open(path)
    browser.type("#filter", typed)
    report = build_report(pool_states(), node_checks(), audit_rows(), T0)
    terms = typed.lower().split()
    expected = [p.pool for p in report.pools if all(t in search_text(p) for t in terms)]
    assert visible_pools(browser) == expected
    assert shown_text(browser) == f"{len(expected)} of {len(document['pools'])} pools shown"
    browser.clear("#filter")
    assert len(visible_pools(browser)) == len(document["pools"])


def test_a_pools_evidence_opens_on_a_click(browser, sample):
    path, document = sample
    browser.open(path)
    system = next(p for p in document["pools"] if p["pool"] == "system")
    row = f"tr[data-pool-id='{system['poolId']}']"
    assert browser.evaluate(f'document.querySelector("{row} details").open') is False
    browser.click(f"{row} summary")
    assert browser.evaluate(f'document.querySelector("{row} details").open') is True
    nodes = browser.evaluate(
        f'Array.from(document.querySelectorAll("{row} tr.node")).filter(r => r.offsetParent !== null)'
        ".map(r => [r.cells[0].textContent, r.cells[2].textContent, r.cells[3].textContent])"
    )
    assert nodes == [
        [n["instance"], n["verdict"], "yes" if n["sshdActive"] else "no"] for n in system["lastVerification"]["nodes"]
    ]


def test_text_from_the_tables_is_shown_never_run(browser, sample):
    path, _ = sample
    browser.open(path)
    assert browser.evaluate("typeof window.pwned") == "undefined"
    assert browser.evaluate("document.querySelectorAll('img, #pool-table i').length") == 0
    names = browser.evaluate(f"Array.from(document.querySelectorAll('{ROWS}')).map(r => r.cells[1].textContent)")
    assert HOSTILE_POOL in names
    assert HOSTILE in browser.evaluate("document.body.textContent")


def test_the_page_loads_nothing_but_itself_and_reports_no_error(browser, sample):
    path, _ = sample
    browser.open(path)
    browser.click("th[data-key=cluster] button")
    assert browser.requested_urls() == [path.resolve().as_uri()]
    assert browser.problems() == []


# --- the page of a real run ------------------------------------------------------------------------


@pytest.fixture
def demo_env(monkeypatch, arm_emulator, azurite):
    """The demo's settings (its fleet is the test fleet, its policy the demo's) on the test's Azure."""
    set_cli_env(
        monkeypatch, arm_emulator, azurite, WARDEN_SUBSCRIPTIONS=f"{SUB_A},{SUB_B}", WARDEN_POLICY=str(DEMO_POLICY)
    )
    yield arm_emulator
    with WardenStore(azurite) as store:  # the CLI uses the default table names: leave none behind
        store.delete_tables()


@pytest.mark.slow
def test_after_the_demos_steps_the_page_shows_the_pools_they_touched(browser, demo_env, tmp_path, capsys):
    demo_env.set_node_sshd(f"{_prod()}/agentPools/system", "1", active="active", enabled="enabled")
    assert main(["verify"]) == 0  # the demo's step 2: every node checked, the drifted one reimaged
    assert main(["handle-event", str(DEMO_EVENT)]) == 0  # step 3: a pool write enforced and verified
    page = tmp_path / "compliance.html"
    capsys.readouterr()
    assert main(["compliance", "--html", str(page)]) == 0
    # Every pool of the demo fleet, as `plan` lists them: the stopped cluster's pool too, recorded by
    # the verification that could not check its nodes.
    assert capsys.readouterr().out == f"wrote the compliance page (9 pools) to {page}\n"
    browser.open(page)
    document = browser.evaluate("JSON.parse(document.getElementById('report-data').textContent)")
    rows = {p["poolId"].split("/", 8)[-1]: p for p in document["pools"]}
    shown = browser.evaluate(
        f"Object.fromEntries(Array.from(document.querySelectorAll('{ROWS}'))"
        ".map(r => [r.dataset.poolId.split('/').slice(8).join('/'), [r.cells[5].textContent, r.cells[6].textContent]]))"
    )
    nodepool1 = rows["aks-dev-weu/agentPools/nodepool1"]
    assert (nodepool1["status"], nodepool1["verdict"], nodepool1["lastRemediation"]["outcome"]) == (
        "compliant",
        "ok",
        "succeeded",
    )
    assert {s["status"] for s in nodepool1["stig"].values()} == {"not-a-finding"}
    system = rows["aks-prod-weu/agentPools/system"]
    assert (system["status"], system["verdict"], system["lastRemediation"]["outcome"]) == (
        "compliant",
        "ok",
        "succeeded",
    )
    assert rows["aks-dev-weu/agentPools/batch"]["status"] == "ignored"
    sandbox = rows["aks-sandbox-neu/agentPools/nodepool1"]  # the stopped cluster's: listed, not verified
    assert sandbox["verdict"] == "never-verified" and "stopped" in sandbox["reason"]
    assert (rows["aks-prod-weu/agentPools/npwin"]["os"], rows["aks-prod-weu/agentPools/npwin"]["osSku"]) == (
        "Windows",
        "Windows2025",
    )
    for key, row in rows.items():
        status, verified = shown[key]
        assert status == row["status"]
        assert verified.startswith(row["verdict"].replace("-", " "))
    assert Counter(p["status"] for p in document["pools"]) == {
        k: n for k, n in document["summary"]["byStatus"].items() if n
    }
    assert browser.problems() == []


def _prod() -> str:
    return f"/subscriptions/{SUB_A}/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu"
