"""Past moves of a pair of hosts as a chart: the time of each move against the VM's memory (dots),
and the planner's estimate for that pair as a dashed line beside them. SVG drawn on the server, as
a string, like charts.py (no chart library, the same picture with scripts off); the <desc> says in
words how far the moves were from the estimate, so the meaning does not rest on the picture.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass

from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from migrations_ui.live.charts import AXIS_COLOR, GRID_COLOR, TEXT_COLOR, nice_ceiling
from migrations_ui.live.timeline import clock, esc

POINT_COLOR, ESTIMATE_COLOR = "#2f6fb0", "#b8322a"
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 40, 30


@dataclass(frozen=True)
class DurationPoint:
    memory_bytes: float
    seconds: float  # the move's time on the host, wall clock
    label: str  # the job, for the dot's tooltip


def estimate_at(line: list[tuple[float, float]], memory: float) -> float:
    """The line's seconds at this memory size (linear between its points)."""
    if not line:
        return 0.0
    for (m0, s0), (m1, s1) in itertools.pairwise(line):
        if m0 <= memory <= m1:
            return s0 if m1 == m0 else s0 + (s1 - s0) * (memory - m0) / (m1 - m0)
    return line[-1][1] if memory > line[-1][0] else line[0][1]


def summary(points: list[DurationPoint], line: list[tuple[float, float]]) -> str:
    """How the moves compare with the estimate, in one sentence."""
    if not points:
        return _("No succeeded live move to show.")
    ratios = [p.seconds / e for p in points if (e := estimate_at(line, p.memory_bytes)) > 0]
    text = ngettext("%(n)d move", "%(n)d moves", len(points)) % {"n": len(points)}
    if not ratios:
        return text + "."
    return (
        text
        + ": "
        + _("the median move took %(share)d %% of the estimate.") % {"share": round(statistics.median(ratios) * 100)}
    )


def duration_chart_svg(
    points: list[DurationPoint],
    line: list[tuple[float, float]],
    *,
    title: str,
    line_label: str,
    ident: str = "pair",
    width: int = 520,
    height: int = 250,
) -> str:
    """Dots for the moves, the estimate as a dashed line; memory along x, seconds up y."""
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    most_memory = max([p.memory_bytes for p in points] + [m for m, _ in line] + [1.0])
    unit = 1024**3 if most_memory >= 1024**3 else 1024**2
    top_memory = nice_ceiling(most_memory / unit) * unit
    top_s = nice_ceiling(max([p.seconds for p in points] + [s for _, s in line] + [1.0]) * 1.05)

    def x(memory: float) -> float:
        return LEFT + plot_w * memory / top_memory

    def y(seconds: float) -> float:
        return TOP + plot_h * (1 - min(seconds, top_s) / top_s)

    ids = f"history-{esc(ident)}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart history-chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="{ids}-title {ids}-desc" '
        f'font-family="sans-serif" font-size="11">',
        f'<title id="{ids}-title">{esc(title)}</title>',
        f'<desc id="{ids}-desc">{esc(summary(points, line))}</desc>',
    ]
    for f in (0.0, 0.25, 0.5, 0.75):
        out.append(
            f'<line x1="{LEFT}" y1="{TOP + plot_h * f:.1f}" x2="{LEFT + plot_w}" y2="{TOP + plot_h * f:.1f}" '
            f'stroke="{GRID_COLOR}"/>'
        )
    base = TOP + plot_h
    out.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="{AXIS_COLOR}"/>')
    out.append(f'<line x1="{LEFT}" y1="{base}" x2="{LEFT + plot_w}" y2="{base}" stroke="{AXIS_COLOR}"/>')
    for v in (0, top_s / 2, top_s):
        out.append(f'<text x="{LEFT - 4}" y="{y(v) + 4:.1f}" text-anchor="end" fill="#555">{esc(clock(v))}</text>')
    for v in (0, top_memory / 2, top_memory):
        out.append(
            f'<text x="{x(v):.1f}" y="{base + 16}" text-anchor="middle" fill="#555">{esc(filesizeformat(v))}</text>'
        )
    if line:
        pts = " ".join(f"{x(m):.1f},{y(s):.1f}" for m, s in line)
        out.append(
            f'<polyline class="estimate" points="{pts}" fill="none" stroke="{ESTIMATE_COLOR}" stroke-width="2" '
            f'stroke-dasharray="6 3"/>'
        )
    for p in points:
        tip = f"{p.label}: {filesizeformat(p.memory_bytes)}, {clock(p.seconds)}"
        out.append(
            f'<circle class="move" cx="{x(p.memory_bytes):.1f}" cy="{y(p.seconds):.1f}" r="3.5" fill="{POINT_COLOR}" '
            f'fill-opacity="0.75"><title>{esc(tip)}</title></circle>'
        )
    # The legend in two rows along the top: a German estimate's words need the width.
    moves = _("Moves (time on the host)")
    out.append(f'<circle cx="{LEFT + 8}" cy="10" r="3.5" fill="{POINT_COLOR}"/>')
    out.append(f'<text x="{LEFT + 20}" y="14" fill="{TEXT_COLOR}">{esc(moves)}</text>')
    out.append(
        f'<line x1="{LEFT}" y1="24" x2="{LEFT + 16}" y2="24" stroke="{ESTIMATE_COLOR}" stroke-width="2" '
        f'stroke-dasharray="6 3"/>'
    )
    out.append(f'<text x="{LEFT + 20}" y="28" fill="{TEXT_COLOR}">{esc(line_label)}</text>')
    out.append("</svg>")
    return "\n".join(out)
