"""A running job's convergence chart and a host's slots chart: SVG drawn on the server, as strings.

Pure, like timeline.py (whose helpers it shares): no chart library to serve, nothing from a CDN,
the page shows the same picture with scripts off. Every SVG carries a <title> and a <desc> in
words, and each chart has a text summary of its own for the page (summary functions below), so
the meaning does not rest on colour or shape: the dirty-rate line is dashed as well as red.
"""

from __future__ import annotations

import math

from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from migrations_ui.live.convergence import (
    AT_RISK,
    CONVERGING,
    FALLING,
    NOT_CONVERGING,
    NOT_FALLING,
    NOT_REPORTED,
    SLOW,
    WAITING,
    Pass,
    Sample,
    Verdict,
)
from migrations_ui.live.slot_history import Step, peak
from migrations_ui.live.timeline import CHAR_W, clock, esc, tick_step

TRANSFER_COLOR = "#2f6fb0"
DIRTY_COLOR = "#b8322a"
MEMORY_COLOR = "#6b7a86"
POLICY_COLOR = "#7a3e9d"
HOT_BAND = "#fbe4e1"
LIVE_COLOR, STORAGE_COLOR = "#2f6fb0", "#2e7d4f"
AXIS_COLOR, TEXT_COLOR, GRID_COLOR = "#999", "#333", "#e3e6ea"
LEFT, RIGHT, TOP, BOTTOM = 64, 76, 30, 30
MAX_POINTS = 600  # a line needs no more points than the chart has pixels; the verdict uses every sample
PASS_LABEL_W = 22  # room a "P10" label needs between two pass lines
MIB, GIB = 1024**2, 1024**3


def percent(ratio: float) -> str:
    if math.isnan(ratio):
        return "—"  # no transfer rate to compare with
    return f"{round(ratio * 100)} %" if math.isfinite(ratio) else "∞"


# --- the words ------------------------------------------------------------------------------------

RUNNING, SUCCEEDED, STOPPED = "running", "succeeded", "stopped"


def job_summary(verdict: Verdict, outcome: str = RUNNING) -> str:
    """One sentence on convergence. outcome: RUNNING, SUCCEEDED, or STOPPED (failed or cancelled)."""
    if verdict.status == WAITING:
        return _("No pass of the memory copy yet.") if outcome == RUNNING else _("The memory copy never began.")
    if verdict.status == NOT_REPORTED:
        return _(
            "The host reports no pre-copy figures (pass, transfer and dirty rate): convergence cannot be judged here."
        )
    n = verdict.pass_count  # the pass the host reports (the status's Pass), not the passes sampled
    latest = verdict.latest
    share = percent(latest.ratio)
    if verdict.status == NOT_CONVERGING:
        if outcome == RUNNING:
            text = ngettext(
                "Not converging: the dirty rate has stayed near or above the transfer rate for %(hot)d pass "
                "(now %(share)s of it)",
                "Not converging: the dirty rate has stayed near or above the transfer rate for %(hot)d passes "
                "(now %(share)s of it)",
                verdict.hot_passes,
            )
        else:
            text = ngettext(
                "Did not converge: the dirty rate stayed near or above the transfer rate for %(hot)d pass",
                "Did not converge: the dirty rate stayed near or above the transfer rate for %(hot)d passes",
                verdict.hot_passes,
            )
        text = text % {"hot": verdict.hot_passes, "share": share}
        if verdict.memory_trend == NOT_FALLING:
            text += _(", memory left not falling")
        return text + "." + (_ahead(verdict) if outcome == RUNNING else "")
    if outcome == SUCCEEDED and verdict.status == SLOW:
        return _(
            "Converged only at the pass cap, after %(n)d passes: the stop-and-copy carried what was left "
            "(see the blackout)."
        ) % {"n": n}
    if outcome == SUCCEEDED:
        text = ngettext("Converged in %(n)d pass", "Converged in %(n)d passes", n) % {"n": n}
        if verdict.status == AT_RISK:
            text += _(", the dirty rate close to the transfer rate at the end (%(share)s)") % {"share": share}
        return text + "."
    if outcome == STOPPED:
        prefix = ngettext("Stopped after %(n)d pass: ", "Stopped after %(n)d passes: ", n) % {"n": n}
        state = _("it was converging") if verdict.status == CONVERGING else _("it might not have converged in time")
        return prefix + state + "."
    if verdict.status == AT_RISK:
        return (
            _("May not converge: in pass %(pass)d the dirty rate is %(share)s of the transfer rate")
            % {"pass": latest.number, "share": share}
            + "."
            + _ahead(verdict)
        )
    if verdict.status == SLOW:
        text = ngettext(
            "Converging slowly: %(n)d pass, the dirty rate %(share)s of the transfer rate.",
            "Converging slowly: %(n)d passes, the dirty rate %(share)s of the transfer rate.",
            n,
        )
        text = text % {"n": n, "share": share}
        if verdict.final_bytes is None:  # no projection: the cap is reached, this is the stop-and-copy
            return text + " " + _("The pass cap is reached: the stop-and-copy sends what is left.")
        return text + _ahead(verdict)
    text = ngettext("Converging: %(n)d pass", "Converging: %(n)d passes", n) % {"n": n}
    if verdict.memory_trend == FALLING:
        text += _(", memory left falling")
    elif verdict.memory_trend == NOT_FALLING:
        text += _(", memory left not falling yet")
    return text + "."


def job_badge(verdict: Verdict, outcome: str = RUNNING) -> tuple[str, str] | None:
    """(css class, words) of the verdict's badge; None when there is nothing to judge."""
    if verdict.status in (WAITING, NOT_REPORTED):
        return None
    if verdict.status == NOT_CONVERGING:
        return "bad", _("Not converging") if outcome == RUNNING else _("Did not converge")
    if outcome == SUCCEEDED:
        return ("warn", _("Converged slowly")) if verdict.status == SLOW else ("ok", _("Converged"))
    if outcome != RUNNING:
        return None
    if verdict.status == SLOW:
        return "warn", _("Converging slowly")
    if verdict.status == AT_RISK:
        return "warn", _("May not converge")
    return "ok", _("Converging")


def slots_summary(series: list[Step], live_limit: int, storage_limit: int) -> str:
    most_live, most_storage = peak(series)
    now = series[-1] if series else Step(0, 0, 0)
    return _(
        "In the last hour at most %(live)d of %(live_limit)d live and %(storage)d of %(storage_limit)d storage "
        "migration slots were in use; now %(live_now)d live and %(storage_now)d storage."
    ) % {
        "live": most_live,
        "live_limit": live_limit,
        "storage": most_storage,
        "storage_limit": storage_limit,
        "live_now": now.live,
        "storage_now": now.storage,
    }


def _ahead(verdict: Verdict) -> str:
    """What the pre-copy model projects for the stop-and-copy, when it can tell."""
    if verdict.final_bytes is None or verdict.final_s is None:
        return ""
    return " " + _("If the rates hold, the stop-and-copy sends %(bytes)s: about %(s)s of blackout.") % {
        "bytes": filesizeformat(verdict.final_bytes),
        "s": _seconds(verdict.final_s),
    }


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 60 else clock(s)


# --- the convergence chart -------------------------------------------------------------------------


def copy_samples(samples: list[Sample]) -> list[Sample]:
    """The samples the chart draws: the memory copy (pass 1 on), at most MAX_POINTS of them, evenly
    spread and always with the newest."""
    copy = sorted((s for s in samples if s.pass_number >= 1), key=lambda s: s.t)
    if len(copy) <= MAX_POINTS:
        return copy
    stride = len(copy) / MAX_POINTS
    picked = [copy[int(i * stride)] for i in range(MAX_POINTS - 1)]
    return [*picked, copy[-1]]


def nice_ceiling(value: float) -> float:
    """The next of 1, 2, 2.5, 5 x 10^k at or above value (an axis' top)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-9):
            return step * power
    return 10 * power


def job_chart_svg(
    samples: list[Sample],
    verdict: Verdict,
    *,
    width: int = 960,
    height: int = 240,
    title="",
    marks: list[tuple[float, str]] = (),
) -> str:
    """Transfer and dirty rate (left axis, MB/s) and memory left (right axis, shaded) over the passes.

    Passes whose dirty rate was near or above the transfer rate are shaded red. marks: (t, text) of
    moments to mark with a vertical line (where the move timeout policy acted), on the samples' clock.
    Returns "" when there is nothing to draw (no sample of the memory copy).
    """
    points = copy_samples(samples)
    if not points:
        return ""
    label = title or _("Convergence of the memory copy")
    t0, t1 = points[0].t, points[-1].t
    span = (t1 - t0) or 1.0
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    top_rate = nice_ceiling(max(max(s.transfer_mbps, s.dirty_mbps) for s in points) * 1.05)
    memory = [s for s in points if s.memory_left is not None]
    most = max((s.memory_left for s in memory), default=0) or 1
    unit = GIB if most >= GIB else MIB  # round in binary units: the labels are filesizeformat's
    top_memory = nice_ceiling(most / unit) * unit
    # A pass read only as it ended (the final sample, rate 0) would pull the lines down to nothing.
    rated = {p.number for p in verdict.passes if p.rated}
    lines = [s for s in points if s.pass_number in rated]

    def x(t: float) -> float:
        return LEFT + plot_w * (t - t0) / span

    def y_rate(v: float) -> float:
        return TOP + plot_h * (1 - min(v, top_rate) / top_rate)

    def y_memory(v: float) -> float:
        return TOP + plot_h * (1 - v / top_memory)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart convergence-chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="convergence-title convergence-desc" '
        f'font-family="sans-serif" font-size="11">',
        f'<title id="convergence-title">{esc(label)}</title>',
        f'<desc id="convergence-desc">{esc(_describe_job(verdict))}</desc>',
    ]
    out.extend(_pass_bands(verdict.passes, t1, x, plot_h))
    out.extend(_grid(plot_w, plot_h))
    if memory:
        base = TOP + plot_h
        coords = " ".join(f"{x(s.t):.1f},{y_memory(s.memory_left):.1f}" for s in memory)
        out.append(
            f'<polygon class="memory-left" points="{x(memory[0].t):.1f},{base} {coords} {x(memory[-1].t):.1f},{base}" '
            f'fill="{MEMORY_COLOR}" fill-opacity="0.22" stroke="{MEMORY_COLOR}" stroke-width="1"/>'
        )
    out.append(_line("transfer-rate", [(x(s.t), y_rate(s.transfer_mbps)) for s in lines], TRANSFER_COLOR, ""))
    out.append(_line("dirty-rate", [(x(s.t), y_rate(s.dirty_mbps)) for s in lines], DIRTY_COLOR, "6 3"))
    out.extend(_rate_axis(top_rate, y_rate))
    if memory:
        out.extend(_memory_axis(top_memory, y_memory, width))
    out.extend(_time_axis(t0, span, x, TOP + plot_h))
    for t, text in marks:
        # The policy acts just after a read, which may come after the last sample drawn: at the edge then.
        at = x(min(max(t, t0), t1))
        out.append(
            f'<line class="policy-mark" x1="{at:.1f}" y1="{TOP}" x2="{at:.1f}" y2="{TOP + plot_h}" '
            f'stroke="{POLICY_COLOR}" stroke-width="2"><title>{esc(text)}</title></line>'
        )
    entries = [(_("Transfer rate"), TRANSFER_COLOR, ""), (_("Dirty rate"), DIRTY_COLOR, "6 3")]
    if memory:
        entries.append((_("Memory left"), MEMORY_COLOR, "area"))
    if marks:
        entries.append((_("Move timeout"), POLICY_COLOR, ""))
    out.extend(_legend(entries, TOP - 12))
    out.append("</svg>")
    return "\n".join(out)


def _describe_job(verdict: Verdict) -> str:
    rows = [
        _("Pass %(n)d: transfer %(r).0f MB/s, dirty %(d).0f MB/s (%(share)s)")
        % {"n": p.number, "r": p.transfer_mbps, "d": p.dirty_mbps, "share": percent(p.ratio)}
        for p in verdict.passes
    ]
    return "; ".join([job_summary(verdict), *rows])


def _pass_bands(passes: tuple[Pass, ...], end: float, x, plot_h: float) -> list[str]:
    out = []
    for i, p in enumerate(passes):
        x0 = x(p.start_s)
        x1 = x(passes[i + 1].start_s) if i + 1 < len(passes) else x(end)
        if p.near:
            tip = _("Pass %(n)d: the dirty rate is %(share)s of the transfer rate") % {
                "n": p.number,
                "share": percent(p.ratio),
            }
            out.append(
                f'<rect class="hot-pass" x="{x0:.1f}" y="{TOP}" width="{max(1.0, x1 - x0):.1f}" height="{plot_h}" '
                f'fill="{HOT_BAND}"><title>{esc(tip)}</title></rect>'
            )
        if i:
            out.append(
                f'<line class="pass-start" x1="{x0:.1f}" y1="{TOP}" x2="{x0:.1f}" y2="{TOP + plot_h}" '
                f'stroke="{AXIS_COLOR}" stroke-dasharray="2 3"/>'
            )
        if x1 - x0 >= PASS_LABEL_W:
            out.append(f'<text x="{x0 + 3:.1f}" y="{TOP + 11}" fill="#555">P{p.number}</text>')
    return out


def _grid(plot_w: float, plot_h: float) -> list[str]:
    return [
        f'<line x1="{LEFT}" y1="{TOP + plot_h * f:.1f}" x2="{LEFT + plot_w}" y2="{TOP + plot_h * f:.1f}" '
        f'stroke="{GRID_COLOR}"/>'
        for f in (0.0, 0.25, 0.5, 0.75)
    ]


def _line(css: str, coords: list[tuple[float, float]], color: str, dash: str) -> str:
    pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in coords)
    dashing = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline class="{css}" points="{pts}" fill="none" stroke="{color}" stroke-width="2"{dashing}/>'


def _rate_axis(top: float, y) -> list[str]:
    out = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{y(0):.1f}" stroke="{AXIS_COLOR}"/>']
    for v in (0, top / 2, top):
        out.append(
            f'<text x="{LEFT - 4}" y="{y(v) + 4:.1f}" text-anchor="end" fill="#555">{esc(_number(v))} MB/s</text>'
        )
    return out


def _memory_axis(top: float, y, width: int) -> list[str]:
    right = width - RIGHT
    out = [f'<line x1="{right}" y1="{TOP}" x2="{right}" y2="{y(0):.1f}" stroke="{AXIS_COLOR}"/>']
    for v in (0, top / 2, top):
        out.append(f'<text x="{right + 4}" y="{y(v) + 4:.1f}" fill="#555">{esc(filesizeformat(v))}</text>')
    return out


def _time_axis(t0: float, span: float, x, base: float, *, label=clock) -> list[str]:
    """Ticks along the bottom, at round steps from the chart's start (label: how a tick reads)."""
    out = [f'<line x1="{x(t0):.1f}" y1="{base}" x2="{x(t0 + span):.1f}" y2="{base}" stroke="{AXIS_COLOR}"/>']
    step = tick_step(span, most=8)
    t = 0.0
    while t <= span + 1e-9:
        at = x(t0 + t)
        out.append(f'<line x1="{at:.1f}" y1="{base}" x2="{at:.1f}" y2="{base + 4}" stroke="{AXIS_COLOR}"/>')
        out.append(f'<text x="{at:.1f}" y="{base + 16}" text-anchor="middle" fill="#555">{esc(label(t))}</text>')
        t += step
    return out


def _legend(entries: list[tuple[str, str, str]], y: float) -> list[str]:
    """Swatches along the top: (label, colour, dash pattern or "" or "area")."""
    out, cursor = [], float(LEFT)
    for text, color, dash in entries:
        if dash == "area":
            out.append(
                f'<rect x="{cursor:.1f}" y="{y - 8}" width="16" height="9" fill="{color}" fill-opacity="0.22" '
                f'stroke="{color}"/>'
            )
        else:
            dashing = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(
                f'<line x1="{cursor:.1f}" y1="{y - 4}" x2="{cursor + 16:.1f}" y2="{y - 4}" stroke="{color}" '
                f'stroke-width="2"{dashing}/>'
            )
        out.append(f'<text x="{cursor + 20:.1f}" y="{y}" fill="{TEXT_COLOR}">{esc(text)}</text>')
        cursor += 32 + CHAR_W * len(text)
    return out


def _number(v: float) -> str:
    return f"{v:.0f}" if v >= 10 or v == int(v) else f"{v:.1f}"


# --- the slots chart ----------------------------------------------------------------------------------


def slots_chart_svg(
    series: list[Step],
    live_limit: int,
    storage_limit: int,
    *,
    window_s: float = 3600.0,
    width: int = 960,
    height: int = 170,
    title: str = "",
) -> str:
    """Live and storage slots in use over the window (a step line each) under the host's limits.

    series: from slot_history.steps with times in seconds relative to now (-window_s .. 0).
    """
    label = title or _("Migration slots in use, last hour")
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    start = -window_s
    most_live, most_storage = peak(series)
    top = max(1, live_limit, storage_limit, most_live, most_storage)

    def x(t: float) -> float:
        return LEFT + plot_w * (t - start) / window_s

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart slots-chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="slots-title slots-desc" '
        f'font-family="sans-serif" font-size="11">',
        f'<title id="slots-title">{esc(label)}</title>',
        f'<desc id="slots-desc">{esc(slots_summary(series, live_limit, storage_limit))}</desc>',
    ]
    for v in range(0, top + 1, max(1, math.ceil(top / 4))):
        out.append(f'<line x1="{LEFT}" y1="{y(v):.1f}" x2="{LEFT + plot_w}" y2="{y(v):.1f}" stroke="{GRID_COLOR}"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" fill="#555">{v}</text>')
    for name, limit, color in (("live", live_limit, LIVE_COLOR), ("storage", storage_limit, STORAGE_COLOR)):
        # Limits are today's: a setting changed during the hour is drawn at its new value.
        out.append(
            f'<line class="{name}-limit" x1="{LEFT}" y1="{y(limit):.1f}" x2="{LEFT + plot_w}" y2="{y(limit):.1f}" '
            f'stroke="{color}" stroke-opacity="0.6" stroke-dasharray="1 3"/>'
        )
    out.append(_steps("storage-in-use", series, "storage", x, y, STORAGE_COLOR, "6 3", 0.0))
    # Drawn 1.5 px higher so that it stays visible where both counts are equal.
    out.append(_steps("live-in-use", series, "live", x, y, LIVE_COLOR, "", -1.5))
    out.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{y(0):.1f}" stroke="{AXIS_COLOR}"/>')
    out.extend(_time_axis(start, window_s, x, y(0), label=_minutes_ago(window_s)))
    out.extend(
        _legend(
            [
                (_("Live slots in use (limit %(n)d)") % {"n": live_limit}, LIVE_COLOR, ""),
                (_("Storage slots in use (limit %(n)d)") % {"n": storage_limit}, STORAGE_COLOR, "6 3"),
            ],
            TOP - 12,
        )
    )
    out.append("</svg>")
    return "\n".join(out)


def _minutes_ago(window_s: float):
    def label(t: float) -> str:
        left = window_s - t
        return _("now") if left < 1 else f"-{round(left / 60)} min"

    return label


def _steps(css: str, series: list[Step], kind: str, x, y, color: str, dash: str, lift: float) -> str:
    coords: list[tuple[float, float]] = []
    for i, step in enumerate(series):
        level = y(getattr(step, kind)) + lift
        coords.append((x(step.t), level))
        if i + 1 < len(series):
            coords.append((x(series[i + 1].t), level))
    return _line(css, coords, color, dash)
