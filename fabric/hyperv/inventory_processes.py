"""Hosts' inventories read by helper processes beside this one, for a sync of many hosts.

The console's share of a sync is CPU: HTTP, WS-Man, PSRP framing and CLIXML, about 30 ms a host, and
one process runs Python on one CPU at a time. bench/sync.py (100 hosts at 50 ms a cmdlet, 2 CPUs shared
with the emulated hosts): 4.1-4.3 s read in one process, 3.4-3.7 s with one helper.

Each helper is a process of its own, started through multiprocessing's forkserver (a clean process, no
copy of this one's threads, locks or sockets). It keeps its driver, and so its hosts' runspace pools,
from one sync to the next, and reads the same hosts each time: they are dealt out by their place in the
list. Credentials are resolved here and sent with the connections: a helper opens no database. A
helper that dies, or cannot start, has its hosts read here instead, and is started anew next time.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

from fabric.hyperv.api import Connection, HostInventory, HyperVError
from fabric.hyperv.psrp import PsrpDriver
from fabric.hyperv.psrp_session import PsrpOptions

log = logging.getLogger(__name__)

Result = HostInventory | HyperVError

_lock = threading.Lock()
_helpers: list[Executor] = []  # this process's helpers, each a pool of one process (its hosts stay)
_registered = False  # close() runs at exit
# Seconds close() gives a helper to close its shells, then to exit, before it is terminated.
CLOSE_WAIT_S = 10.0
EXIT_WAIT_S = 5.0


def read_inventories(driver: PsrpDriver, conns: list[Connection], threads: int, helpers: int) -> list[Result]:
    """Each host's inventory, or the HyperVError it answered with, in the order of conns.

    One share of the hosts is read in this process and one by each helper, at the same time; the
    threads are shared out between the processes (each host waits on its cmdlets most of the time).
    """
    conns = [driver.logon(conn) for conn in conns]
    processes = helpers + 1
    shares = [list(range(first, len(conns), processes)) for first in range(processes)]
    per_process = max(1, -(-threads // processes))
    pending = []
    for index, share in enumerate(shares[1:]):
        chunk = [conns[i] for i in share]
        try:
            pending.append((index, share, _helper(index).submit(_read, driver.options, chunk, per_process)))
        except Exception as exc:  # it could not start (no forkserver here, out of processes...)
            log.warning("inventory helper %d unavailable (%s): its %d hosts are read here", index, exc, len(chunk))
            _discard(index)
            shares[0] = shares[0] + share
    results: list[Result | None] = [None] * len(conns)
    here = [conns[i] for i in shares[0]]
    for i, result in zip(shares[0], read_here(driver.inventory, here, per_process), strict=True):
        results[i] = result
    for index, share, future in pending:
        try:
            answers = future.result()
        except Exception as exc:  # it died (BrokenProcessPool) or failed: this process reads its hosts
            log.warning("inventory helper %d failed (%s): its %d hosts are read here", index, exc, len(share))
            _discard(index)
            answers = read_here(driver.inventory, [conns[i] for i in share], per_process)
        for i, result in zip(share, answers, strict=True):
            results[i] = result
    return results  # type: ignore[return-value]  # every place filled above


def read_here(inventory: Callable[[Connection], HostInventory], conns: list[Connection], threads: int) -> list[Result]:
    def one(conn: Connection) -> Result:
        try:
            return inventory(conn)
        except HyperVError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(conns)))) as pool:
        return list(pool.map(one, conns))


def close() -> None:
    """Stop the helpers; each closes its shells on the hosts first, if it can within a few seconds (a
    helper still reading a host that stopped answering must not hold up the worker's exit)."""
    with _lock:
        helpers, _helpers[:] = list(_helpers), []
    for helper in helpers:
        processes = list((getattr(helper, "_processes", None) or {}).values())
        try:
            helper.submit(_close_driver).result(timeout=CLOSE_WAIT_S)
        except Exception as exc:  # a dead or busy helper: stopped below all the same
            log.debug("closing an inventory helper: %s", exc)
        helper.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(timeout=EXIT_WAIT_S)
            if process.is_alive():
                process.terminate()


def helper_pids() -> list[int]:
    """The helpers' process ids (tests stop one to see its hosts read here)."""
    with _lock:
        return [pid for helper in _helpers for pid in getattr(helper, "_processes", {}) or {}]


def _helper(index: int) -> Executor:
    global _registered
    with _lock:
        if not _registered:
            atexit.register(close)
            _registered = True
        while len(_helpers) <= index:
            _helpers.append(_new_helper())
        return _helpers[index]


def _new_helper() -> Executor:
    # One process, started when first used; no max_tasks_per_child: it and its pools live on.
    context = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(1, mp_context=context, initializer=_watch, initargs=(os.getpid(),))


def _discard(index: int) -> None:
    """A helper that failed is shut down; the next read starts a new one in its place."""
    with _lock:
        if index >= len(_helpers):
            return
        helper, _helpers[index] = _helpers[index], _new_helper()
    helper.shutdown(wait=False, cancel_futures=True)


# --- in the helper process -----------------------------------------------------------------------


def _watch(parent: int) -> None:
    """Exit when the process that started this helper is gone. Killed (SIGKILL, out of memory), it
    closes nothing: its helper would wait for work forever, keeping the forkserver and
    multiprocessing's resource tracker alive with it (measured: all three stayed)."""
    threading.Thread(target=_exit_after, args=(parent,), name="inventory-helper-watch", daemon=True).start()


def _exit_after(parent: int) -> None:
    try:
        handle = os.pidfd_open(parent)  # Linux: readable once that process has exited
    except (AttributeError, OSError):
        handle = None
    if handle is not None:
        select.select([handle], [], [])
    else:
        while True:
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                break
            except PermissionError:
                pass  # there, as another user's process: it exists
            time.sleep(1)
    os._exit(0)


_driver: PsrpDriver | None = None


def _read(options: PsrpOptions, conns: list[Connection], threads: int) -> list[Result]:
    global _driver
    if _driver is None or _driver.options != options:
        if _driver is not None:
            _driver.close()
        _driver = PsrpDriver(options)  # no credentials callback: the connections carry them
    return read_here(_driver.inventory, conns, threads)


def _close_driver() -> None:
    global _driver
    if _driver is not None:
        _driver.close()
        _driver = None
