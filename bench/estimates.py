"""Measured-rate estimates against the static model, on a fabric whose links are not what the inventory says.

The inventory says every host has 10 Gbit/s for live migration; the simulated fabric (fabric/sim)
gives each host another real speed (a NIC team half down, a 1 GbE fallback, a faster one), and
every move a little noise on top (0.80-1.05 of its link: other traffic). Moves run one after the
other on each pair of hosts, as a history builds up; each is predicted before it runs:

- static: estimates.estimate_move with the inventory's NIC speeds (what every plan used before);
- measured: the same with the pair's link measured on its earlier moves (estimates.measured_link,
  from MIN_SAMPLES moves on), as migrations_ui.planning.inventory gives a plan; before that, static.

It prints the error of predicted against simulated duration, |predicted - actual| / actual, p50
and p95, for the moves that had a measured link (both estimates judged on the same moves), and for
all moves. Figures only, no assertion.

Run: .venv/bin/python bench/estimates.py [--seed 1] [--moves 15]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# The simulator's remedies are marked for translation (gettext_noop): settings, no database.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

from fabric.hyperv.api import MoveRequest
from fabric.sim.simulator import Fabric
from fabric.sim.world import GIB, MB, SimDisk, SimHost, SimShare, SimTuning, SimVm
from migrations_ui.planning.estimates import (
    MIN_SAMPLES,
    Figures,
    HostRates,
    MoveSpec,
    PastMove,
    estimate_move,
    measured_link,
)
from migrations_ui.preflight.facts import Kind

SHARE = "\\\\fs01.bench.test\\vms"
INVENTORY_GBPS = 10.0
# Real speeds of the hosts' migration networks, and their performance options.
HOSTS = [
    ("hv01", 10.0, "smb"),
    ("hv02", 4.0, "smb"),
    ("hv03", 1.0, "smb"),
    ("hv04", 25.0, "smb"),
    ("hv05", 2.0, "compression"),
    ("hv06", 6.0, "tcpip"),
]
MEMORY_GIB = (1, 2, 4, 4, 8, 8, 12, 16, 24, 32)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(seed: int, moves_per_pair: int) -> dict[str, list[float]]:
    rng = random.Random(seed)
    tuning = SimTuning(prepare_s=5.0)
    figures = Figures(prepare_s=tuning.prepare_s, resume_s=tuning.resume_s)
    fabric = Fabric(seed, tuning)
    fabric.add_share(SimShare(SHARE, "fs01.bench.test", "fs01.bench.test"))
    real = {}
    for name, gbps, option in HOSTS:
        fqdn = f"{name}.bench.test"
        real[fqdn] = gbps
        fabric.add_host(
            SimHost(fqdn, name, "127.0.0.1", nic_gbps=gbps, performance_option=option, shares=[SHARE],
                    memory_total_bytes=64 * 1024 * GIB, memory_available_bytes=64 * 1024 * GIB)
        )  # fmt: skip
    options = {f"{name}.bench.test": option for name, _, option in HOSTS}
    inventory = HostRates(INVENTORY_GBPS)
    hosts = list(real)
    pairs = [(a, b) for a in hosts for b in hosts if a != b]
    errors: dict[str, list[float]] = {"static": [], "measured": [], "static_all": [], "measured_all": []}
    history: dict[tuple[str, str], list[PastMove]] = {pair: [] for pair in pairs}
    n = 0
    for _round in range(moves_per_pair):
        for source, destination in pairs:
            n += 1
            memory = rng.choice(MEMORY_GIB) * GIB
            dirty_mbps = rng.uniform(5.0, 60.0)
            vm = SimVm(f"vm{n}", f"vm{n}", source, memory_bytes=memory, dirty_rate_mbps=dirty_mbps,
                       config_path=f"{SHARE}\\vm{n}", switch_names=["vSwitch-Prod"])  # fmt: skip
            vm.disks.append(SimDisk(f"{SHARE}\\vm{n}\\vm{n}.vhdx", 20 * GIB))
            fabric.add_vm(vm)
            spec = MoveSpec(vm.name, Kind.LIVE, source, destination, options[source], memory, dirty_mbps * MB)
            static = estimate_move(spec, inventory, inventory, figures).duration_s
            link = measured_link(history[(source, destination)], figures)
            if link is not None:
                measured_spec = MoveSpec(
                    **{**vars(spec), "link_bytes_s": link.link_bytes_s, "link_samples": link.samples}
                )
                measured = estimate_move(measured_spec, inventory, inventory, figures).duration_s
            else:
                measured = static
            # Other traffic: this move gets 80-105 % of each host's real link while it runs.
            for fqdn in (source, destination):
                fabric.hosts[fqdn].nic_gbps = real[fqdn] * rng.uniform(0.80, 1.05)
            started = fabric.now
            migration_id = fabric.start_migration(MoveRequest(vm.id, source, destination, Kind.LIVE))
            fabric.advance(24 * 3600)
            m, status = fabric.migrations[migration_id], fabric.migration_status(migration_id)
            assert m.state == "completed", m.state  # a bench fabric error, not a result
            actual = m.ended_at - started
            history[(source, destination)].insert(0, PastMove(status.bytes_sent, actual))
            static_error, measured_error = abs(static - actual) / actual, abs(measured - actual) / actual
            errors["static_all"].append(static_error)
            errors["measured_all"].append(measured_error)
            if link is not None:
                errors["static"].append(static_error)
                errors["measured"].append(measured_error)
            fabric.advance(1.0)
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--moves", type=int, default=15, help="moves per ordered pair of hosts")
    args = parser.parse_args()
    errors = run(args.seed, args.moves)
    print(
        f"{len(HOSTS)} hosts ({', '.join(f'{n} {g:g} Gbit/s {o}' for n, g, o in HOSTS)}), "
        f"inventory {INVENTORY_GBPS:g} Gbit/s each; {args.moves} live moves per ordered pair, one at a time, "
        f"{MIN_SAMPLES} to measure a pair; seed {args.seed}"
    )
    print(f"{'estimate':<10} {'moves':>6} {'error p50':>10} {'error p95':>10} {'mean':>8}")
    for label, key in (("static", "static"), ("measured", "measured")):
        values = errors[key]
        print(
            f"{label:<10} {len(values):>6} {percentile(values, 0.5):>10.1%} {percentile(values, 0.95):>10.1%} "
            f"{statistics.fmean(values):>8.1%}   (moves with {MIN_SAMPLES}+ earlier ones on their pair)"
        )
    for label, key in (("static", "static_all"), ("measured", "measured_all")):
        values = errors[key]
        print(
            f"{label:<10} {len(values):>6} {percentile(values, 0.5):>10.1%} {percentile(values, 0.95):>10.1%} "
            f"{statistics.fmean(values):>8.1%}   (every move; measured falls back to static on a new pair)"
        )


if __name__ == "__main__":
    main()
