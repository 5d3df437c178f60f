"""``index.html``: one self-contained page (inline CSS and script, no network), its figures beside it."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import yaml

from heedful.report.sections import Figure, Section
from heedful.report.sources import ReportUnit

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
color:#111;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2.2rem}
figure{margin:1.2rem 0 2rem 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.9rem;color:#333;max-width:900px}
table{border-collapse:collapse;font-size:.82rem;margin:.6rem 0}
th,td{border:1px solid #ddd;padding:.2rem .45rem;text-align:left;vertical-align:top}
th{background:#f3f3f3;cursor:pointer;user-select:none}td.n{text-align:right;font-variant-numeric:tabular-nums}
.meta{font-size:.85rem;color:#444}pre{background:#f7f7f7;padding:.5rem;overflow-x:auto;font-size:.78rem}
.failed{color:#a00}.verdict li{margin:.3rem 0;font-size:1rem}.scroll{max-height:520px;overflow:auto}code{font-size:.85em}
"""

# Sorts a table by the clicked column, numbers as numbers; a second click reverses.
SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], col = th.cellIndex;
    var up = th.dataset.sort !== 'up';
    table.querySelectorAll('th').forEach(function (h) { delete h.dataset.sort; });
    th.dataset.sort = up ? 'up' : 'down';
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].textContent, y = b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return up ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="n">{value:.4g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="n">{value}</td>'
    if isinstance(value, (dict, list)):
        return f"<td>{_e(json.dumps(value, ensure_ascii=False))}</td>"
    return f"<td>{_e(value)}</td>"


def table_html(rows: Sequence[dict[str, Any]], *, sortable: bool = True) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>" for row in rows)
    cls = ' class="sortable"' if sortable else ""
    return f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _figure_html(figure: Figure, image: str | None, csv: str) -> str:
    parts = [f'<figure id="{_e(figure.name)}"><h3>{_e(figure.title)}</h3>']
    if image:
        parts.append(f'<img src="{_e(image)}" alt="{_e(figure.title)}">')
    else:
        parts.append(table_html(figure.rows))
    parts.append(f'<figcaption>{_e(figure.caption)} Data: <a href="{_e(csv)}">{_e(csv)}</a>. '
                 f'Units: {_e(", ".join(dict.fromkeys(figure.units)))}.</figcaption></figure>')
    return "".join(parts)


def _unit_html(unit: ReportUnit) -> str:
    status = f'<span class="failed">{_e(unit.status)}: {_e(unit.error)}</span>' if unit.error else _e(unit.status)
    rerun = f"heedful {unit.command} --config {unit.folder}/config.yaml" if unit.folder else ""
    env = unit.environment or {}
    versions = env.get("packages") or env.get("versions") or {}
    lines = [
        f"<tr><td>{_e(unit.id)}</td><td>{_e(unit.command)}</td><td>{status}</td>",
        f"<td>{_e(', '.join(unit.run_ids))}</td><td class=\"n\">{'' if unit.wall_s is None else f'{unit.wall_s:.0f}'}</td>",
        f"<td>{len(unit.records)}</td><td><code>{_e(rerun)}</code></td>",
        f"<td><details><summary>config, versions, seeds</summary><pre>{_e(yaml.safe_dump(unit.config, sort_keys=False))}"
        f"</pre><pre>{_e(json.dumps({'seeds': env.get('seeds'), 'versions': versions, 'python': env.get('python'), 'platform': env.get('platform')}, indent=1, default=str))}"
        "</pre></details></td></tr>",
    ]
    return "".join(lines)


def render_page(
    *, title: str, sections: Sequence[Section], images: dict[str, str], csvs: dict[str, str],
    units: Sequence[ReportUnit], provenance: dict[str, Any],
) -> str:
    """The whole page as one HTML string."""
    toc = "".join(f'<li><a href="#s{i}">{_e(s.title)}</a></li>' for i, s in enumerate(sections))
    body = []
    for i, section in enumerate(sections):
        body.append(f'<section><h2 id="s{i}">{_e(section.title)}</h2><p>{_e(section.text)}</p>')
        if section.points:
            body.append('<ul class="verdict">' + "".join(f"<li>{_e(p)}</li>" for p in section.points) + "</ul>")
        body.extend(_figure_html(f, images.get(f.name), csvs[f.name]) for f in section.figures)
        body.append("</section>")
    studies = sorted({u.study for u in units if u.study})
    unit_rows = "".join(_unit_html(u) for u in units)
    done = sum(u.status == "done" for u in units)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,"><style>{STYLE}</style></head>
<body><h1>{_e(title)}</h1>
<p class="meta">{_e('; '.join(studies) or 'runs')} · {done} of {len(units)} units done · generated by
<code>{_e(provenance['command'])}</code> with heedful {_e(provenance['heedful'])} from the stored records
(no model ran) · per-example records: <a href="data/records.parquet">data/records.parquet</a> ·
bootstrap: {provenance['n_bootstrap']} resamples, seed {provenance['seed']}.</p>
<nav><ol>{toc}<li><a href="#provenance">Units and provenance</a></li></ol></nav>
{''.join(body)}
<section><h2 id="provenance">Units and provenance</h2>
<p>Each unit's exact config; <code>heedful COMMAND --config FOLDER/config.yaml</code> re-runs it with the same run id.</p>
<div class="scroll"><table class="sortable"><thead><tr><th>unit</th><th>command</th><th>status</th><th>run ids</th>
<th>wall s</th><th>records</th><th>command to re-run</th><th>config</th></tr></thead><tbody>{unit_rows}</tbody></table></div>
</section><script>{SCRIPT}</script></body></html>
"""
