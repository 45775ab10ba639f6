"""``report.html``: one self-contained page (no file or network it needs beside itself) of a prediction.

* a header: the recording, the bundle, counts, and the scores when an annotation was given;
* the spotting score over time (SVG): the micro- and macro-expression curves, the thresholds, the
  spotted intervals (micro ones coloured by class), the annotation's intervals shaded, frames
  without a tracked face marked; curves longer than :data:`CURVE_POINTS` are reduced to that many
  points by keeping each stretch's maximum, so peaks survive;
* one row per interval: frames and seconds, spotting score, class and probabilities, and for
  recognised ones the onset and apex crops, the magnified apex, the apex flow (hue: direction,
  brightness: magnitude) and its optical strain (white: none, red: the most).

Clicking a row marks its interval on the chart. ``<body data-intervals="N">`` and a row per interval
(``tr.interval``) let a browser test check the page.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from merec.spotting.peaks import threshold

CURVE_POINTS = 2000
IMAGE_PX = 112
PALETTE = ["#d62728", "#2ca02c", "#1f77b4", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
WIDTH, HEIGHT, PAD = 960, 240, 36
TRUTH = "#e0a800"  # annotated intervals

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:1.4em;margin-bottom:4px} .meta{color:#555;margin:2px 0}
table{border-collapse:collapse;margin-top:12px;width:100%} td,th{border-bottom:1px solid #ddd;padding:6px;
text-align:left;vertical-align:middle;font-size:.9em}
tr.interval{cursor:pointer} tr.interval.selected{background:#fff6d5}
.bar{display:flex;align-items:center;gap:4px;margin:1px 0} .bar span.fill{display:inline-block;height:10px}
.bar span.name{width:70px;font-size:.8em} img{image-rendering:pixelated;border:1px solid #ccc;margin-right:3px}
figure{display:inline-block;margin:0 4px 0 0;text-align:center} figcaption{font-size:.7em;color:#666}
.scores td{border:none;padding:2px 12px 2px 0} svg{border:1px solid #ccc;background:#fafafa}
.legend span{margin-right:14px;font-size:.85em} .error{color:#a00;font-size:.85em}
rect.spotted.selected{opacity:.8;stroke:#000;stroke-width:1.5}
"""

SCRIPT = """
(function () {
  var rows = document.querySelectorAll('tr.interval');
  rows.forEach(function (row) {
    row.addEventListener('click', function () {
      var id = row.getAttribute('data-interval');
      document.querySelectorAll('.selected').forEach(function (el) { el.classList.remove('selected'); });
      row.classList.add('selected');
      var mark = document.getElementById('span-' + id);
      if (mark) { mark.classList.add('selected'); }
    });
  });
  document.body.setAttribute('data-ready', String(rows.length));
})();
"""


def _data_uri(image: np.ndarray, photo: bool) -> str:
    """A data URI of an RGB (or grey) uint8 image at its own size (the page scales it): JPEG for
    frames, PNG for the small flow pictures."""
    shown = np.ascontiguousarray(image)
    if shown.ndim == 3:
        shown = cv2.cvtColor(shown, cv2.COLOR_RGB2BGR)
    suffix, kind = (".jpg", "jpeg") if photo else (".png", "png")
    ok, data = cv2.imencode(suffix, shown, [cv2.IMWRITE_JPEG_QUALITY, 90] if photo else [])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        return ""
    return f"data:image/{kind};base64," + base64.b64encode(data.tobytes()).decode("ascii")


def flow_colours(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RGB pictures of a (3, H, W) u, v, strain map: the flow (hue = direction, value = magnitude)
    and the strain (grey to red), each scaled to its own maximum."""
    u, v, strain = (np.asarray(channel, np.float32) for channel in flow[:3])
    magnitude, angle = cv2.cartToPolar(u, v, angleInDegrees=True)
    hsv = np.zeros((*u.shape, 3), np.uint8)
    hsv[..., 0] = (angle / 2).astype(np.uint8)
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(255 * magnitude / max(float(magnitude.max()), 1e-6), 0, 255).astype(np.uint8)
    picture = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    level = np.clip(np.abs(strain) / max(float(np.abs(strain).max()), 1e-6), 0, 1)
    heat = np.stack([np.full_like(level, 255), 255 * (1 - level), 255 * (1 - level)], axis=-1).astype(np.uint8)
    return picture, heat


def reduced(times: np.ndarray, values: np.ndarray, points: int = CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``points`` (time, value) pairs: each stretch's maximum (NaN where a stretch has none)."""
    if len(values) <= points:
        return times, values
    edges = np.linspace(0, len(values), points + 1).astype(int)
    out_t, out_v = [], []
    for a, b in itertools.pairwise(edges):
        stretch = values[a:b]
        finite = np.isfinite(stretch)
        if finite.any():
            best = a + int(np.nanargmax(np.where(finite, stretch, -np.inf)))
            out_t.append(times[best])
            out_v.append(values[best])
        else:
            out_t.append(times[a])
            out_v.append(np.nan)
    return np.array(out_t), np.array(out_v)


class _Chart:
    """Seconds and curve values to SVG coordinates."""

    def __init__(self, end_s: float, top: float):
        self.end = max(end_s, 1e-6)
        self.top = max(top, 1e-6)

    def x(self, seconds: float) -> float:
        return PAD + (WIDTH - 2 * PAD) * seconds / self.end

    def y(self, value: float, row: int, rows: int) -> float:
        band = (HEIGHT - 2 * PAD) / rows
        return PAD + band * (row + 1) - band * 0.9 * min(value, self.top) / self.top


def _polyline(chart: _Chart, times: np.ndarray, values: np.ndarray, row: int, rows: int, colour: str) -> str:
    """One SVG polyline per run of finite values."""
    out, points = [], []
    for t, value in zip(times, values, strict=True):
        if np.isfinite(value):
            points.append(f"{chart.x(float(t)):.1f},{chart.y(float(value), row, rows):.1f}")
        elif points:
            out.append(points)
            points = []
    if points:
        out.append(points)
    return "".join(f'<polyline fill="none" stroke="{colour}" stroke-width="1" points="{" ".join(p)}"/>' for p in out)


def chart_svg(summary: Mapping[str, Any], table: pd.DataFrame, arrays: Mapping[str, np.ndarray] | None,
              truth: pd.DataFrame | None, seconds: Any, colours: Mapping[str, str]) -> str:  # fmt: skip
    """The spotting chart (module docstring); ``seconds``: frame number -> seconds."""
    if arrays is None:
        return "<p>Spotting was skipped: the interval was given (--onset/--offset).</p>"
    numbers = arrays["frame_numbers"]
    times = np.array([seconds(int(n)) for n in numbers])
    kinds = ("micro", "macro")
    curves = {kind: np.asarray(arrays[f"curve_{kind}"], np.float64) for kind in kinds}
    parts = [f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="spotting score over time">']  # fmt: skip
    for row, kind in enumerate(kinds):
        finite = curves[kind][np.isfinite(curves[kind])]
        top = float(finite.max()) if finite.size else 1.0
        chart = _Chart(float(times[-1]) if len(times) else 1.0, top)
        band_top, band_bottom = chart.y(top, row, 2), chart.y(0.0, row, 2)
        if truth is not None:
            for _, gt in truth[truth["type"] == kind].iterrows():
                x0, x1 = chart.x(seconds(int(gt["onset"]))), chart.x(seconds(int(gt["offset"])))
                parts.append(f'<rect class="truth" x="{x0:.1f}" y="{band_top:.1f}" width="{max(x1 - x0, 1):.1f}" '
                             f'height="{band_bottom - band_top:.1f}" fill="{TRUTH}" opacity="0.45"/>')  # fmt: skip
        for _, item in table[table["type"] == kind].iterrows():
            x0, x1 = chart.x(seconds(int(item["onset"]))), chart.x(seconds(int(item["offset"])))
            colour = colours.get(str(item["class"]), "#888")
            parts.append(f'<rect id="span-{int(item["interval"])}" class="spotted" x="{x0:.1f}" y="{band_top:.1f}" '
                         f'width="{max(x1 - x0, 1):.1f}" height="{band_bottom - band_top:.1f}" fill="{colour}" '
                         f'opacity="0.3"><title>interval {int(item["interval"])}: {kind} {int(item["onset"])}-'
                         f'{int(item["offset"])} {html.escape(str(item["class"]))}</title></rect>')  # fmt: skip
        t, v = reduced(times, curves[kind])
        parts.append(_polyline(chart, t, v, row, 2, "#333"))
        level = threshold(curves[kind], float(summary.get("spot_threshold_p", 0.0)))
        if np.isfinite(level):
            y = chart.y(level, row, 2)
            parts.append(f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c00" '
                         'stroke-dasharray="4 3" stroke-width="1"/>')  # fmt: skip
        parts.append(f'<text x="4" y="{band_top + 12:.1f}" font-size="11">{kind}</text>')
    no_face = ~np.asarray(arrays["face"], bool)
    chart = _Chart(float(times[-1]) if len(times) else 1.0, 1.0)
    for index in np.flatnonzero(no_face)[:: max(1, int(no_face.sum()) // CURVE_POINTS)]:
        parts.append(f'<rect class="noface" x="{chart.x(times[index]):.1f}" y="{HEIGHT - PAD + 4}" width="2" '
                     'height="6" fill="#a00"/>')  # fmt: skip
    for tick in np.linspace(0, float(times[-1]) if len(times) else 1.0, 9):
        parts.append(f'<text x="{chart.x(tick) - 8:.1f}" y="{HEIGHT - 6}" font-size="10">{tick:.1f}s</text>')
    parts.append("</svg>")
    return "".join(parts)


def _bars(row: pd.Series, classes: list[str], colours: Mapping[str, str]) -> str:
    bars = []
    for name in classes:
        value = row.get(f"p_{name}")
        if value is None or pd.isna(value):
            continue
        bars.append(f'<div class="bar"><span class="name">{html.escape(name)}</span><span class="fill" '
                    f'style="width:{100 * float(value):.0f}px;background:{colours[name]}"></span>'
                    f"<span>{float(value):.2f}</span></div>")  # fmt: skip
    return "".join(bars)


def _images(images: Mapping[str, np.ndarray]) -> str:
    if not images:
        return ""
    flow, strain = flow_colours(images["flow"])
    shown = [
        ("onset", images["onset"], True),
        ("apex", images["apex"], True),
        ("magnified apex", images["magnified"], True),
        ("apex flow", flow, False),
        ("strain", strain, False),
    ]
    figures = [
        f'<figure><img alt="{name}" src="{_data_uri(image, photo)}" width="{IMAGE_PX}" height="{IMAGE_PX}">'
        f"<figcaption>{name}</figcaption></figure>"
        for name, image, photo in shown
    ]
    return "".join(figures)


def _scores(summary: Mapping[str, Any]) -> str:
    scores = summary.get("scores")
    if not scores:
        return ""
    rows = []
    for kind, values in scores["spotting"].items():
        rows.append(f"<tr><td>spotting {kind}</td><td>TP {values['tp']}, FP {values['fp']}, FN {values['fn']}</td>"
                    f"<td>precision {values['precision']:.3f}</td><td>recall {values['recall']:.3f}</td>"
                    f"<td>F1 {values['f1']:.3f}</td></tr>")  # fmt: skip
    if "strs" in scores:
        rows.append(f"<tr><td>STRS</td><td>{scores['strs']['strs']:.3f}</td><td>analysis F1 "
                    f"{scores['strs']['analysis']['f1']:.3f}</td></tr>")  # fmt: skip
    return f'<h2>Against the annotation</h2><table class="scores">{"".join(rows)}</table>'


def page(summary: Mapping[str, Any], table: pd.DataFrame, arrays: Mapping[str, np.ndarray] | None,
         results: Mapping[int, Any], truth: pd.DataFrame | None, seconds: Any) -> str:  # fmt: skip
    """The report's HTML text."""
    classes = list(summary["classes"])
    colours = {name: PALETTE[k % len(PALETTE)] for k, name in enumerate(classes)}
    rows = []
    for position, (_, row) in enumerate(table.iterrows()):
        recognised = results.get(table.index[position])
        apex = "" if pd.isna(row["apex"]) else f"{int(row['apex'])} ({row['apex_s']:.2f} s)"
        score = "" if pd.isna(row["score"]) else f"{float(row['score']):.3g}"
        error = f'<div class="error">{html.escape(str(row["error"]))}</div>' if row["error"] else ""
        rows.append(
            f'<tr class="interval" data-interval="{int(row["interval"])}"><td>{int(row["interval"])}</td>'
            f"<td>{row['type']}</td><td>{int(row['onset'])}-{int(row['offset'])}<br>{row['onset_s']:.2f}-"
            f"{row['offset_s']:.2f} s</td><td>{apex}</td><td>{score}</td><td><b>{html.escape(str(row['class']))}</b>"
            f"{_bars(row, classes, colours)}{error}</td>"
            f"<td>{_images(recognised.images if recognised else {})}</td></tr>"
        )
    legend = "".join(f'<span style="color:{colours[name]}">&#9632; {html.escape(name)}</span>' for name in classes)
    gaps = summary.get("face_gaps") or []
    meta = [
        f"{html.escape(str(summary['input']))}: {summary['size'][0]}x{summary['size'][1]}, {summary['fps']:g} fps"
        + (f", {summary['frames']} frames" if summary.get("frames") else ""),
        f"bundle {html.escape(str(summary['bundle']))} (model {html.escape(str(summary['model']))}, merec "
        f"{html.escape(str(summary['merec']))}); spotting: {html.escape(str(summary['spotting']))}",
        f"{summary['intervals']['micro']} micro- and {summary['intervals']['macro']} macro-expression interval(s); "
        f"{summary['recognised']} recognised; {len(gaps)} stretch(es) without a tracked face; "
        f"{summary['seconds']:.1f} s",
    ]
    data = json.dumps({"intervals": len(table)})
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>merec: {html.escape(str(summary['video']))}</title><style>{STYLE}</style></head>"
        f'<body data-intervals="{len(table)}"><h1>merec predict: {html.escape(str(summary["video"]))}</h1>'
        + "".join(f'<p class="meta">{line}</p>' for line in meta)
        + _scores(summary)
        + f'<h2>Spotting score over time</h2><div class="legend">{legend}<span style="color:{TRUTH}">&#9632; annotated'
        '</span><span style="color:#c00">- - threshold</span><span style="color:#a00">| no face</span></div>'
        + chart_svg(summary, table, arrays, truth, seconds, colours)
        + "<h2>Intervals</h2><table><thead><tr><th>#</th><th>type</th><th>frames / time</th><th>apex</th>"
        "<th>spotting score</th><th>class</th><th>onset, apex, magnified apex, flow, strain</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        f'<script type="application/json" id="data">{data}</script><script>{SCRIPT}</script></body></html>'
    )


def write_report(path: Path, summary: Mapping[str, Any], table: pd.DataFrame, arrays: Mapping[str, np.ndarray] | None,
                 results: Mapping[int, Any], truth: pd.DataFrame | None, source: Any) -> None:  # fmt: skip
    """Write ``report.html`` (module docstring)."""
    path.write_text(page(summary, table, arrays, results, truth, source.seconds), encoding="utf-8")
