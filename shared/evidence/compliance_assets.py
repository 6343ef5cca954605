"""The compliance page's own style sheet and script, inlined into it (the page loads nothing
else; its Content-Security-Policy names their hashes)."""

STYLE = """
:root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #1f2328; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
.meta, .muted { color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 200px; }
.card .rule { font-weight: 600; }
.card .title { color: var(--muted); font-size: 12px; max-width: 330px; }
.card .counts span { margin-right: 10px; white-space: nowrap; }
svg text { font: 13px system-ui, sans-serif; fill: #1f2328; }
svg .heading { font-weight: 600; }
.tools { display: flex; gap: 12px; align-items: center; margin: 8px 0; }
#filter { font: inherit; padding: 4px 8px; width: 320px; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; white-space: nowrap; }
td.evidence, table.nodes td { white-space: normal; }
table.nodes td.units { min-width: 220px; }
table.nodes td.why { min-width: 300px; }
thead th { position: sticky; top: 0; background: #f6f8fa; }
th button { font: inherit; font-weight: 600; border: 0; background: none; padding: 0; cursor: pointer; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
tbody tr:nth-child(even) { background: #fafbfc; }
.badge { display: inline-block; white-space: nowrap; border-radius: 10px; padding: 0 8px; font-size: 12px; border: 1px solid; }
.good { color: var(--ok); border-color: var(--ok); }
.bad { color: var(--bad); border-color: var(--bad); }
.warn { color: var(--warn); border-color: var(--warn); }
.none { color: var(--muted); border-color: var(--line); }
.sub { display: block; color: var(--muted); font-size: 12px; }
details summary { cursor: pointer; white-space: nowrap; }
table.nodes { margin: 6px 0; font-size: 12px; }
table.nodes th { background: #f6f8fa; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; margin: 6px 0; font-size: 12px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; min-width: 320px; }
"""

SCRIPT = """
(function () {
  const table = document.getElementById("pool-table");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.forEach(function (row, index) { row.dataset.order = String(index); });
  const filter = document.getElementById("filter");
  const shown = document.getElementById("shown");

  function cellValue(row, column) {
    const cell = row.cells[column];
    return cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim().toLowerCase();
  }

  function sortBy(header) {
    const column = header.cellIndex;
    const ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.from(table.tHead.rows[0].cells).forEach(function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const sorted = rows.slice().sort(function (a, b) {
      const x = cellValue(a, column), y = cellValue(b, column);
      const order = x < y ? -1 : x > y ? 1 : Number(a.dataset.order) - Number(b.dataset.order);
      return ascending ? order : -order;
    });
    sorted.forEach(function (row) { body.appendChild(row); });
  }

  function applyFilter() {
    const terms = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
    let count = 0;
    rows.forEach(function (row) {
      const visible = terms.every(function (term) { return row.dataset.search.includes(term); });
      row.hidden = !visible;
      count += visible ? 1 : 0;
    });
    shown.textContent = count + " of " + rows.length + " pools shown";
  }

  Array.from(table.tHead.rows[0].cells).forEach(function (header) {
    if (header.dataset.sort !== "none") {
      header.querySelector("button").addEventListener("click", function () { sortBy(header); });
    }
  });
  filter.addEventListener("input", applyFilter);
  applyFilter();
})();
"""
