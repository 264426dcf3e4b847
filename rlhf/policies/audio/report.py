"""A self-contained HTML page of speech samples: per sentence, one ``<audio controls>`` player
per policy (before / after ...), the clips embedded as base64 16-bit WAV data URIs, so the file
plays anywhere (an MLflow artifact, an e-mail attachment) with nothing beside it."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def wav_data_uri(wave: np.ndarray, sample_rate: int) -> str:
    """``data:audio/wav;base64,...`` of a mono clip ``[samples]`` in [-1, 1] (16-bit PCM)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0), int(sample_rate),
             format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def samples_page(title: str, labels: Sequence[str], rows: Sequence[Mapping[str, Any]],
                 summary: Mapping[str, Mapping[str, float]] | None = None) -> str:
    """The page. ``rows``: ``{"sentence", "<label>": {"wave", "sample_rate", "controls",
    "scores": {name: value}}}`` per sentence; ``summary``: ``{label: {metric: mean}}``, shown
    as a table on top. All text is HTML-escaped (model output is untrusted)."""
    out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
           f"<title>{html.escape(title)}</title>",
           "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
           "td,th{border:1px solid #ccc;padding:6px;vertical-align:top}"
           "small{color:#555}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    if summary:
        metrics = sorted({m for v in summary.values() for m in v})
        out.append("<table><tr><th>policy</th>"
                   + "".join(f"<th>{html.escape(m)}</th>" for m in metrics) + "</tr>")
        for label, values in summary.items():
            out.append(f"<tr><td>{html.escape(label)}</td>"
                       + "".join(f"<td>{_fmt(values.get(m, ''))}</td>" for m in metrics)
                       + "</tr>")
        out.append("</table><p></p>")
    out.append("<table><tr><th>sentence</th>"
               + "".join(f"<th>{html.escape(label)}</th>" for label in labels) + "</tr>")
    for row in rows:
        cells = [f"<td>{html.escape(str(row['sentence']))}</td>"]
        for label in labels:
            sample = row.get(label)
            if sample is None:
                cells.append("<td></td>")
                continue
            scores = "<br>".join(f"{html.escape(k)}: {_fmt(v)}"
                                 for k, v in sample.get("scores", {}).items())
            cells.append(
                "<td><audio controls preload='none' src='"
                f"{wav_data_uri(sample['wave'], sample['sample_rate'])}'></audio><br>"
                f"<small>controls: <code>{html.escape(sample.get('controls') or '(none)')}"
                f"</code><br>{scores}</small></td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table></body></html>")
    return "\n".join(out)
