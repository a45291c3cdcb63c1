"""The fluid simulation of running migrations: phases, shared bandwidth, progress.

Each migration walks through phases (prepare, storage copy, pre-copy passes, blackout, resume).
Between two events every migration moves at a constant rate, so the simulator jumps from event to
event: a phase or pass ends, an injected failure is due, or the caller's time is up. Rates are
recomputed at every event, which is when the set of migrations sharing a link changes.

Units of a phase: bytes for storage, pre-copy, blackout and quick; seconds for prepare and resume.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from fabric.hyperv.precopy import next_pass_bytes, precopy_rounds, stop_precopy
from fabric.sim.world import SimHost, SimMigration

if TYPE_CHECKING:
    from fabric.sim.simulator import Fabric

BYTES_PER_GBIT = 125_000_000
# Left-overs smaller than this (bytes or seconds) count as a finished phase: floating-point dust.
EPSILON = 1e-6

PHASES = {
    "live": ("prepare", "precopy", "resume"),
    "live_vsm": ("prepare", "storage", "precopy", "resume"),
    "storage": ("prepare", "storage"),
    "quick": ("prepare", "quick", "resume"),
    "network": ("prepare", "storage"),
}
TIMED_PHASES = frozenset({"prepare", "resume"})
NETWORK_MEMORY_PHASES = frozenset({"precopy", "blackout"})


def start(fabric: Fabric, m: SimMigration) -> None:
    _enter(fabric, m, PHASES[m.kind][0])


def _enter(fabric: Fabric, m: SimMigration, phase: str) -> None:
    m.phase = phase
    if phase == "prepare":
        m.phase_left = fabric.tuning.prepare_s
    elif phase == "resume":
        m.phase_left = fabric.tuning.resume_s
    elif phase == "storage":
        m.phase_left = m.storage_total - m.storage_done
    elif phase == "precopy":
        m.pass_index, m.pass_elapsed, m.phase_left = 0, 0.0, m.memory_bytes
    elif phase == "quick":
        # The VM is saved to the cluster's storage and restored on the other node: all of it is outage.
        m.blackout_started_at, m.phase_left = fabric.now, m.memory_bytes


def _finish_phase(fabric: Fabric, m: SimMigration) -> None:
    """The current phase (or pre-copy pass) is done: move to what follows."""
    t = fabric.tuning
    if m.phase == "precopy":
        rest = next_pass_bytes(m.memory_bytes, m.dirty_bytes_s * m.pass_elapsed)
        if stop_precopy(rest, m.pass_index + 1, threshold_bytes=t.threshold_bytes, max_passes=t.max_passes):
            m.converged = rest < t.threshold_bytes
            m.phase, m.phase_left, m.blackout_started_at = "blackout", rest, fabric.now
        else:
            m.pass_index, m.pass_elapsed, m.phase_left = m.pass_index + 1, 0.0, rest
        return
    if m.phase == "resume" and m.blackout_started_at is not None:
        m.blackout_s = fabric.now - m.blackout_started_at
    sequence = PHASES[m.kind]
    current = "precopy" if m.phase == "blackout" else m.phase
    position = sequence.index(current) + 1
    if position < len(sequence):
        _enter(fabric, m, sequence[position])
    else:
        m.phase, m.phase_left = "done", 0.0


# --- rates -------------------------------------------------------------------------------------


def _network_hosts(m: SimMigration) -> Iterable[str]:
    if m.phase in NETWORK_MEMORY_PHASES or (m.phase == "storage" and m.source != m.destination):
        return {m.source, m.destination}
    return ()


def _storage_hosts(m: SimMigration) -> Iterable[str]:
    return {m.source, m.destination} if m.phase in ("storage", "quick") else ()


def wire_ratio(fabric: Fabric, m: SimMigration) -> float:
    """Bytes on the wire per memory byte."""
    return fabric.tuning.compression_ratio if m.performance_option == "compression" else 1.0


def memory_stream_cap(fabric: Fabric, m: SimMigration) -> float:
    """Memory bytes/s one migration stream can move whatever the link: TCP's window, compression's CPU."""
    t = fabric.tuning
    if m.performance_option == "tcpip":
        return t.tcp_stream_gbps * BYTES_PER_GBIT
    if m.performance_option == "compression":
        return t.compression_stream_gbps * BYTES_PER_GBIT
    return math.inf  # SMB (Direct): close to line rate


def rates(fabric: Fabric, running: list[SimMigration]) -> dict[str, float]:
    """Units/s of each running migration's current phase; a host's link and disks are shared equally."""
    on_network: Counter[str] = Counter()
    on_storage: Counter[str] = Counter()
    for m in running:
        on_network.update(_network_hosts(m))
        on_storage.update(_storage_hosts(m))

    def link(host: SimHost) -> float:
        return host.nic_gbps * BYTES_PER_GBIT / max(1, on_network[host.fqdn])

    def disks(host: SimHost) -> float:
        return host.storage_mbps * 1_000_000 / max(1, on_storage[host.fqdn])

    result = {}
    for m in running:
        src, dst = fabric.hosts[m.source], fabric.hosts[m.destination]
        if m.phase in TIMED_PHASES:
            rate = 1.0
        elif m.phase in NETWORK_MEMORY_PHASES:
            rate = min(min(link(src), link(dst)) / wire_ratio(fabric, m), memory_stream_cap(fabric, m))
        elif m.phase == "storage" and src is not dst:
            # Files copy at storage speed, but they also cross the link (uncompressed) with its other users.
            rate = min(disks(src), disks(dst), link(src), link(dst))
        else:
            rate = min(disks(src), disks(dst))
        result[m.id] = rate
    return result


def alone_memory_rate(fabric: Fabric, m: SimMigration) -> float:
    """The memory rate this migration would get with the links to itself (for estimates)."""
    src, dst = fabric.hosts[m.source], fabric.hosts[m.destination]
    line = min(src.nic_gbps, dst.nic_gbps) * BYTES_PER_GBIT
    return min(line / wire_ratio(fabric, m), memory_stream_cap(fabric, m))


def on_wire(fabric: Fabric, m: SimMigration, amount: float) -> float:
    """Bytes on the network for an amount of the current phase's units (or bytes/s for units/s)."""
    if m.phase in NETWORK_MEMORY_PHASES:
        return amount * wire_ratio(fabric, m)
    if m.phase == "storage" and m.source != m.destination:
        return amount
    return 0.0


# --- progress ----------------------------------------------------------------------------------


def done_units(m: SimMigration) -> float:
    return m.storage_done + m.memory_done


def estimate_total(fabric: Fabric, m: SimMigration, rate: float) -> float:
    """Units the whole migration will have moved, as far as can be told now (constant between events)."""
    t = fabric.tuning
    done = done_units(m)
    if m.phase in ("resume", "done"):
        return done
    if m.phase in ("blackout", "quick"):
        return done + m.phase_left
    if m.phase in ("prepare", "storage"):
        memory = 0.0
        alone = alone_memory_rate(fabric, m)
        if m.kind in ("live", "live_vsm") and alone <= 0:  # a stopped link (set_link 0): one copy, no end
            memory = m.memory_bytes
        elif m.kind in ("live", "live_vsm"):
            passes, final = precopy_rounds(
                m.memory_bytes,
                m.dirty_bytes_s / alone,
                threshold_bytes=t.threshold_bytes,
                max_passes=t.max_passes,
            )
            memory = sum(passes) + final
        elif m.kind == "quick":
            memory = m.memory_bytes
        return done + (m.storage_total - m.storage_done) + memory
    # Pre-copy: the next pass is what the guest dirties during this one, if it runs at this rate.
    if rate <= 0:
        return done + m.phase_left + m.memory_bytes
    rest = next_pass_bytes(m.memory_bytes, m.dirty_bytes_s * (m.pass_elapsed + m.phase_left / rate))
    if stop_precopy(rest, m.pass_index + 1, threshold_bytes=t.threshold_bytes, max_passes=t.max_passes):
        return done + m.phase_left + rest
    passes, final = precopy_rounds(
        m.memory_bytes,
        m.dirty_bytes_s / rate,
        threshold_bytes=t.threshold_bytes,
        max_passes=t.max_passes - m.pass_index - 1,
        first_bytes=rest,
    )
    return done + m.phase_left + sum(passes) + final


def percent(fabric: Fabric, m: SimMigration, rate: float) -> int:
    if m.state == "completed":
        return 100
    total = estimate_total(fabric, m, rate)
    value = 0 if total <= 0 else int(100 * done_units(m) / total + 1e-9)
    return max(m.percent, min(99, value))


def _failure_need(fabric: Fabric, m: SimMigration, rate: float) -> float:
    return m.failure["at_percent"] / 100 * estimate_total(fabric, m, rate)


def failure_due(fabric: Fabric, m: SimMigration, rate: float) -> bool:
    if not m.failure:
        return False
    if m.percent >= m.failure["at_percent"]:
        return True
    need = _failure_need(fabric, m, rate)
    return done_units(m) >= need - max(1.0, need * 1e-9)


def time_to_event(fabric: Fabric, m: SimMigration, rate: float) -> float:
    if rate <= 0:
        return math.inf
    until = m.phase_left / rate
    if m.failure:
        if failure_due(fabric, m, rate):
            return 0.0
        if m.phase not in TIMED_PHASES:
            until = min(until, (_failure_need(fabric, m, rate) - done_units(m)) / rate)
    return max(0.0, until)


def progress(fabric: Fabric, m: SimMigration, rate: float, dt: float, ends_phase: bool) -> None:
    """Move a migration on by dt seconds at its rate; ends_phase snaps it exactly to the phase end."""
    units = m.phase_left if ends_phase else min(m.phase_left, rate * dt)
    m.phase_left = 0.0 if ends_phase else m.phase_left - units
    if m.phase == "storage":
        m.storage_done += units
    elif m.phase in ("precopy", "blackout", "quick"):
        m.memory_done += units
    if m.phase == "precopy":
        m.pass_elapsed += dt
    m.wire_sent += on_wire(fabric, m, units)
    m.percent = percent(fabric, m, rate)


def settle(fabric: Fabric, m: SimMigration, rate: float) -> str | None:
    """Handle what is due now: "failed" (an injected failure), "completed", or None (still running)."""
    if failure_due(fabric, m, rate):
        return "failed"
    while m.phase_left <= EPSILON:
        _finish_phase(fabric, m)
        if m.phase == "done":
            return "completed"
    return None
