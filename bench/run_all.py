"""Every performance figure of the console in one table: value, target, and the baseline measured in
the same run where there is one. One command, loopback only, every part bounded in time.

Run from the repository root: .venv/bin/python bench/run_all.py [--quick] [--results bench/RESULTS.md]

Parts (each is a script of bench/ run as a process of its own, writing its figures with --json):
  fan-out   bench/jobs.py: websocket latency of job updates, 100 clients x 20 events/s and 500 x 5,
            on the SQLite and the Redis channel layer; baseline: the same without the in-process
            fan-out (CHANNEL_FANOUT=0)
  slots     bench/slots.py: slot-free to next job running, 4 job_worker processes
  orchestr. bench/orchestration.py: jobs per minute with the simulator at full speed and 4 workers;
            an evacuation's makespan against its plan
  inventory bench/inventory.py: VM list page server time at 20,000 VMs against 100, query counts
  sync      bench/sync.py: inventory sync of 100 emulated hosts, parallel against one at a time
  planner   bench/planner.py --quick: makespan against the lower bound, planning time
--quick: fewer rounds and samples (about 20 minutes on an idle 2-CPU machine instead of 45).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


class Table:
    def __init__(self):
        self.rows: list[tuple[str, str, str, str, str]] = []  # figure, value, target, baseline, verdict

    def add(self, figure: str, value: str, target: str = "", baseline: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("met" if ok else "MISSED")
        self.rows.append((figure, value, target, baseline, verdict))

    def markdown(self) -> str:
        lines = ["| figure | value | target | baseline | |", "| --- | --- | --- | --- | --- |"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


def run(script: str, *args: str, timeout: float, env: dict | None = None) -> tuple[dict | None, str]:
    """Run bench/<script> with --json; its figures (None when it failed) and its output."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        path = Path(out.name)
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, str(BENCH / script), *args, "--json", str(path)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        output = done.stdout + done.stderr[-3000:]
        figures = json.loads(path.read_text()) if path.stat().st_size else None
    except subprocess.TimeoutExpired as exc:
        output, figures = f"timed out after {timeout:.0f} s\n{(exc.stdout or b'')[-2000:]!r}", None
    finally:
        path.unlink(missing_ok=True)
    took = time.monotonic() - started
    print(f"  {script} {' '.join(args)}: {took:.0f} s{'' if figures else ' FAILED'}", flush=True)
    if figures is None or os.environ.get("BENCH_VERBOSE"):
        print("    " + output.strip().replace("\n", "\n    ")[-3000:], flush=True)
    return figures, output


def ms(value) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def fan_out(table: Table, quick: bool) -> None:
    scenarios = [(100, 20), (500, 5)]
    updates = "5" if quick else "10"
    for layer in ("sqlite", "redis"):
        for clients, rate in scenarios:
            args = ["--clients", str(clients), "--jobs", str(rate), "--interval", "1.0", "--updates", updates]
            args += ["--no-slots", "--settle", "10", "--timeout", "300"] + (["--redis"] if layer == "redis" else [])
            figures, _ = run("jobs.py", *args, timeout=420)
            base = run("jobs.py", *args, timeout=420, env={"CHANNEL_FANOUT": "0"})[0]
            limit = 300 if layer == "redis" else 100
            name = f"ws fan-out, {layer}, {clients} clients x {rate} events/s"
            if figures is None:
                table.add(f"{name}: p50 / p99", "failed", f"p99 <= {limit} ms", "", False)
                continue
            table.add(
                f"{name}: p50 / p99",
                f"{ms(figures['p50_ms'])} / {ms(figures['p99_ms'])}",
                f"p99 <= {limit} ms",
                f"{ms(base['p50_ms'])} / {ms(base['p99_ms'])} (no fan-out)" if base else "",
                figures["p99_ms"] is not None and figures["p99_ms"] <= limit,
            )
            share = figures["delivered"] / figures["expected"]
            table.add(
                f"{name}: delivered/expected",
                f"{share:.3f} ({figures['delivered']}/{figures['expected']})",
                "1.000",
                f"{base['delivered'] / base['expected']:.3f} (no fan-out)" if base else "",
                share == 1.0,
            )


def slots(table: Table, quick: bool) -> None:
    figures, _ = run("slots.py", "--waves", "2" if quick else "4", timeout=900)
    if figures is None or figures["p99_ms"] is None:
        table.add("slot-free to next job running, p99", "failed", "<= 200 ms", "", False)
        return
    table.add(
        "slot-free to next job running, p50 / p99",
        f"{ms(figures['p50_ms'])} / {ms(figures['p99_ms'])} (n={figures['n']})",
        "p99 <= 200 ms",
        "",
        figures["p99_ms"] <= 200,
    )


def orchestration(table: Table, quick: bool) -> None:
    figures, _ = run("orchestration.py", "--jobs", "40" if quick else "100", timeout=1500)
    if figures is None:
        table.add("orchestration", "failed", "", "", False)
        return
    t, m = figures["throughput"], figures["makespan"]
    table.add(
        "migrations per minute, simulator at full speed, 4 workers",
        f"{t['per_minute']:.0f}/min ({t['succeeded']}/{t['jobs']} jobs in {t['elapsed_s']:.0f} s)",
    )
    table.add(
        f"evacuation makespan, console / plan ({m['moves']} moves, SIM_TIME_SCALE {m['scale']})",
        f"{m['console_s']:.1f} s / {m['plan_s']:.1f} s = {100 * m['overhead']:+.1f}%",
        "overhead <= 2%",
        "",
        m["overhead"] <= 0.02,
    )


def inventory(table: Table, quick: bool) -> None:
    figures, _ = run("inventory.py", "--repeat", "5" if quick else "15", timeout=1200)
    if figures is None:
        table.add("VM list page, 20,000 VMs / 100 VMs", "failed", "<= 1.5x, same queries", "", False)
        return
    for name, f in figures.items():
        if not f["targeted"]:
            continue
        same = f["queries"][0] == f["queries"][1]
        table.add(
            f"{name}: server time 20,000 / 100 VMs",
            f"{f['ratio']:.2f}x ({f['large_ms']:.0f} / {f['small_ms']:.0f} ms CPU), queries {f['queries'][1]}"
            f" / {f['queries'][0]}",
            "<= 1.5x, same queries",
            "",
            f["ratio"] <= 1.5 and same,
        )


def sync(table: Table, quick: bool) -> None:
    latencies = ["0"] if quick else ["0", "0.05"]
    figures, _ = run("sync.py", "--repeat", "1" if quick else "2", "--latency", *latencies, timeout=1200)
    if figures is None:
        table.add("inventory sync, 100 emulated hosts", "failed")
        return
    for r in figures["runs"]:
        table.add(
            f"inventory sync of {figures['hosts']} emulated hosts, {1000 * r['latency_s']:.0f} ms per cmdlet",
            f"parallel {r['parallel_s']:.1f} s ({r['speedup']:.1f}x faster)",
            "",
            f"one at a time {r['sequential_s']:.1f} s",
        )


PLANNER_TARGET = re.compile(
    r"^\s*(\S+) (\S+)\s+slots (\S+): p95 ([\d.]+) <= ([\d.]+), max ([\d.]+) <= 2.0: "
    r"(met|NOT met[^\[]*)\s*\[floor ([\d.]+)\]"
)
PLANNER_TIME = re.compile(r"^planning time, (.+?): ([\d.]+) s \((.*)\)")


def planner(table: Table, quick: bool) -> None:
    # planner.py has no --json: its printed verdicts are read (it is maintained with the planner).
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, str(BENCH / "planner.py"), "--quick"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            stdin=subprocess.DEVNULL,
        )
        output = done.stdout
    except subprocess.TimeoutExpired:
        output = ""
    print(f"  planner.py --quick: {time.monotonic() - started:.0f} s", flush=True)
    found = False
    for line in output.splitlines():
        if m := PLANNER_TARGET.match(line):
            fabric, kind, slots_, p95, target, most, verdict, floor = m.groups()
            table.add(
                f"planner makespan/LB p95, {fabric} fabrics, {kind}, slots {slots_}",
                f"{p95} (max {most}; floor {floor})",
                f"<= {target}, max <= 2.0",
                "",
                verdict.strip() == "met",
            )
            found = True
        elif m := PLANNER_TIME.match(line):
            table.add(f"planning time, {m.group(1)}", f"{m.group(2)} s CPU ({m.group(3)})")
    if not found:
        table.add("planner", "failed (no verdicts printed)", "", "", False)


NOTES = "## Notes"
PARTS = {
    "fan-out": fan_out,
    "slots": slots,
    "orchestration": orchestration,
    "inventory": inventory,
    "sync": sync,
    "planner": planner,
}


def machine() -> str:
    memory = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        memory = f"{kb / 1024**2:.1f} GiB"
    except (OSError, AttributeError):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, {memory} memory, Python {platform.python_version()}, load average {load}"


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() + (" (with uncommitted changes in the tree)" if dirty.stdout.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and samples")
    parser.add_argument("--only", nargs="+", choices=list(PARTS), help="run these parts only")
    parser.add_argument("--results", metavar="FILE", help="write the table with the machine, date and commit")
    args = parser.parse_args()
    started_at, started = datetime.now(UTC), time.monotonic()
    before = machine()
    table = Table()
    for name, part in PARTS.items():
        if args.only and name not in args.only:
            continue
        print(f"{name}:", flush=True)
        part(table, args.quick)
    took = time.monotonic() - started
    after = machine()
    print()
    print(table.markdown())
    if args.results:
        header = (
            f"# Benchmark results\n\n"
            f"`python bench/run_all.py{' --quick' if args.quick else ''}`, {started_at:%Y-%m-%d %H:%M} UTC,"
            f" commit {commit()}, {took / 60:.0f} min.\n\n"
            f"Machine: {before} at the start; {after.split('load average ')[-1]} at the end.\n\n"
        )
        results = Path(args.results)
        # Notes written by hand below the table (what was found, what a figure means) are kept.
        previous = results.read_text() if results.exists() else ""
        notes = previous[previous.index(NOTES) :] if NOTES in previous else ""
        results.write_text(header + table.markdown() + "\n" + ("\n" + notes if notes else ""))
        print(f"\nwritten to {args.results}")


if __name__ == "__main__":
    main()
