"""The compliance report as one self-contained HTML page. Pure: a report in, a string out.

No external asset: the styles, the script and the chart (inline SVG) are in the page, and its
Content-Security-Policy allows nothing else — only that style and that script, by their hashes.
Every text from the tables is escaped; the report's JSON is embedded as a data block (with `<`,
`>` and `&` escaped) so the page and its tests read the same numbers. The table is rendered
here, so it reads without the script; the script only sorts (click a header) and filters.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape

from shared.evidence.compliance import NEVER_VERIFIED, ComplianceReport, PoolCompliance, iso
from shared.evidence.compliance_assets import SCRIPT, STYLE
from shared.evidence.sshd import Verdict
from shared.evidence.stig import STIG_RULES, Standing, StigRule, readable_time

TITLE = "SSH compliance of AKS node pools"
STANDING_TEXT = {
    Standing.OPEN: "Open",
    Standing.NOT_A_FINDING: "Not a finding",
    Standing.NOT_REVIEWED: "Not reviewed",
}
# Columns of the pool table: (key, title, how it sorts).
COLUMNS = (
    ("cluster", "Cluster", "text"),
    ("pool", "Pool", "text"),
    ("os", "OS", "text"),
    ("configured", "Configured", "text"),
    ("desired", "Desired", "text"),
    ("status", "Status", "text"),
    ("verified", "Last verification", "text"),
    ("reimage", "Reimage owed", "text"),
    ("remediation", "Last remediation", "text"),
    *((rule.id, rule.id, "text") for rule in STIG_RULES),
    ("evidence", "Evidence", "none"),
)
CHART_WIDTH, BAR_HEIGHT, BAR_GAP, LABEL_WIDTH, BAR_SPACE = 880, 22, 8, 130, 250


def render_page(report: ComplianceReport) -> str:
    """The whole page, as text (UTF-8 when written)."""
    data = _json_data_block(report.to_json())
    body = "\n".join(
        (
            _header(report),
            _summary(report),
            _pool_table(report.pools),
            _rules(),
            f'<script type="application/json" id="report-data">{data}</script>',
            f"<script>{SCRIPT}</script>",
        )
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_policy()}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(TITLE)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def search_text(pool: PoolCompliance) -> str:
    """What the filter box matches a row against (lower-case): its ids, names, modes and standings."""
    standings = " ".join(f"{rule} {s.status.value}" for rule, s in pool.stig.items())
    parts = (pool.pool_id, pool.os, pool.os_sku, pool.configured_mode, pool.desired_mode, pool.status, pool.verdict)
    return " ".join((*parts, standings)).lower()


def _policy() -> str:
    """Nothing loads from anywhere; only this page's own style and script run."""
    return (
        f"default-src 'none'; style-src '{_sha256(STYLE)}'; script-src '{_sha256(SCRIPT)}'; "
        "img-src 'none'; base-uri 'none'; form-action 'none'"
    )


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def _json_data_block(document: dict) -> str:
    # Inside <script> only `</script` or `<!--` could end the block early: no `<` is left.
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _header(report: ComplianceReport) -> str:
    filters = ", ".join(f"{k} {v}" for k, v in report.query.filters.items() if v) or "none"
    page = " (one page of the report: more follow)" if report.continuation_token else ""
    return (
        f"<header><h1>{escape(TITLE)}</h1>"
        f'<p class="meta">Generated {escape(readable_time(report.generated_at))} from the warden\'s tables · '
        f'<span id="total">{report.summary.pools}</span> pools · filters: {escape(filters)}{page}</p></header>'
    )


def _summary(report: ComplianceReport) -> str:
    summary = report.summary
    return (
        '<section id="summary"><h2>Fleet</h2>'
        + _chart((("status", "Pools by status", summary.by_status), ("mode", "Pools by SSH mode", summary.by_mode)))
        + '<div class="cards">'
        + "".join(_stig_card(rule, summary.stig[rule.id], summary.accepted_deviations[rule.id]) for rule in STIG_RULES)
        + "</div></section>"
    )


def _chart(groups: tuple[tuple[str, str, dict[str, int]], ...]) -> str:
    """Horizontal bars, one panel per group, side by side; each bar says its count."""
    panel_width = CHART_WIDTH // len(groups)
    rows = max(len(counts) for _, _, counts in groups)
    height = 30 + rows * (BAR_HEIGHT + BAR_GAP)
    largest = max([1, *(n for _, _, counts in groups for n in counts.values())])
    panels = []
    for index, (name, heading, counts) in enumerate(groups):
        x = index * panel_width
        bars = [f'<text class="heading" x="{x}" y="16">{escape(heading)}</text>']
        for row, (key, count) in enumerate(counts.items()):
            y = 28 + row * (BAR_HEIGHT + BAR_GAP)
            width = round(BAR_SPACE * count / largest)
            bars.append(
                f'<g class="bar" data-chart="{escape(name)}" data-key="{escape(key)}" data-count="{count}">'
                f'<text x="{x}" y="{y + 16}">{escape(key)}</text>'
                f'<rect x="{x + LABEL_WIDTH}" y="{y}" width="{width}" height="{BAR_HEIGHT}" rx="3" '
                f'fill="{_COLOURS.get(key, DEFAULT_COLOUR)}"><title>{escape(key)}: {count}</title></rect>'
                f'<text class="count" x="{x + LABEL_WIDTH + width + 6}" y="{y + 16}">{count}</text></g>'
            )
        panels.append(f'<g class="panel" data-chart="{escape(name)}">{"".join(bars)}</g>')
    label = "Pools by status and by SSH mode"
    return (
        f'<svg id="chart" role="img" aria-label="{label}" width="{CHART_WIDTH}" height="{height}" '
        f'viewBox="0 0 {CHART_WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{label}</title>{''.join(panels)}</svg>"
    )


_COLOURS = {
    "compliant": "#2da44e",
    "drifted": "#cf222e",
    "pending-reimage": "#bf8700",
    "unsupported": "#8250df",
    "ignored": "#8c959f",
    "Disabled": "#2da44e",
    "EntraId": "#0969da",
    "LocalUser": "#bc4c00",
}
DEFAULT_COLOUR = "#8c959f"


def _stig_card(rule: StigRule, counts: dict[str, int], deviations: int) -> str:
    parts = "".join(
        f'<span data-standing="{escape(s.value)}">{escape(STANDING_TEXT[s])}: '
        f'<b class="count">{counts.get(s.value, 0)}</b></span>'
        for s in Standing
    )
    note = f'<div class="muted">of the open ones, {deviations} by policy (an accepted deviation)</div>'
    return (
        f'<div class="card" data-rule="{escape(rule.id)}"><div class="rule">{escape(rule.id)} '
        f'<span class="muted">{escape(rule.stig_id)} · {escape(rule.severity)}</span></div>'
        f'<div class="title">{escape(rule.title)}</div><div class="counts">{parts}</div>{note}</div>'
    )


def _pool_table(pools: tuple[PoolCompliance, ...]) -> str:
    headers = "".join(
        f'<th scope="col" data-key="{escape(key)}" data-sort="{kind}">'
        + (f'<button type="button">{escape(title)}</button>' if kind != "none" else escape(title))
        + "</th>"
        for key, title, kind in COLUMNS
    )
    rows = "\n".join(_pool_row(pool) for pool in pools)
    return (
        '<section id="pools"><h2>Pools</h2><div class="tools"><label>Filter '
        '<input id="filter" type="search" placeholder="cluster, pool, mode, status, open…" autocomplete="off">'
        f'</label><span id="shown" class="muted">{len(pools)} of {len(pools)} pools shown</span></div>'
        f'<table id="pool-table"><thead><tr>{headers}</tr></thead><tbody>\n{rows}\n</tbody></table></section>'
    )


def _pool_row(pool: PoolCompliance) -> str:
    verification = pool.last_verification
    remediation = pool.last_remediation
    cells = [
        _cell(
            f'{escape(pool.cluster)}<span class="sub">{escape(pool.resource_group)}</span>',
            pool.cluster_id.lower(),
            title=pool.cluster_id,
        ),
        _cell(escape(pool.pool), pool.pool.lower(), title=pool.pool_id),
        _cell(escape(pool.os) + (f'<span class="sub">{escape(pool.os_sku)}</span>' if pool.os_sku else "")),
        _cell(escape(pool.configured_mode or "unknown")),
        _cell(escape(pool.desired_mode or "unknown")),
        _cell(_badge(pool.status, _status_tone(pool.status)), pool.status),
        _cell(
            _badge(pool.verdict.replace("-", " "), _verdict_tone(pool.verdict))
            + (f'<span class="sub">{escape(readable_time(verification.time))}</span>' if verification else ""),
            f"{iso(verification.time)} {pool.verdict}" if verification else "",
        ),
        _cell("yes" if pool.pending_reimage else "no"),
        _cell(
            (
                _badge(remediation.outcome, _outcome_tone(remediation.outcome))
                + f'<span class="sub">{escape(readable_time(remediation.time))}</span>'
            )
            if remediation
            else '<span class="muted">none</span>',
            iso(remediation.time) if remediation else "",
        ),
        *(
            _cell(_badge(STANDING_TEXT[s.status], _standing_tone(s.status)), s.status.value, title=s.note)
            for s in pool.stig.values()
        ),
        f'<td class="evidence">{_evidence(pool)}</td>',
    ]
    return f'<tr data-pool-id="{escape(pool.pool_id)}" data-search="{escape(search_text(pool))}">{"".join(cells)}</tr>'


def _cell(html: str, value: str | None = None, title: str | None = None) -> str:
    attributes = "" if value is None else f' data-value="{escape(value)}"'
    attributes += "" if title is None else f' title="{escape(title)}"'
    return f"<td{attributes}>{html}</td>"


def _badge(text: str, tone: str) -> str:
    return f'<span class="badge {tone}">{escape(text)}</span>'


def _evidence(pool: PoolCompliance) -> str:
    verification = pool.last_verification
    count = len(verification.nodes) if verification else 0
    if verification is None:
        label = NEVER_VERIFIED.replace("-", " ")
    else:
        label = f"{count} node{'s' if count != 1 else ''}" if count else "no node checked"
    facts = [
        ("Pool id", pool.pool_id),
        ("Plan", f"{pool.status}: {pool.reason}" if pool.reason else pool.status),
        ("Verification", f"{verification.verdict}: {verification.summary}" if verification else "never verified"),
        ("Last upgrade", readable_time(pool.last_upgrade_time) if pool.last_upgrade_time else "none recorded"),
        ("Last remediation", _remediation_text(pool)),
        *((f"{rule} ({STANDING_TEXT[s.status]})", s.note) for rule, s in pool.stig.items()),
        ("Exemption", "none"),
    ]
    listed = "".join(f"<dt>{escape(name)}</dt><dd>{escape(text)}</dd>" for name, text in facts)
    return f'<details><summary>{escape(label)}</summary><dl class="facts">{listed}</dl>{_node_table(pool)}</details>'


def _remediation_text(pool: PoolCompliance) -> str:
    r = pool.last_remediation
    if r is None:
        return "none recorded"
    if r.mode_before and r.mode_before == r.mode_after:
        modes = f" (mode {r.mode_after} kept: the nodes reimaged)"
    else:
        modes = f" ({r.mode_before} -> {r.mode_after})" if r.mode_before or r.mode_after else ""
    code = f" [{r.code}]" if r.code else ""
    return f"{r.outcome}{code} at {readable_time(r.time)}{modes}: {r.reason} (by {r.actor or 'the warden'})"


def _node_table(pool: PoolCompliance) -> str:
    verification = pool.last_verification
    if not verification or not verification.nodes:
        return ""
    head = "".join(
        f"<th>{name}</th>" for name in ("Instance", "Scale set", "Verdict", "sshd running", "enabled", "Units", "Why")
    )
    rows = "".join(
        f'<tr class="node"><td>{escape(n.instance)}</td><td>{escape(n.vmss)}</td>'
        f"<td>{_badge(n.verdict, _verdict_tone(n.verdict))}</td><td>{_yes_no(n.sshd_active)}</td>"
        f'<td>{_yes_no(n.sshd_enabled)}</td><td class="units">{escape(n.units)}</td>'
        f'<td class="why">{escape(n.reason)}<span class="sub">{escape(readable_time(n.time))} · run-command {escape(n.run_command)}</span></td>'
        "</tr>"
        for n in verification.nodes
    )
    return f'<table class="nodes"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def _rules() -> str:
    items = "".join(
        f"<li><b>{escape(rule.id)}</b> ({escape(rule.stig_id)}, {escape(rule.severity)}): {escape(rule.title)} "
        f"Checked on each node with <code>{escape(rule.check)}</code>; the warden reads the same state "
        "through VMSS run-command.</li>"
        for rule in STIG_RULES
    )
    return (
        '<section id="rules"><h2>How the STIG standing is decided</h2><ul>'
        f"{items}</ul><p>Open: a node of the last verification shows sshd running (enabled), or the policy allows "
        "SSH on the pool (LocalUser, EntraId: an accepted deviation). Not a finding: every node checked shows "
        "it off. Not reviewed: no evidence decides (never verified, or the nodes did not say).</p></section>"
    )


def _status_tone(status: str) -> str:
    return {"compliant": "good", "drifted": "bad", "pending-reimage": "warn"}.get(status, "none")


def _verdict_tone(verdict: str) -> str:
    tone = {Verdict.OK: "good", Verdict.DRIFT: "bad", Verdict.UNKNOWN: "warn", Verdict.UNSUPPORTED: "warn"}
    return tone.get(verdict, "none")


def _outcome_tone(outcome: str) -> str:
    return {"succeeded": "good", "failed": "bad", "waiting": "warn"}.get(outcome, "none")


def _standing_tone(standing: Standing) -> str:
    return {Standing.OPEN: "bad", Standing.NOT_A_FINDING: "good"}.get(standing, "warn")
