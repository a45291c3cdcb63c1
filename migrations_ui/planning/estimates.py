"""How long one move takes: the pre-copy model (hyperv.md section 8) with the hosts' rates (pure).

A move walks the same phases the simulated fabric runs (fabric/sim/flow.py), so a plan's
estimate and a simulated run agree: a fixed prepare phase (checks, staging the planned VM), the file
copy of a Live (VSM) or Network move, the memory pre-copy of a live move at its stream's rate, the
resume. A host's NIC is shared equally by the moves it takes part in that are on the network, its
storage by the moves copying files; each stream is also capped by its performance option (plain TCP
about a quarter of 10 GbE, compression CPU-bound, SMB near line rate).

Every figure lives in Figures (or in fabric.hyperv.precopy, which the simulator's defaults match),
so one place changes when real hosts are measured.

Past moves measure a pair of hosts: once MIN_SAMPLES succeeded live moves between the two were
measured, the link they carried (measured_link) replaces the inventory's NIC speed for moves on
that pair (MoveSpec.link_bytes_s). The inventory's figure is what a host says it has; the measured
one is what the path between two hosts delivered.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from fabric.hyperv.precopy import (
    BYTES_PER_GBIT,
    COMPRESSION_RATIO,
    COMPRESSION_STREAM_GBPS,
    DEFAULT_MAX_PASSES,
    DEFAULT_RESUME_S,
    DEFAULT_THRESHOLD_BYTES,
    TCP_STREAM_GBPS,
    plan_precopy,
    stream_cap_bytes_s,
    wire_ratio,
)
from migrations_ui.preflight.facts import HostFacts, Kind, VmFacts

MB = 1_000_000
# Rates the inventory may not know. 10 GbE migration networks and a 500 MB/s copy are what the
# simulated hosts default to; 20 MB/s is a quiet server's dirty rate. UNCONFIRMED for real hosts.
DEFAULT_NIC_GBPS = 10.0
DEFAULT_STORAGE_MBPS = 500.0
DEFAULT_DIRTY_MBPS = 20.0
# Compare-VM and staging the planned VM take a few seconds before any byte moves (the demo fabric
# simulates 5 s). UNCONFIRMED for real hosts.
DEFAULT_PREPARE_S = 5.0

# Phases of each kind of move, in order (the simulator's sequence; "memory" covers pre-copy and blackout).
PHASES = {
    Kind.LIVE: ("prepare", "memory", "resume"),
    Kind.LIVE_VSM: ("prepare", "storage", "memory", "resume"),
    Kind.QUICK: ("prepare", "quick", "resume"),
    Kind.NETWORK: ("prepare", "storage"),
}


@dataclass(frozen=True)
class Figures:
    """The model's constants in one place (defaults: fabric.hyperv.precopy and the demo fabric)."""

    prepare_s: float = DEFAULT_PREPARE_S
    resume_s: float = DEFAULT_RESUME_S
    threshold_bytes: float = DEFAULT_THRESHOLD_BYTES
    max_passes: int = DEFAULT_MAX_PASSES
    tcp_stream_gbps: float = TCP_STREAM_GBPS
    compression_ratio: float = COMPRESSION_RATIO
    compression_stream_gbps: float = COMPRESSION_STREAM_GBPS

    def wire_ratio(self, option: str) -> float:
        """Bytes on the wire per memory byte."""
        return wire_ratio(option, self.compression_ratio)

    def stream_cap(self, option: str) -> float:
        """Memory bytes/s one stream moves at most, whatever the link."""
        return stream_cap_bytes_s(
            option, tcp_stream_gbps=self.tcp_stream_gbps, compression_stream_gbps=self.compression_stream_gbps
        )


@dataclass(frozen=True)
class HostRates:
    """What a host's migration network and storage move per second (not in HostFacts)."""

    nic_gbps: float = DEFAULT_NIC_GBPS
    storage_mbps: float = DEFAULT_STORAGE_MBPS

    @property
    def nic_bytes_s(self) -> float:
        return self.nic_gbps * BYTES_PER_GBIT

    @property
    def disk_bytes_s(self) -> float:
        return self.storage_mbps * MB


@dataclass(frozen=True)
class MoveSpec:
    """One move as the timing model sees it: bytes, rates and the hosts it touches."""

    vm: str
    kind: str
    source: str
    destination: str
    option: str  # performance option of the move (the source host's unless chosen per move)
    memory_bytes: float = 0.0  # memory pre-copied (live kinds) or saved and restored (quick)
    dirty_bytes_s: float = 0.0
    storage_bytes: float = 0.0  # file bytes copied (Live VSM, Network)
    # The link between the two hosts as past moves measured it (bytes/s on the wire, the move alone);
    # 0: the slower of the hosts' NICs as the inventory gives them.
    link_bytes_s: float = 0.0
    link_samples: int = 0  # how many past moves measured link_bytes_s

    @property
    def phases(self) -> tuple[str, ...]:
        return PHASES[self.kind]


def move_spec(
    vm: VmFacts,
    kind: str,
    source: HostFacts,
    destination: HostFacts,
    *,
    dirty_mbps: float = DEFAULT_DIRTY_MBPS,
    performance: str | None = None,
    measured: PairRate | None = None,
) -> MoveSpec:
    """The bytes a move of this kind copies, as the simulated Hyper-V counts them.

    measured: the pair's link as past moves measured it (measured_link); a move on the network
    (every kind but Quick, which copies through the cluster's storage) is then timed with it."""
    if kind not in PHASES:
        raise ValueError(f"no timing model for a {kind!r} move between two hosts")
    running = vm.running
    disks = float(sum(d.size_bytes for d in vm.disks))
    memory = storage = 0.0
    if kind in (Kind.LIVE, Kind.LIVE_VSM, Kind.QUICK) and running:
        memory = float(vm.memory_bytes)
    if kind == Kind.LIVE_VSM:
        storage = disks
    elif kind == Kind.NETWORK:
        # An offline copy takes the files, and a saved VM's memory file with them.
        storage = disks + (vm.memory_bytes if vm.state == "saved" else 0)
    return MoveSpec(
        vm=vm.name,
        kind=kind,
        source=source.fqdn,
        destination=destination.fqdn,
        option=performance or source.performance_option,
        memory_bytes=memory,
        dirty_bytes_s=dirty_mbps * MB if running else 0.0,
        storage_bytes=storage,
        link_bytes_s=measured.link_bytes_s if measured and kind != Kind.QUICK else 0.0,
        link_samples=measured.samples if measured and kind != Kind.QUICK else 0,
    )


@dataclass(frozen=True)
class Estimate:
    """Duration of one move by phase, and what it puts on the network."""

    duration_s: float
    prepare_s: float
    storage_s: float
    memory_s: float
    resume_s: float
    memory_sent_bytes: float  # every pre-copy pass and the stop-and-copy
    wire_bytes: float  # bytes through each host's NIC (memory after compression, files as they are)
    blackout_s: float  # the VM's outage: stop-and-copy + resume (quick: the whole save and restore)
    converged: bool


def memory_rate(spec: MoveSpec, link_bytes_s: float, figures: Figures) -> float:
    """Memory bytes/s of the move's stream when link_bytes_s of the link is its share."""
    return min(link_bytes_s / figures.wire_ratio(spec.option), figures.stream_cap(spec.option))


def estimate_move(
    spec: MoveSpec,
    source: HostRates,
    destination: HostRates,
    figures: Figures | None = None,
    *,
    concurrent: int = 1,
) -> Estimate:
    """Duration of one move while `concurrent` moves (this one included) share each host's NIC and storage.

    concurrent=1 is the move with the hosts to itself: the shortest it can take, which the lower
    bound of a plan uses. With k moves in the same phase on a host each gets 1/k of its NIC and of
    its storage, as the simulator shares them; a capped stream (TCP, compression) may not notice.
    """
    f = figures or Figures()
    k = max(1, concurrent)
    link = (spec.link_bytes_s or min(source.nic_bytes_s, destination.nic_bytes_s)) / k
    disk = min(source.disk_bytes_s, destination.disk_bytes_s) / k
    storage_s = memory_s = resume_s = 0.0
    sent = wire = 0.0
    blackout_s, converged = 0.0, True
    if spec.kind in (Kind.LIVE_VSM, Kind.NETWORK):
        # Files cross the link uncompressed, at the slower of storage and link.
        storage_s = spec.storage_bytes / min(disk, link)
        wire += spec.storage_bytes
    if spec.kind in (Kind.LIVE, Kind.LIVE_VSM):
        rate = memory_rate(spec, link, f)
        pre = plan_precopy(
            spec.memory_bytes,
            rate,
            spec.dirty_bytes_s,
            threshold_bytes=f.threshold_bytes,
            max_passes=f.max_passes,
            resume_s=f.resume_s,
        )
        memory_s, sent, converged = pre.duration_s, pre.total_bytes, pre.converged
        wire += sent * f.wire_ratio(spec.option)
        resume_s, blackout_s = f.resume_s, pre.blackout_s
    elif spec.kind == Kind.QUICK:
        # Saved to the cluster's storage and restored on the other node: the VM is out the whole time.
        memory_s, sent = spec.memory_bytes / disk, spec.memory_bytes
        resume_s = f.resume_s
        blackout_s = memory_s + resume_s
    duration = f.prepare_s + storage_s + memory_s + resume_s
    return Estimate(duration, f.prepare_s, storage_s, memory_s, resume_s, sent, wire, blackout_s, converged)


# --- what past moves measured ------------------------------------------------------------------------

# A pair's measured link replaces the inventory's NIC speed once this many succeeded live moves
# between the two hosts were measured. The median of five still reads the link when two of them
# were odd (slowed by other moves sharing the NIC, or a VM resuming slowly); with fewer, one unlucky
# move would be the estimate. Live moves only: the memory copy is where the link is the bottleneck.
MIN_SAMPLES = 5
# The newest moves of a pair that count (the adapter reads no more): a link changed (a NIC team
# rebuilt, a switch port renegotiated) shows in the estimate within this many moves.
MAX_SAMPLES = 20


@dataclass(frozen=True)
class PastMove:
    """One succeeded live move as the console measured it."""

    wire_bytes: float  # what the host reported sent: every pre-copy pass and the stop-and-copy, on the wire
    move_s: float  # Move-VM sent to the move's end on the host, in the fabric's seconds


@dataclass(frozen=True)
class PairRate:
    """The link between two hosts as past moves measured it."""

    link_bytes_s: float  # bytes/s on the wire, the median of the moves'
    samples: int  # the moves measured

    @property
    def gbps(self) -> float:
        return self.link_bytes_s / BYTES_PER_GBIT


def move_link(move: PastMove, figures: Figures | None = None) -> float | None:
    """Bytes/s one past move put on the wire while it copied memory, or None when it cannot tell
    (nothing reported sent, or no time left once the fixed prepare and resume are taken off)."""
    f = figures or Figures()
    copy_s = move.move_s - f.prepare_s - f.resume_s
    if move.wire_bytes <= 0 or copy_s <= 0:
        return None
    return move.wire_bytes / copy_s


def measured_link(
    moves: Sequence[PastMove], figures: Figures | None = None, *, least: int = MIN_SAMPLES
) -> PairRate | None:
    """The pair's link from its past moves (newest first, at most MAX_SAMPLES count), or None with
    fewer than `least` moves that tell it: the inventory's NIC speed stands then."""
    links = [r for m in moves[:MAX_SAMPLES] if (r := move_link(m, figures)) is not None]
    if len(links) < max(1, least):
        return None
    return PairRate(statistics.median(links), len(links))
