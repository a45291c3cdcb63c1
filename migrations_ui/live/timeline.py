"""A plan as a timeline chart: an SVG drawn on the server, as a string (pure; no chart library to serve).

One lane per destination host (moves that overlap on a host stack in sub-rows) or one per move;
bars carry the VM's name, a tooltip with the whole move, and a time axis runs along the bottom.
After a run, the actual start and end of each move can be drawn as a thin bar under the planned
one, so plan and reality sit side by side.

Every text that comes from the inventory is escaped for XML: a VM may be called
`x'; $(Remove-VM *) ; "<b>"` and must show as exactly that.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from migrations_ui.planning.planner import Plan, PlannedMove
from migrations_ui.preflight.facts import Kind
from utilities.texts import Msg, localized

BY_DESTINATION, BY_MOVE = "destination", "move"
COLORS = {
    Kind.LIVE: "#2f6fb0",
    Kind.LIVE_VSM: "#7a4fb5",
    Kind.QUICK: "#c07a12",
    Kind.NETWORK: "#6b7a86",
    Kind.STORAGE: "#3c8f5a",
}
ACTUAL_COLOR = "#222"
LANE_LABEL_W = 150
ROW_H, BAR_H, ACTUAL_H = 24, 16, 5
AXIS_H, LEGEND_H, PAD = 28, 22, 8
CHAR_W = 6.6  # average width of a 11px sans-serif character: labels are cut to fit their bar
# Characters XML 1.0 does not allow at all (escaping cannot save them).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class _Bar:
    row: int
    move: PlannedMove


def esc(text: object) -> str:
    """Text safe inside an SVG element or a quoted attribute."""
    return html.escape(_NOT_XML.sub("\ufffd", str(text)), quote=True)


def clock(seconds: float) -> str:
    """12 s, 4:05, 1:02:03."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def in_wall_seconds(
    plan: Plan, actual: Mapping[str, tuple[float, float | None]], per_second: float
) -> tuple[Plan, dict[str, tuple[float, float | None]]]:
    """The plan and the actual times from the fabric's seconds into wall-clock seconds."""
    k = per_second or 1.0
    moves = tuple(replace(m, start_s=m.start_s / k, end_s=m.end_s / k) for m in plan.moves)
    wall = replace(plan, moves=moves, makespan_s=plan.makespan_s / k, lower_bound_s=plan.lower_bound_s / k)
    return wall, {vm: (s / k, None if e is None else e / k) for vm, (s, e) in actual.items()}


def tick_step(span_s: float, most: int = 10) -> float:
    """A round step (1, 2, 5 x 10^k seconds, or whole minutes) giving at most `most` ticks."""
    raw = max(span_s, 1e-9) / most
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if step >= raw:
            return float(step)
    return 3600.0 * math.ceil(raw / 3600)


def timeline_svg(
    plan: Plan,
    *,
    lanes: str = BY_DESTINATION,
    actual: Mapping[str, tuple[float, float | None]] | None = None,
    width: int = 960,
    title: str = "",
    per_second: float = 1.0,
) -> str:
    """The plan's moves as an SVG timeline.

    lanes: BY_DESTINATION (a lane per destination host) or BY_MOVE (a lane per move, in start order).
    actual: by VM id, when each move really started and ended (None: still running), from a run.
    per_second: the fabric's seconds per wall-clock second (fabric.driver.fabric_seconds_per_second).
    The plan and the actual times count in the fabric's seconds; the timeline shows wall-clock
    seconds, the clock the job pages and an operator read.
    """
    plan, actual = in_wall_seconds(plan, actual or {}, per_second)
    lane_names, bars = _layout(plan, lanes)
    rows = max((b.row for b in bars), default=-1) + 1
    span = max([plan.makespan_s, *(e for _, e in actual.values() if e is not None)], default=0.0) or 1.0
    plot_x, plot_w = LANE_LABEL_W, max(100, width - LANE_LABEL_W - PAD)
    height = PAD + rows * ROW_H + AXIS_H + LEGEND_H + PAD
    summary = localized(Msg("%(n)s moves, estimated %(time)s", n=len(plan.moves), time=clock(plan.makespan_s)))
    label = title or localized(
        Msg("Evacuation plan for %(host)s", host=plan.host) if plan.host else Msg("Rebalance plan")
    )

    def x(t: float) -> float:
        return plot_x + plot_w * max(0.0, t) / span

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plan-timeline" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(label)}" font-family="sans-serif" '
        f'font-size="11">',
        f"<title>{esc(label)}: {esc(summary)}</title>",
    ]
    top = PAD
    for first_row, name, height_rows in lane_names:
        y = top + first_row * ROW_H
        out.append(
            f'<rect x="0" y="{y}" width="{width}" height="{height_rows * ROW_H}" '
            f'fill="{"#f4f6f8" if first_row % 2 == 0 else "#fff"}"/>'
        )
        out.append(
            f'<text x="{PAD}" y="{y + ROW_H / 2 + 4:.1f}" fill="#333">{esc(_cut(name, LANE_LABEL_W - PAD))}</text>'
        )
    # Where a bar's row is free again after it: a name that does not fit in its bar is written there.
    next_start: dict[int, float] = {}
    free_until = {}
    for bar in sorted(bars, key=lambda b: b.move.start_s, reverse=True):
        free_until[id(bar)] = next_start.get(bar.row, plot_x + plot_w + PAD)
        next_start[bar.row] = x(bar.move.start_s)
    for bar in bars:
        out.extend(_bar(bar, top, x, actual.get(bar.move.vm_id), free_until[id(bar)]))
    out.extend(_axis(top + rows * ROW_H, span, x, plot_x, plot_w))
    out.extend(_legend(plan, top + rows * ROW_H + AXIS_H, bool(actual)))
    out.append("</svg>")
    return "\n".join(out)


def _layout(plan: Plan, lanes: str) -> tuple[list[tuple[int, str, int]], list[_Bar]]:
    """Lanes as (first row, name, rows) and a row for every bar; overlapping bars of a lane stack."""
    if lanes == BY_MOVE:
        return [(i, m.vm, 1) for i, m in enumerate(plan.moves)], [_Bar(i, m) for i, m in enumerate(plan.moves)]
    if lanes != BY_DESTINATION:
        raise ValueError(f"lanes must be {BY_DESTINATION!r} or {BY_MOVE!r}")
    by_host: dict[str, list[PlannedMove]] = {}
    for m in plan.moves:
        by_host.setdefault(m.destination_name or m.destination, []).append(m)
    names, bars, row = [], [], 0
    for host in sorted(by_host):
        ends: list[float] = []  # end of the last bar in each sub-row of this lane
        for m in sorted(by_host[host], key=lambda m: (m.start_s, m.end_s, m.vm)):
            sub = next((i for i, end in enumerate(ends) if end <= m.start_s + 1e-9), len(ends))
            ends[sub : sub + 1] = [m.end_s]
            bars.append(_Bar(row + sub, m))
        names.append((row, host, max(1, len(ends))))
        row += max(1, len(ends))
    return names, bars


def _bar(bar: _Bar, top: float, x, real: tuple[float, float | None] | None, free_until: float) -> list[str]:
    m = bar.move
    y = top + bar.row * ROW_H + (ROW_H - BAR_H - ACTUAL_H) / 2
    x0, x1 = x(m.start_s), x(m.end_s)
    w = max(1.0, x1 - x0)
    tip = localized(
        Msg(
            "%(vm)s: %(kind)s to %(destination)s, %(start)s - %(end)s (estimated)",
            vm=m.vm,
            kind=_kind(m.transfer_type),
            destination=m.destination,
            start=clock(m.start_s),
            end=clock(m.end_s),
        )
    )
    if real is not None and real[1] is not None:
        tip += localized(Msg("; ran %(start)s - %(end)s", start=clock(real[0]), end=clock(real[1])))
    elif real is not None:
        tip += localized(Msg("; ran %(start)s - still running", start=clock(real[0])))
    parts = [
        f'<g class="move" data-kind="{esc(m.transfer_type)}"><title>{esc(tip)}</title>',
        f'<rect x="{x0:.1f}" y="{y:.1f}" width="{w:.1f}" height="{BAR_H}" rx="2" '
        f'fill="{COLORS.get(m.transfer_type, "#888")}"/>',
    ]
    name = _cut(m.vm, w - 6)
    if name == m.vm:
        parts.append(f'<text x="{x0 + 3:.1f}" y="{y + BAR_H - 4:.1f}" fill="#fff">{esc(name)}</text>')
    elif after := _cut(m.vm, free_until - x1 - 6):  # beside the bar, where its row is free
        parts.append(f'<text x="{x1 + 3:.1f}" y="{y + BAR_H - 4:.1f}" fill="#333">{esc(after)}</text>')
    elif name:
        parts.append(f'<text x="{x0 + 3:.1f}" y="{y + BAR_H - 4:.1f}" fill="#fff">{esc(name)}</text>')
    if real is not None:
        end = real[1] if real[1] is not None else real[0]
        parts.append(
            f'<rect class="actual" x="{x(real[0]):.1f}" y="{y + BAR_H + 1:.1f}" '
            f'width="{max(1.0, x(end) - x(real[0])):.1f}" height="{ACTUAL_H - 1}" fill="{ACTUAL_COLOR}"/>'
        )
    parts.append("</g>")
    return parts


def _axis(y: float, span: float, x, plot_x: float, plot_w: float) -> list[str]:
    step = tick_step(span)
    out = [f'<line x1="{plot_x}" y1="{y}" x2="{plot_x + plot_w}" y2="{y}" stroke="#999"/>']
    t = 0.0
    while t <= span + 1e-9:
        out.append(f'<line x1="{x(t):.1f}" y1="{y}" x2="{x(t):.1f}" y2="{y + 4}" stroke="#999"/>')
        out.append(f'<text x="{x(t):.1f}" y="{y + 16}" text-anchor="middle" fill="#555">{esc(clock(t))}</text>')
        t += step
    return out


def _legend(plan: Plan, y: float, with_actual: bool) -> list[str]:
    kinds = [k for k in COLORS if any(m.transfer_type == k for m in plan.moves)]
    out, cursor = [], float(LANE_LABEL_W)
    for kind in kinds:
        out.append(f'<rect x="{cursor:.1f}" y="{y + 4}" width="10" height="10" fill="{COLORS[kind]}"/>')
        out.append(f'<text x="{cursor + 14:.1f}" y="{y + 13}" fill="#333">{esc(_kind(kind))}</text>')
        cursor += 24 + CHAR_W * len(_kind(kind))
    if with_actual:
        out.append(f'<rect x="{cursor:.1f}" y="{y + 7}" width="10" height="4" fill="{ACTUAL_COLOR}"/>')
        out.append(f'<text x="{cursor + 14:.1f}" y="{y + 13}" fill="#333">{esc(localized(Msg("actual")))}</text>')
    return out


# Transfer types as VMM names them (Kind.LABELS keeps the English).
_KINDS = {
    Kind.LIVE: Msg("Live"),
    Kind.LIVE_VSM: Msg("Live (VSM)"),
    Kind.STORAGE: Msg("Storage"),
    Kind.QUICK: Msg("Quick"),
    Kind.NETWORK: Msg("Network"),
}


def _kind(kind: str) -> str:
    return localized(_KINDS[kind]) if kind in _KINDS else str(kind)


def _cut(text: str, room: float) -> str:
    """As much of text as fits in room pixels, with an ellipsis when cut; "" when not even that fits."""
    fits = int(room // CHAR_W)
    if len(text) <= fits:
        return text
    return text[: fits - 1] + "\u2026" if fits >= 3 else ""
