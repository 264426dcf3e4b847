"""The comparison as one self-contained HTML file: tables, the figure and audio players inlined
(base64 ``data:`` URIs), no external script, style sheet or file."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from typing import Any

from rlhf.compare.audio import AudioSample

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.yes{color:#0a6b0a;font-weight:600}.muted{color:#777}.caption{font-size:.8em;color:#555}
img{max-width:100%;border:1px solid #ddd}audio{width:240px}
"""


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    return f"{float(value):.{digits}g}"


def _interval(lo: Any, hi: Any) -> str:
    return "null" if lo is None or hi is None else f"[{_fmt(lo)}, {_fmt(hi)}]"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _groups_table(result: Mapping[str, Any]) -> str:
    groups = result["groups"]
    head = "".join(f"<th>{_e(g['variant'])}<br><span class='muted'>{_e(g['fingerprint'])}, "
                   f"n={g['n']}</span></th>" for g in groups)
    rows = []
    for metric in result.get("metrics", []):
        cells = []
        for g in groups:
            s = g["metrics"].get(metric) or {}
            if s.get("mean") is None:
                cells.append("<td class='muted'>–</td>")
                continue
            sd = f" ± {_fmt(s['std'])}" if s.get("std") is not None else ""
            cells.append(f"<td class='num'>{_fmt(s['mean'])}{sd}<br><span class='caption'>"
                         f"95% CI {_interval(s.get('ci_low'), s.get('ci_high'))}, "
                         f"n={s.get('n')}</span></td>")
        rows.append(f"<tr><th>{_e(metric)}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def _pairs_table(result: Mapping[str, Any]) -> str:
    if not result["pairs"]:
        return "<p class='muted'>No pairs (fewer than two groups).</p>"
    rows = []
    for p in result["pairs"]:
        ex = p["excludes_zero"]
        mark = ("<span class='yes'>yes</span>" if ex else "no") if ex is not None else \
            "<span class='muted'>n/a</span>"
        rows.append(f"<tr><td>{_e(p['metric'])}</td><td>{_e(p['a'])} − {_e(p['b'])}</td>"
                    f"<td class='num'>{_fmt(p['diff'])}</td>"
                    f"<td class='num'>{_interval(p['ci_low'], p['ci_high'])}</td>"
                    f"<td>{mark}</td></tr>")
    return ("<table><tr><th>metric</th><th>difference</th><th>mean</th><th>95% CI</th>"
            f"<th>excludes 0</th></tr>{''.join(rows)}</table>")


def _excluded(result: Mapping[str, Any]) -> str:
    if not result["excluded"]:
        return ""
    items = "".join(f"<li>{_e(x['run_name'] or x['run_id'])} (variant {_e(x['variant'])}, "
                    f"seed {_e(x['seed'])}): {_e(x['reason'])}</li>" for x in result["excluded"])
    return f"<h2>Excluded runs</h2><ul>{items}</ul>"


def _audio(audio: Mapping[str, tuple[Any, list[AudioSample]]], order: list[str]) -> str:
    groups = [g for g in order if g in audio]
    if not groups:
        return ""
    keys: list[str] = []
    for g in groups:
        keys += [s.key for s in audio[g][1] if s.key not in keys]
    head = "".join(f"<th>{_e(g)}<br><span class='muted'>seed {_e(audio[g][0].seed)}</span></th>"
                   for g in groups)
    rows = []
    for key in keys:
        cells = []
        for g in groups:
            sample = next((s for s in audio[g][1] if s.key == key), None)
            if sample is None:
                cells.append("<td class='muted'>–</td>")
                continue
            data = base64.b64encode(sample.data).decode("ascii")
            caption = f"<div class='caption'>{_e(sample.caption)}</div>" if sample.caption else ""
            cells.append(f"<td><audio controls preload='none' src='data:{sample.mime};base64,"
                         f"{data}'></audio>{caption}</td>")
        rows.append(f"<tr><th>{_e(key)}</th>{''.join(cells)}</tr>")
    return ("<h2>Audio samples</h2><p class='caption'>Evaluation samples of one run per variant "
            f"(its lowest seed), side by side.</p><table><tr><th>sample</th>{head}</tr>"
            f"{''.join(rows)}</table>")


def render(result: Mapping[str, Any], title: str, figure_png: bytes | None = None,
           audio: Mapping[str, tuple[Any, list[AudioSample]]] | None = None) -> str:
    """The HTML report of a comparison ``result`` (:func:`rlhf.compare.table.compare`)."""
    method = result["method"]
    figure = ""
    if figure_png:
        data = base64.b64encode(figure_png).decode("ascii")
        figure = ("<h2>Curves and intervals</h2>"
                  f"<img alt='comparison' src='data:image/png;base64,{data}'>")
    order = [g["variant"] for g in result["groups"]]
    note = (f"Groups by {_e(result['group_by'])}; mean ± sample sd over runs (seeds); "
            f"{method['confidence']:.0%} percentile-bootstrap interval of the mean "
            f"({method['resamples']} resamples, seed {method['seed']}); null for n &lt; 2. "
            "Differences: mean(a) − mean(b), groups resampled independently.")
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1><p class='caption'>{note}</p>"
        f"<h2>Metrics per group</h2>{_groups_table(result)}"
        f"<h2>Pairwise differences</h2>{_pairs_table(result)}"
        f"{_excluded(result)}{figure}{_audio(audio or {}, order)}</body></html>\n"
    )
