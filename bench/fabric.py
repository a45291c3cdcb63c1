"""Bench of the simulated fabric at demo scale: building a 100-host, 20,000-VM world, and one
transaction on its store (load the SQLite file, start a migration, save).

Run from the repository root:
    .venv/bin/python bench/fabric.py [--hosts 100] [--vms 20000] [--repeat 5] [--json]

Targets (the simulator must not be what slows the demo or the tests): build under 3 s, a store
transaction that parses the file without a cache under 2 s.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fabric.hyperv.api import MoveRequest
from fabric.sim.demo import build_demo_fabric
from fabric.sim.store import FabricStore

BUILD_TARGET_S = 3.0
TRANSACTION_TARGET_S = 2.0


def measure(hosts: int, vms: int, repeat: int) -> dict:
    builds, transactions = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        fabric = build_demo_fabric(hosts=hosts, vms=vms)
        builds.append(time.perf_counter() - started)

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "fabric.sqlite3"
            FabricStore(path, time_scale=None).create(fabric)
            vm = next(v for v in fabric.vms.values() if v.state == "running" and not v.is_clustered)
            destination = next(h for h in fabric.hosts if h != vm.host and not fabric.hosts[h].cluster)
            fresh = FabricStore(path, time_scale=None)  # nothing cached: parses the file
            started = time.perf_counter()
            with fresh.session() as world:
                world.start_migration(MoveRequest(vm.id, vm.host, destination, "live"))
            transactions.append(time.perf_counter() - started)
    return {
        "hosts": hosts,
        "vms": vms,
        "build_median_s": statistics.median(builds),
        "build_target_s": BUILD_TARGET_S,
        "transaction_median_s": statistics.median(transactions),
        "transaction_target_s": TRANSACTION_TARGET_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--vms", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.hosts, args.vms, args.repeat)
    if args.json:
        print(json.dumps(result))
        return
    print(f"fabric of {result['hosts']} hosts, {result['vms']} VMs (median of {args.repeat})")
    print(f"  build:                 {result['build_median_s']:.2f} s (target < {BUILD_TARGET_S} s)")
    print(f"  store transaction:     {result['transaction_median_s']:.2f} s (target < {TRANSACTION_TARGET_S} s)")


if __name__ == "__main__":
    main()
