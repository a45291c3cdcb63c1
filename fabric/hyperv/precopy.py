"""The pre-copy model of a live migration (hyperv.md section 8), as pure functions.

Memory M, transfer rate R, dirty rate D, lambda = D/R. Pass 0 sends all of M; every later pass sends
what the guest dirtied while the previous pass ran (M * lambda^i, never more than M). Passes stop
when that remainder is under a threshold or after about ten passes; the VM then pauses while the
remainder is sent (stop-and-copy, the "blackout") and resumes on the destination.

The simulator runs the same rounds as a fluid simulation whose rate may change between passes;
this module is the closed form it is checked against, and its estimate of the bytes still to go.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Hyper-V gives up pre-copying after about ten passes (hyperv.md section 8).
DEFAULT_MAX_PASSES = 10
# Small enough that the stop-and-copy of the rest stays well under a second on 10 GbE. UNCONFIRMED.
DEFAULT_THRESHOLD_BYTES = 32 * 1024 * 1024
# Time to resume the VM on the destination after the last bytes arrive. UNCONFIRMED.
DEFAULT_RESUME_S = 0.2


@dataclass(frozen=True)
class PrecopyPlan:
    """The rounds of one live migration at a constant rate.

    pass_bytes are the pre-copy passes (pass 0 = all memory); final_bytes is the stop-and-copy round.
    total_bytes is V, duration_s is T = V/R (the VM's resume comes on top, inside blackout_s).
    """

    memory_bytes: float
    rate_bytes_s: float
    dirty_bytes_s: float
    pass_bytes: tuple[float, ...]
    final_bytes: float
    total_bytes: float
    duration_s: float
    blackout_s: float
    converged: bool

    @property
    def passes(self) -> int:
        return len(self.pass_bytes)

    @property
    def ratio(self) -> float:
        """lambda = D/R: below 1 the passes shrink, at or above 1 they never do."""
        return self.dirty_bytes_s / self.rate_bytes_s


def next_pass_bytes(memory_bytes: float, dirtied_bytes: float) -> float:
    """What the next round must send: what was dirtied, but a page dirtied twice is sent once."""
    return min(memory_bytes, dirtied_bytes)


def stop_precopy(rest_bytes: float, passes_done: int, *, threshold_bytes: float, max_passes: int) -> bool:
    """After a pass: is it time for the stop-and-copy? The simulator asks the same question."""
    return rest_bytes < threshold_bytes or passes_done >= max_passes


def precopy_rounds(
    memory_bytes: float,
    ratio: float,
    *,
    threshold_bytes: float = DEFAULT_THRESHOLD_BYTES,
    max_passes: int = DEFAULT_MAX_PASSES,
    first_bytes: float | None = None,
) -> tuple[list[float], float]:
    """Sizes of the pre-copy passes and of the stop-and-copy round.

    The first pass sends first_bytes (default: all memory); max_passes is how many passes are
    still allowed, so the simulator can ask "how much is left" in the middle of a migration.
    """
    size = memory_bytes if first_bytes is None else first_bytes
    passes: list[float] = []
    while True:
        passes.append(size)
        rest = next_pass_bytes(memory_bytes, size * ratio)
        if stop_precopy(rest, len(passes), threshold_bytes=threshold_bytes, max_passes=max_passes):
            return passes, rest
        size = rest


def plan_precopy(
    memory_bytes: float,
    rate_bytes_s: float,
    dirty_bytes_s: float,
    *,
    threshold_bytes: float = DEFAULT_THRESHOLD_BYTES,
    max_passes: int = DEFAULT_MAX_PASSES,
    resume_s: float = DEFAULT_RESUME_S,
) -> PrecopyPlan:
    """The whole migration at a constant rate R (bytes/s of memory moved)."""
    if rate_bytes_s <= 0:
        raise ValueError("rate_bytes_s must be positive")
    ratio = dirty_bytes_s / rate_bytes_s
    passes, final = precopy_rounds(memory_bytes, ratio, threshold_bytes=threshold_bytes, max_passes=max_passes)
    total = sum(passes) + final
    return PrecopyPlan(
        memory_bytes=memory_bytes,
        rate_bytes_s=rate_bytes_s,
        dirty_bytes_s=dirty_bytes_s,
        pass_bytes=tuple(passes),
        final_bytes=final,
        total_bytes=total,
        duration_s=total / rate_bytes_s,
        blackout_s=final / rate_bytes_s + resume_s,
        converged=final < threshold_bytes,
    )


def closed_form_total(memory_bytes: float, ratio: float, rounds: int) -> float:
    """V = M (1 - lambda^(n+1)) / (1 - lambda) for rounds 0..n (no cap at M)."""
    if math.isclose(ratio, 1.0):
        return memory_bytes * (rounds + 1)
    return memory_bytes * (1 - ratio ** (rounds + 1)) / (1 - ratio)


# --- what one migration stream moves (hyperv.md sections 4 and 8) ----------------------------------

BYTES_PER_GBIT = 125_000_000
# Per-stream figures of the performance options. The simulator's SimTuning defaults are the same
# numbers (a test keeps them equal), so planner estimates and simulated runs agree.
TCP_STREAM_GBPS = 2.5  # one plain TCP stream used about a quarter of 10 GbE
COMPRESSION_RATIO = 0.5  # bytes on the wire per memory byte: compression "about halves" the time
COMPRESSION_STREAM_GBPS = 5.0  # memory one stream compresses per second: CPU-bound. UNCONFIRMED.
PERFORMANCE_OPTIONS = ("tcpip", "compression", "smb")


def wire_ratio(option: str, compression_ratio: float = COMPRESSION_RATIO) -> float:
    """Bytes on the wire per memory byte for a performance option."""
    return compression_ratio if option == "compression" else 1.0


def stream_cap_bytes_s(
    option: str,
    *,
    tcp_stream_gbps: float = TCP_STREAM_GBPS,
    compression_stream_gbps: float = COMPRESSION_STREAM_GBPS,
) -> float:
    """Memory bytes/s one stream can move whatever the link: TCP's window, compression's CPU; SMB none."""
    if option == "tcpip":
        return tcp_stream_gbps * BYTES_PER_GBIT
    if option == "compression":
        return compression_stream_gbps * BYTES_PER_GBIT
    return math.inf  # SMB (Direct): close to line rate


def memory_rate_bytes_s(
    option: str,
    link_bytes_s: float,
    *,
    compression_ratio: float = COMPRESSION_RATIO,
    tcp_stream_gbps: float = TCP_STREAM_GBPS,
    compression_stream_gbps: float = COMPRESSION_STREAM_GBPS,
) -> float:
    """Memory bytes/s of one stream whose share of the link is link_bytes_s (wire bytes/s)."""
    cap = stream_cap_bytes_s(option, tcp_stream_gbps=tcp_stream_gbps, compression_stream_gbps=compression_stream_gbps)
    return min(link_bytes_s / wire_ratio(option, compression_ratio), cap)
