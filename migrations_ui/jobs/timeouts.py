"""When the console stops a move that will not end: the stall and timeout policy (pure).

Two rules, each with its limit (None or 0: the rule is off):

- stall: the host's reported progress has not advanced for `stall_s` seconds. Progress is the bytes
  the host says it sent where it reports bytes (the emulator does, pass by pass), else its percent
  (hyperv.md section 6: Msvm_MigrationJob.PercentComplete). A pre-copy whose guest dirties memory
  faster than the link carries it still sends bytes: that is no stall, the completion rule is for it.
- completion: the move has run longer than `per_gib_s` seconds per GiB it copies (memory, plus the
  disks for a move that copies them), counted from when Move-VM was sent.

The defaults (console settings MOVE_STALL_TIMEOUT_S, MOVE_TIMEOUT_S_PER_GIB; README "Move
timeouts") follow two systems that run this policy in production:

- 150 s without progress is KubeVirt's progressTimeout default. A healthy Hyper-V move reports
  progress about once a second (its progress records, the job's PercentComplete), and a real pass of
  a large VM sends bytes the whole time: two and a half minutes of nothing is a hung move, not a slow
  one, and long enough that a percent-only host (its percent moves in whole steps) is not cut off.
- 800 s per GiB is both OpenStack Nova's live_migration_completion_timeout default and KubeVirt's
  completionTimeoutPerGiB default (OpenShift Virtualization documents it: "a VMI with 6 GiB memory
  times out if it has not completed migration in 4800 seconds"; both count the disks as well for a
  block migration, as this policy does for a move that copies them). The console adds a floor of
  2 GiB: a small VM's checks and switch-over take as long as a large one's. A Hyper-V migration
  network may be a shared 1 GbE link where a GiB takes 10 s at best and several times that beside
  other moves, and cancelling a move that would have finished throws the whole copy away and keeps
  a host in maintenance longer: so the completion limit is the generous one. It catches a pre-copy
  that never converges (the dirty rate at or above the transfer rate, pass after pass); the stall
  rule catches a hung move early.

Watch follows one move: feed it each status read (observe) and it says when, and why, to act.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GIB = 1024**3
MIN_GIB = 2  # a small VM gets the limit of a 2 GiB one: its checks and switch-over take as long
DEFAULT_STALL_S = 150  # KubeVirt's progressTimeout
DEFAULT_PER_GIB_S = 800  # Nova's live_migration_completion_timeout, KubeVirt's completionTimeoutPerGiB
STALL, COMPLETION = "stall", "completion"


@dataclass(frozen=True)
class Limits:
    """The limits that apply to one move; None or 0 turns a rule off."""

    stall_s: float | None = DEFAULT_STALL_S
    per_gib_s: float | None = DEFAULT_PER_GIB_S

    def completion_s(self, data_bytes: int) -> float | None:
        """The completion limit of a move copying data_bytes, in seconds (None: no limit)."""
        if not self.per_gib_s:
            return None
        return self.per_gib_s * max(data_bytes / GIB, MIN_GIB)


@dataclass(frozen=True)
class Reading:
    """One status read of a running move; t in seconds since Move-VM was sent."""

    t: float
    percent: int = 0
    bytes_sent: int = 0
    bytes_remaining: int = 0
    pass_number: int = 0
    dirty_rate_mbps: float = 0.0
    transfer_rate_mbps: float = 0.0
    # Pre-copy figures only some hosts report (MigrationStatus): memory copied per second (what competes
    # with the dirty rate; with compression more than the wire carries) and memory the destination lacks.
    memory_rate_mbps: float | None = None
    memory_remaining_bytes: int | None = None

    @property
    def progress(self) -> float:
        """Bytes sent where the host reports bytes, else its percent."""
        return float(self.bytes_sent) if self.bytes_sent or self.bytes_remaining else float(self.percent)


@dataclass(frozen=True)
class Breach:
    """The policy acts: which rule, and the figures that explain it (stored in the job's events)."""

    rule: str  # STALL | COMPLETION
    elapsed_s: float  # since Move-VM was sent
    limit_s: float  # the limit the rule broke
    stalled_s: float  # how long progress has not advanced
    percent: int
    pass_number: int
    dirty_rate_mbps: float
    transfer_rate_mbps: float  # of memory where the host reports it (as the convergence chart reads it)
    bytes_remaining: int  # memory the destination lacks where the host reports it, else its bytes remaining
    data_gib: float  # what the completion limit was scaled by
    per_gib_s: float | None

    @classmethod
    def from_data(cls, data: dict) -> Breach | None:
        """Back from as_data (a recovered job's "policy" event); None when the figures are not all there."""
        try:
            return cls(**{name: data[name] for name in cls.__dataclass_fields__})
        except (KeyError, TypeError):
            return None

    def as_data(self) -> dict:
        return {
            "rule": self.rule,
            "elapsed_s": round(self.elapsed_s, 1),
            "limit_s": round(self.limit_s, 1),
            "stalled_s": round(self.stalled_s, 1),
            "percent": self.percent,
            "pass_number": self.pass_number,
            "dirty_rate_mbps": round(self.dirty_rate_mbps, 1),
            "transfer_rate_mbps": round(self.transfer_rate_mbps, 1),
            "bytes_remaining": self.bytes_remaining,
            "data_gib": round(self.data_gib, 2),
            "per_gib_s": self.per_gib_s,
        }


class Watch:
    """Follows one move's status reads and decides whether the policy acts (once: then it is done).

    data_bytes: what the move copies (the VM's memory, plus the disks for a move that copies them).
    started_t: when following began, on the readings' clock (a recovered job starts its stall clock
    again where the new worker picks it up; the completion clock runs from Move-VM, as recorded).
    """

    def __init__(self, limits: Limits, data_bytes: int, started_t: float = 0.0):
        self.limits = limits
        self.data_bytes = data_bytes
        self.best = -math.inf
        self.advanced_t = started_t
        self.acted: Breach | None = None

    def observe(self, r: Reading) -> Breach | None:
        """The breach the read shows, the first time one does; None otherwise (and after acting)."""
        if self.acted is not None:
            return None
        if r.progress > self.best:
            self.best, self.advanced_t = r.progress, r.t
        stalled = max(0.0, r.t - self.advanced_t)
        completion = self.limits.completion_s(self.data_bytes)
        rule, limit = None, 0.0
        if self.limits.stall_s and stalled >= self.limits.stall_s:
            rule, limit = STALL, float(self.limits.stall_s)
        elif completion is not None and r.t >= completion:
            rule, limit = COMPLETION, completion
        if rule is None:
            return None
        self.acted = Breach(
            rule=rule,
            elapsed_s=r.t,
            limit_s=limit,
            stalled_s=stalled,
            percent=r.percent,
            pass_number=r.pass_number,
            dirty_rate_mbps=r.dirty_rate_mbps,
            transfer_rate_mbps=r.transfer_rate_mbps if r.memory_rate_mbps is None else r.memory_rate_mbps,
            bytes_remaining=r.bytes_remaining if r.memory_remaining_bytes is None else r.memory_remaining_bytes,
            data_gib=max(self.data_bytes / GIB, MIN_GIB),
            per_gib_s=self.limits.per_gib_s or None,
        )
        return self.acted


# The job's error message (English, as the record, the CLI and the API carry it; the event log shows
# the same figures in the reader's language from the "policy" event).
STALL_TEXT = (
    "Timed out: the host reported no progress for %(stalled).0f s (limit %(limit).0f s), at %(percent)d %% "
    "in pass %(pass)d; dirty rate %(dirty).0f MB/s, transfer rate %(rate).0f MB/s; %(left)s left. "
    "The console cancelled the move on the host; the VM stays on its source."
)
COMPLETION_TEXT = (
    "Timed out: the move ran %(elapsed).0f s, over its limit of %(limit).0f s (%(per_gib).0f s per GiB of "
    "%(gib).1f GiB), at %(percent)d %% in pass %(pass)d; dirty rate %(dirty).0f MB/s, transfer rate "
    "%(rate).0f MB/s; %(left)s left. The console cancelled the move on the host; the VM stays on its source."
)
REMEDY = (
    "Start the move again when the guest is less busy or the migration network is free; Compression "
    "(performance option) sends fewer bytes per pass. A stall: check the migration network and both hosts."
)


def describe(b: Breach) -> str:
    values = {
        "stalled": b.stalled_s,
        "limit": b.limit_s,
        "elapsed": b.elapsed_s,
        "per_gib": b.per_gib_s or 0,
        "gib": b.data_gib,
        "percent": b.percent,
        "pass": b.pass_number,
        "dirty": b.dirty_rate_mbps,
        "rate": b.transfer_rate_mbps,
        "left": size(b.bytes_remaining),
    }
    return (STALL_TEXT if b.rule == STALL else COMPLETION_TEXT) % values


def size(n: int) -> str:
    """Bytes as GiB or MiB with one decimal (the message's figure, read beside Hyper-V's)."""
    if n >= GIB:
        return f"{n / GIB:.1f} GiB"
    return f"{n / 1024**2:.1f} MiB"
