"""Does a live migration converge? Judged from its progress samples (pure).

The pre-copy model (hyperv.md section 8, fabric/hyperv/precopy.py): every pass sends what the guest
dirtied during the previous one, so passes shrink only while the dirty rate D stays below the
transfer rate R (lambda = D/R < 1). When D stays near or above R pass after pass, the memory left
does not fall: Hyper-V gives up after about ten passes and the stop-and-copy takes seconds (event
20417, a long blackout). An operator who sees that early can lower the guest's load or cancel.

A sample carries the host's pass number, both rates and, when the host reports it, the memory the
destination still lacks. Only samples of the memory copy (pass 1 and later) are judged. With the
memory left known, the model also tells a copy that converges too slowly: its passes shrink, but
not under the threshold before the pass cap, so a long stop-and-copy is ahead (SLOW).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fabric.hyperv.precopy import DEFAULT_MAX_PASSES, DEFAULT_THRESHOLD_BYTES, precopy_rounds

# Dirty rate at or above this share of the transfer rate counts as "near": at lambda = 0.9 each pass
# is still 90 % of the last one, ten passes leave a third of the memory for the blackout.
NEAR_RATIO = 0.9
# Passes in a row near or above the transfer rate before the flag: one busy pass is not a trend.
SEVERAL_PASSES = 3
# Memory left must fall by more than this share to count as falling (rates jitter between samples).
FALLING_BY = 0.02

WAITING = "waiting"  # no sample of the memory copy yet
NOT_REPORTED = "not_reported"  # the host gives no pre-copy figures: nothing to judge
CONVERGING = "converging"
SLOW = "slow"  # the passes shrink, but not enough before the pass cap (or it was hit): a long stop-and-copy
AT_RISK = "at_risk"  # the latest passes are near or above, not yet several
NOT_CONVERGING = "not_converging"

FALLING, NOT_FALLING = "falling", "not falling"


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the job's first sample
    pass_number: int  # 0: the memory copy has not begun; then 1, 2, ... (the last one is the stop-and-copy)
    transfer_mbps: float  # memory copied per second when the host says so, else bytes on the wire
    dirty_mbps: float
    memory_left: int | None = None  # bytes; None when the host does not report it


@dataclass(frozen=True)
class Pass:
    number: int
    start_s: float
    end_s: float  # time of its last sample
    transfer_mbps: float  # mean over its samples
    dirty_mbps: float
    memory_at_start: int | None
    memory_at_end: int | None
    rated: bool = True  # False: no sample of it had a transfer rate (e.g. only the final one, at 0)

    @property
    def ratio(self) -> float:
        """lambda = D/R; NaN when the pass has no transfer rate to compare with."""
        if not self.rated or self.transfer_mbps <= 0:
            return math.nan
        return self.dirty_mbps / self.transfer_mbps

    @property
    def near(self) -> bool:
        return self.ratio >= NEAR_RATIO  # False for NaN


@dataclass(frozen=True)
class Verdict:
    status: str
    passes: tuple[Pass, ...] = ()
    hot_passes: int = 0  # passes in a row, up to the latest, with the dirty rate near or above
    memory_trend: str = ""  # FALLING | NOT_FALLING | "" (unknown)
    # If the latest rates held: what the stop-and-copy would send, and the blackout it means (s).
    final_bytes: float | None = None
    final_s: float | None = None

    @property
    def pass_count(self) -> int:
        """Passes so far, by the host's own numbering: samples come once a second, so a short pass
        may have none, but the host's number of a later pass counts it."""
        return self.passes[-1].number if self.passes else 0

    @property
    def latest(self) -> Pass | None:
        """The newest pass with a transfer rate."""
        return next((p for p in reversed(self.passes) if p.rated), None)


def passes(samples: list[Sample]) -> tuple[Pass, ...]:
    """The samples of the memory copy grouped by pass, in time order. A sample without a rate (the
    copy paused between two reads) is kept for the memory left but not averaged."""
    groups: list[list[Sample]] = []
    for s in sorted(samples, key=lambda s: s.t):
        if s.pass_number < 1:
            continue
        if groups and groups[-1][0].pass_number == s.pass_number:
            groups[-1].append(s)
        else:
            groups.append([s])
    return tuple(_pass(g) for g in groups)


def _pass(group: list[Sample]) -> Pass:
    rated = [s for s in group if s.transfer_mbps > 0]
    averaged = rated or group
    memory = [s.memory_left for s in group if s.memory_left is not None]
    return Pass(
        number=group[0].pass_number,
        start_s=group[0].t,
        end_s=group[-1].t,
        transfer_mbps=sum(s.transfer_mbps for s in averaged) / len(averaged),
        dirty_mbps=sum(s.dirty_mbps for s in averaged) / len(averaged),
        memory_at_start=memory[0] if memory else None,
        memory_at_end=memory[-1] if memory else None,
        rated=bool(rated),
    )


def memory_trend(samples: list[Sample]) -> str:
    """Whether the memory left falls over the last two passes (the current one alone at first).

    Within a pass it falls at R - D (the pass's rest shrinks at R, the dirtied pages grow at D), and
    from pass to pass it falls when the passes shrink: both say the same as lambda < 1.
    """
    copy = [s for s in sorted(samples, key=lambda s: s.t) if s.pass_number >= 1 and s.memory_left is not None]
    if len(copy) < 2:
        return ""
    numbers = sorted({s.pass_number for s in copy})
    since = numbers[-2] if len(numbers) >= 2 else numbers[-1]
    window = [s for s in copy if s.pass_number >= since]
    first, last = window[0].memory_left, window[-1].memory_left
    if len(window) < 2 or not first:
        return ""
    return FALLING if last < first * (1 - FALLING_BY) else NOT_FALLING


def project(
    samples: list[Sample],
    latest: Pass,
    *,
    threshold_bytes: float = DEFAULT_THRESHOLD_BYTES,
    max_passes: int = DEFAULT_MAX_PASSES,
) -> tuple[float, float] | None:
    """The stop-and-copy ahead if the latest pass's rates held: (bytes, seconds), by the pre-copy
    model (precopy.precopy_rounds) from the memory left now. None without the memory left, or once
    the pass cap is reached (the stop-and-copy is under way)."""
    memory = [s.memory_left for s in samples if s.memory_left is not None and s.pass_number >= 1]
    passes_left = max_passes - latest.number + 1  # the memory left includes the rest of this pass
    if not memory or passes_left < 1 or not latest.transfer_mbps > 0:
        return None
    _, final = precopy_rounds(
        max(memory),  # about the VM's memory: a pass never sends more
        latest.ratio,
        threshold_bytes=threshold_bytes,
        max_passes=passes_left,
        first_bytes=memory[-1],
    )
    return final, final / (latest.transfer_mbps * 1_000_000)


def judge(
    samples: list[Sample],
    *,
    near: float = NEAR_RATIO,
    several: int = SEVERAL_PASSES,
    threshold_bytes: float = DEFAULT_THRESHOLD_BYTES,
    max_passes: int = DEFAULT_MAX_PASSES,
) -> Verdict:
    """The verdict on a migration from its samples so far (or all of them, once it ended)."""
    if not samples:
        return Verdict(WAITING)
    found = passes(samples)
    if not found:
        # A host that reports the memory left reports the passes too: the copy simply has not begun.
        reported = any(s.memory_left is not None for s in samples)
        return Verdict(WAITING if reported else NOT_REPORTED)
    judged = [p for p in found if p.rated]  # a pass read only as it ended has no rate to compare
    if not judged:
        return Verdict(NOT_REPORTED, found)  # pass numbers without rates: nothing to compare
    hot = 0
    for p in reversed(judged):
        if not p.ratio >= near:
            break
        hot += 1
    ahead = project(samples, judged[-1], threshold_bytes=threshold_bytes, max_passes=max_passes)
    # A pass beyond the cap is the stop-and-copy of a copy that never got under the threshold.
    capped = found[-1].number > max_passes
    if hot >= several:
        status = NOT_CONVERGING
    elif hot:
        status = AT_RISK
    elif capped or (ahead is not None and ahead[0] >= threshold_bytes):
        status = SLOW
    else:
        status = CONVERGING
    final_bytes, final_s = ahead if ahead is not None else (None, None)
    return Verdict(status, found, hot, memory_trend(samples), final_bytes, final_s)
