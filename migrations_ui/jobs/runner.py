"""Running one migration job on the hosts, step by step, as VMM's job steps read.

A runner belongs to one worker process and drives its job only while it holds the job's lease (the
fencing token in MigrationJob.lease, checked by every write: events.save_fields). A thread of its
own writes the heartbeat, so a driver call blocked on a slow host does not make the worker look
dead. When a worker dies, recover() in another worker asks the hosts what happened and follows the
move to its true end. A move is sent at most once per job: move_requested_at is written before
Move-VM is sent, and after that the console only ever asks the host for the move it already has.

A host that stops answering once the move may have started leaves the job "unknown": it keeps its
slots, and the supervisor hands it to recovery every STALE_AFTER until the host answers and tells
how the move ended (or an operator decides, jobs.decide_unknown).

A job gives its hosts' slots back as soon as the host reports the move completed
(slots_released_at), and admits the next waiting jobs then: verifying, rejoining the cluster and
refreshing the inventory no longer hold the hosts, which are done with the move.

A move that will not end is stopped by the console (the stall and timeout policy, jobs.timeouts,
with the source host's limits, fabric.move_timeouts): the runner records a "policy" event with the
figures, asks the host to cancel the move (the same RequestStateChange as an operator's cancel) and,
once the host says the move ended without moving the VM, fails the job with error_code "timed_out"
and the figures in its message. Failed, not a state of its own: the move did not happen and the VM
runs on its source, as after any failure; the code tells why, and every consumer of the job's state
(slots, queue, batches, the API, the CLI) keeps working unchanged. Not cancelled: no operator asked
for it. When the host completes the move before the cancel lands, the job succeeds: the record
follows the host.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_noop

from fabric.delegation import note_delegation_failure
from fabric.driver import get_driver
from fabric.hyperv.api import HostUnreachable, HyperVError, MigrationStatus, MoveRequest
from fabric.hyperv.remedies import REMEDY_GENERIC
from fabric.move_timeouts import limits as move_limits
from fabric.move_timeouts import retries_with_compression
from fabric.sync import connection_for, sync_inventory
from migrations_ui.jobs.events import LeaseLost, change_state, record, save_fields
from migrations_ui.jobs.operations import Refused, create_job
from migrations_ui.jobs.scheduler import admit_waiting
from migrations_ui.jobs.timeouts import COMPLETION, Breach, Limits, Reading, Watch, describe
from migrations_ui.jobs.timeouts import REMEDY as TIMED_OUT_REMEDY
from migrations_ui.models import JobState, MigrationJob

log = logging.getLogger(__name__)

STEPS = {
    "compare": "Check compatibility on the destination (Compare-VM)",
    "leave_cluster": "Remove the VM from its cluster",
    "move": "Migrate",
    "verify": "Verify where the VM runs",
    "join_cluster": "Make the VM highly available on the destination cluster",
    "refresh": "Refresh the inventory",
    "restore_ha": "Make the VM highly available again where it runs",
    "power_off": "Take the VM down for its offline move (Save-VM or Stop-VM)",
    "start": "Start the VM on the destination (Start-VM)",
    "restore_power": "Start the VM again where it is",
}
# Storage options (Move-VM -IncludeStorage, -DestinationStoragePath, -Vhds) are refused for a
# clustered VM: with them, the VM leaves its cluster before Compare-VM (hyperv.md section 2).
STORAGE_OPTION_KINDS = frozenset({"live_vsm", "network"})
POLL_S = 0.5  # progress is read twice a second and written at least once a second
FAST_POLL_S = 0.1  # near a move's expected end: its end frees the hosts' slots for the next job
GIVE_WAY_S = 1.0  # at most this long a job that freed its slots waits for the next ones to send Move-VM
STALE_AFTER = timedelta(seconds=10)  # no heartbeat for this long: the worker is gone
SETTLE_S = 5.0  # a recovery that finds no move looks again this much later (_find_requested_move)
HEARTBEAT_S = 2.0  # the heartbeat thread's beat: several beats fit in STALE_AFTER
# States a recovery may take a job in: a running one whose worker died, an unknown one to ask again.
RECOVERABLE = (JobState.RUNNING, JobState.CANCELLING, JobState.UNKNOWN)
REFRESH_FAILED = gettext_noop(
    "The inventory could not be refreshed after the move; the next sync shows the VM where it runs."
)
RECOVERY_PENDING = "recovery-pending"  # the worker field of a job handed to recover_job


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Cancelled(Exception):
    pass


TIMED_OUT = "timed_out"  # the error_code of a job the policy stopped (jobs.timeouts)
# Kinds whose move copies the VM's memory, and those that copy its disks: what a move's completion
# limit is scaled by (as Nova scales its completion timeout by memory plus disks for a block migration).
MEMORY_KINDS = frozenset({"live", "live_vsm", "quick"})
DISK_KINDS = frozenset({"live_vsm", "network", "storage"})
PRECOPY_KINDS = frozenset({"live", "live_vsm"})  # a memory copy that Compression speeds up


class TimedOut(HyperVError):
    """The policy stopped the move and the host confirmed it ended without moving the VM."""

    def __init__(self, breach: Breach):
        super().__init__(TIMED_OUT, describe(breach), TIMED_OUT_REMEDY)
        self.breach = breach


class Runner:
    """Drives one job. Use run() for an admitted job, recover() for one whose worker died."""

    def __init__(self, job: MigrationJob, driver=None):
        self.job = job
        self.driver = driver or get_driver()
        self.source = connection_for(job.source)
        self.destination = connection_for(job.destination)
        self.request = MoveRequest(
            vm_id=str(job.vm.guid),
            source=job.source.fqdn,
            destination=job.destination.fqdn,
            kind=job.kind,
            storage_path=job.storage_path,
            vhds=tuple(tuple(pair) for pair in job.vhds),
            performance_option=job.performance_option,
        )
        self.last_sample = 0.0
        self.admitted: list[int] | None = None  # the jobs this move's end admitted (see _give_way)
        self.joined = False  # the VM was made highly available on the destination cluster
        self.breach: Breach | None = None  # the timeout policy acted on this move (see _police)

    # --- entry points --------------------------------------------------------------------------

    @classmethod
    def start(cls, job_id: int, driver=None) -> Runner | None:
        """Claim an admitted job for this worker; None when another worker has it or it was cancelled."""
        with transaction.atomic():
            claimed = MigrationJob.objects.filter(pk=job_id, state=JobState.ADMITTED).update(
                state=JobState.RUNNING,
                started_at=timezone.now(),
                heartbeat_at=timezone.now(),
                worker=worker_id(),
                lease=F("lease") + 1,
            )
            if not claimed:
                return None
            job = _load(job_id)
            record(job, "state", {"state": JobState.RUNNING, "worker": job.worker})
        return cls(job, driver)

    @classmethod
    def take_over(cls, job_id: int, driver=None) -> Runner | None:
        """Claim a job the supervisor handed to recovery (see supervisor.reap_stale): one whose worker
        stopped beating, or an unknown one whose hosts are to be asked again."""
        with transaction.atomic():
            taken = MigrationJob.objects.filter(pk=job_id, worker=RECOVERY_PENDING, state__in=RECOVERABLE).update(
                heartbeat_at=timezone.now(), worker=worker_id(), lease=F("lease") + 1
            )
            if not taken:
                return None
            job = _load(job_id)
            if job.state != JobState.UNKNOWN:  # asking an unknown job's hosts again is no news
                record(job, "recovery", {"worker": job.worker, "step": job.step})
        return cls(job, driver)

    def run(self) -> None:
        """From the first step to the end."""
        with Heartbeat(self.job):
            self._guarded(self._all_steps)

    def recover(self) -> None:
        """Pick the job up where the dead worker (or an unanswered read) left it, asking the hosts
        instead of assuming."""
        with Heartbeat(self.job):
            self._guarded(self._resume)

    # --- the steps -----------------------------------------------------------------------------

    def _all_steps(self) -> None:
        self._prepare()
        self._move()
        self._finish()

    def _prepare(self) -> None:
        """Compare-VM and, for a VM that leaves its cluster, Remove-ClusterGroup, in the order the
        move needs (steps_for). Both are safe to repeat: a recovered job runs what is not done.
        First of all, a VM the operator chose to save or shut down for this move goes down."""
        self._power_off()
        if next((s for s in steps_for(self.job) if s in ("compare", "leave_cluster")), "") == "leave_cluster":
            self._leave_cluster()
            self._compare()
            return
        if not self.job.ha_removed:
            self._compare()
        self._leave_cluster()

    def _resume(self) -> None:
        job = self.job
        if job.slots_released_at is not None:
            pass  # the dead worker saw the move complete: only verify, rejoin and refresh remain
        elif job.move_requested_at is None:
            self._prepare()
            self._move()
        elif not job.host_migration_id:
            self._find_requested_move()
        else:
            self._follow()
        self._finish()

    def _find_requested_move(self, look_again: bool = True) -> None:
        """Move-VM was sent, or about to be, and its id never recorded: ask the host what became of
        it. Never send it again: a move the host may have started is not requested twice.

        A host that shows no migration of the VM, and the VM not arrived, is asked once more SETTLE_S
        later before the move counts as not made: a Move-VM sent as the host froze waits in its receive
        buffer and starts when the host wakes, in the same instant as this recovery's first question."""
        found = self.driver.find_migration(self.source, self.request.vm_id)
        if found is not None and found.state == "running":
            self._adopt(found.migration_id)
        elif self._arrived():
            self._moved({"found": "VM already on the destination"})
        elif look_again and found is None:
            time.sleep(SETTLE_S)
            self._find_requested_move(look_again=False)
        elif self.driver.get_vm(self.source, self.request.vm_id) is not None:
            evidence = {"source": self.job.source.name, "migration": found.state if found else "none"}
            record(self.job, "evidence", {"found": "VM still on the source", **evidence})
            raise (found.error if found is not None and found.error else None) or HyperVError(
                "not-moved", NOT_MOVED, REMEDY_GENERIC
            )
        else:
            raise HyperVError("not-moved", ON_NEITHER, REMEDY_ON_NEITHER)

    def _compare(self) -> None:
        if self.job.kind == "storage":
            return  # the VM stays on its host: there is no destination to compare with
        self._step("compare")
        problems = self.driver.compare(self.source, self.request)
        if problems:
            first = problems[0]
            text = "; ".join(p.message for p in problems)
            raise HyperVError(str(first.message_id), f"Compare-VM: {text}", _compare_remedy(first.message_id))

    def _power_off(self) -> None:
        """Save-VM or Stop-VM on the source, as the pre-maintenance report chose: asked of the host
        first, so a recovered job does not send it again to a VM already down."""
        job = self.job
        if not job.power or job.powered_off:
            return
        self._step("power_off")
        vm = self.driver.get_vm(self.source, self.request.vm_id)
        if vm is not None and vm.state == "running":
            (self.driver.save_vm if job.power == "save" else self.driver.stop_vm)(self.source, self.request.vm_id)
        record(job, "step", {"step": "power_off", "done": True, "power": job.power}, powered_off=True)

    def _power_on(self) -> None:
        """Start-VM on the destination after the offline move: the guest resumes (saved) or boots."""
        job = self.job
        if not job.powered_off or job.powered_on:
            return
        self._step("start")
        vm = self.driver.get_vm(self.destination, self.request.vm_id)
        if vm is not None and vm.state != "running":
            self.driver.start_vm(self.destination, self.request.vm_id)
        record(job, "step", {"step": "start", "done": True, "host": job.destination.name}, powered_on=True)

    def _leave_cluster(self) -> None:
        job = self.job
        if leaves_cluster(job) and not job.ha_removed:
            self._step("leave_cluster")
            try:
                self.driver.remove_cluster_role(self.source, self.request.vm_id)
            except HyperVError:
                # A worker that died right after Remove-ClusterGroup never recorded it: the host knows.
                vm = self.driver.get_vm(self.source, self.request.vm_id)
                if vm is None or vm.is_clustered:
                    raise
            record(job, "step", {"step": "leave_cluster", "done": True}, ha_removed=True)

    def _move(self) -> None:
        self._step("move")
        record(self.job, "move_requested", {}, move_requested_at=timezone.now())
        migration_id = self.driver.start_migration(self.source, self.request)
        self._adopt(migration_id)

    def _adopt(self, migration_id: str) -> None:
        record(self.job, "host_job", {"migration_id": migration_id}, host_migration_id=migration_id)
        self._follow()

    def _follow(self) -> None:
        """Read the host's migration until it ends; pass a cancel request on once."""
        cancel_sent = False
        pace = Pace()
        watch = self._watch()
        if self.breach is None and (acted := self._policy_acted()) is not None:
            # A worker that died after the policy sent the cancel: this one follows it to its end.
            self.breach, cancel_sent = acted, True
        while True:
            # With the request, a job the host already removed (minutes after its end) is answered
            # from where the VM runs: not a failure.
            status = self.driver.migration_status(self.source, self.job.host_migration_id, self.request)
            self._answered({"migration": status.state, "percent": status.percent})
            state = MigrationJob.objects.values_list("state", flat=True).get(pk=self.job.pk)
            if state == JobState.CANCELLING and not cancel_sent and status.state == "running":
                cancel_sent = self._send_cancel()
            self._sample(status)
            if watch is not None and not cancel_sent and state == JobState.RUNNING and status.state == "running":
                cancel_sent = self._police(watch, status)
            if status.state == "completed":
                if self.breach is not None:
                    record(self.job, "policy", {"rule": self.breach.rule, "action": "none", "reason": "completed"})
                self._moved({"blackout_ms": status.blackout_ms})
                return
            if status.state == "cancelled" or (cancel_sent and status.state == "failed" and _removed(status)):
                if self.breach is not None:
                    raise TimedOut(self.breach)
                raise Cancelled()
            if status.state == "failed":
                raise status.error or HyperVError(
                    "21502", gettext_noop("The migration failed on the host."), REMEDY_GENERIC
                )
            time.sleep(pace.next_sleep(status, time.monotonic()))

    def _watch(self) -> Watch | None:
        """The timeout policy for this move, with its source host's limits; None when both are off."""
        stall_s, per_gib_s = move_limits(self.job.source)
        if not stall_s and not per_gib_s:
            return None
        return Watch(Limits(stall_s, per_gib_s), self._data_bytes(), started_t=self._since_move())

    def _policy_acted(self) -> Breach | None:
        """The breach a "policy" event of this job recorded when it sent the cancel, if any."""
        data = (
            self.job.events.filter(kind="policy", data__action="cancel")
            .order_by("-sequence")
            .values_list("data", flat=True)
            .first()
        )
        return None if data is None else Breach.from_data(data)

    def _data_bytes(self) -> int:
        """What the move copies: the VM's memory for a live or quick move, its disks for one that moves them."""
        vm = self.job.vm
        total = vm.memory_assigned_bytes if self.job.kind in MEMORY_KINDS else 0
        if self.job.kind in DISK_KINDS:
            total += sum(vm.disks.values_list("size_bytes", flat=True))
        return total

    def _since_move(self) -> float:
        """Seconds since Move-VM was sent (the wall clock: a recovered job keeps counting)."""
        sent = self.job.move_requested_at or timezone.now()
        return max(0.0, (timezone.now() - sent).total_seconds())

    def _police(self, watch: Watch, s: MigrationStatus) -> bool:
        """Let the policy judge this read; when it acts, record why and ask the host to cancel.
        True when the cancel was passed on (or the move had ended meanwhile)."""
        reading = Reading(
            t=self._since_move(),
            percent=s.percent,
            bytes_sent=s.bytes_sent,
            bytes_remaining=s.bytes_remaining,
            pass_number=s.pass_number,
            dirty_rate_mbps=s.dirty_rate_mbps,
            transfer_rate_mbps=s.transfer_rate_mbps,
            memory_rate_mbps=s.memory_rate_mbps,
            memory_remaining_bytes=s.memory_remaining_bytes,
        )
        breach = watch.observe(reading)
        if breach is None:
            return False
        log.warning("job %s: %s", self.job.pk, describe(breach))
        self.breach = breach
        record(self.job, "policy", {**breach.as_data(), "action": "cancel"})
        return self._send_cancel(by="policy")

    def _send_cancel(self, by: str = "") -> bool:
        """Ask the host to terminate the move; a move that ended meanwhile (RequestStateChange 4097,
        or its job already gone) is no failure: the next status read tells how it ended."""
        try:
            self.driver.cancel_migration(self.source, self.job.host_migration_id)
        except HyperVError as exc:
            if exc.code != "InvalidState":
                raise
            record(self.job, "warning", {"message": f"The move had already ended: {exc.message}"})
            return True
        record(self.job, "cancel_sent", {"by": by} if by else {})
        return True

    def _finish(self) -> None:
        self._give_way()
        self._step("verify")
        if not self._arrived():
            raise HyperVError(
                "verify",
                f"{self.job.vm_name} is not running where the move should have left it.",
                gettext_noop("Check the VM on both hosts in Hyper-V Manager; refresh the inventory."),
            )
        if self.job.ha_removed and self.job.destination.cluster_id:
            self._step("join_cluster")
            self._add_cluster_role(self.job.destination, self.destination)
            self.joined = True
            record(self.job, "step", {"step": "join_cluster", "done": True, "host": self.job.destination.name})
        self._power_on()
        self._give_way()
        self._step("refresh")
        try:
            sync_inventory(self.driver, list({self.job.source, self.job.destination}))
        except Exception:
            # The VM runs where it should (verified above): the move succeeded, and the next sync of
            # these hosts shows it there. Failing the job would tell the operator the opposite.
            log.exception("job %s: the inventory refresh after the move failed", self.job.pk)
            record(self.job, "warning", {"message": REFRESH_FAILED})
        change_state(self.job, JobState.SUCCEEDED, percent=100, step="")

    # --- helpers -------------------------------------------------------------------------------

    def _arrived(self) -> bool:
        where = self.destination if self.job.kind != "storage" else self.source
        vm = self.driver.get_vm(where, self.request.vm_id)
        self._answered({"vm_on": "destination" if vm is not None else "not on the destination"})
        if vm is None:
            return False
        if self.job.kind == "storage":
            target = (self.job.storage_path or "").lower()
            moved = [dst.lower() for _, dst in self.job.vhds]
            paths = [d.path.lower() for d in vm.disks] + [vm.config_path.lower()]
            return all(p in paths for p in moved) if moved else all(p.startswith(target) for p in paths)
        # A VM taken down for its move (the pre-maintenance report) arrives off or saved, and starts after.
        return vm.state == "running" or self.job.kind == "network" or self.job.powered_off

    def _step(self, step: str) -> None:
        record(self.job, "step", {"step": step, "label": STEPS[step], **self._kind()}, step=step)

    def _kind(self) -> dict:
        """A storage move's step events say so: the event log words its steps as its own."""
        return {"kind": "storage"} if self.job.kind == "storage" else {}

    def _answered(self, evidence: dict) -> None:
        """The host answers again: an unknown job is running again (and the evidence says why)."""
        if self.job.state == JobState.UNKNOWN:
            record(self.job, "state", {"state": JobState.RUNNING, "evidence": evidence}, state=JobState.RUNNING)

    def _moved(self, data: dict) -> None:
        """The host says the move is over and the VM is on the destination: free the hosts' slots now
        and let the next jobs start; this job goes on to verify and refresh."""
        released = self.job.slots_released_at or timezone.now()
        record(self.job, "step", {"step": "move", "done": True, **data, **self._kind()}, slots_released_at=released)
        try:
            self.admitted = admit_waiting()  # the job's end frees nothing more: it admits no longer
        except Exception:
            # The supervisor's next tick admits them; this job's own end must not fail for it.
            log.exception("job %s: admitting the next jobs after the move failed", self.job.pk)

    def _give_way(self) -> None:
        """Let a job this move's end admitted, once a worker has taken it, send its Move-VM before
        this job's next step: verify and refresh write to the database and the simulator's file many
        times, and on SQLite a writer that finds the lock taken backs off for tens of milliseconds at
        a time, so the next move's start waited out this job's refresh (bench/orchestration.py, under
        load). Only while workers are idle: when any admitted job still waits for a worker, this
        worker is needed more (and it may be the one that job waits for)."""
        started = time.monotonic()
        while self.admitted and time.monotonic() - started < GIVE_WAY_S:
            rows = MigrationJob.objects.filter(pk__in=self.admitted).values_list("state", "move_requested_at")
            if not still_starting(list(rows)) or MigrationJob.objects.filter(state=JobState.ADMITTED).exists():
                return
            time.sleep(0.02)

    def _sample(self, s: MigrationStatus) -> None:
        now = time.monotonic()
        fields = {
            "percent": s.percent,
            "bytes_sent": s.bytes_sent,
            "bytes_remaining": s.bytes_remaining,
            "pass_number": s.pass_number,
            "dirty_rate_mbps": s.dirty_rate_mbps,
            "transfer_rate_mbps": s.transfer_rate_mbps,
        }
        if s.blackout_ms is not None:
            fields["blackout_ms"] = s.blackout_ms
        if now - self.last_sample >= 1.0 or s.state != "running":
            self.last_sample = now
            data = dict(fields)
            # Pre-copy figures only a host that reports them gives (convergence.py reads them back).
            for name in ("memory_rate_mbps", "memory_remaining_bytes"):
                if getattr(s, name) is not None:
                    data[name] = getattr(s, name)
            record(self.job, "progress", data, **fields)
        else:
            save_fields(self.job, **fields)

    def _guarded(self, body) -> None:
        """Every way out of a job ends it in a final state; then the next waiting job is admitted."""
        try:
            body()
        except LeaseLost:
            # Another worker (or an operator) holds the job now: this one writes nothing more.
            log.warning("job %s: its lease was taken; this worker stops driving it", self.job.pk)
            return
        except HostUnreachable as exc:
            if self.job.move_requested_at is None:
                self._failed(exc)  # nothing was sent: the move did not happen
            else:
                self._unknown(exc)
        except Cancelled:
            self._restore()
            change_state(self.job, JobState.CANCELLED, step="")
        except TimedOut as exc:
            self._failed(exc)
            self._retry_compressed(exc.breach)
        except HyperVError as exc:
            self._failed(exc)
        except Exception as exc:
            log.exception("job %s failed unexpectedly", self.job.pk)
            self._restore()
            change_state(
                self.job,
                JobState.FAILED,
                error_code="console",
                error_message=f"The console failed while running the job: {type(exc).__name__}: {exc}",
                error_remedy=gettext_noop(
                    "Check the VM's state on the hosts; the event log shows the last step reached."
                ),
            )
        finally:
            if self.admitted is None:  # the slots are freed only now (no move, a failed or cancelled one)
                admit_waiting()

    def _failed(self, exc: HyperVError) -> None:
        log.warning("job %s failed: %s", self.job.pk, exc)
        note_delegation_failure(self.job.source, exc.code)
        self._restore()
        change_state(self.job, JobState.FAILED, error_code=exc.code, error_message=exc.message, error_remedy=exc.remedy)

    def _retry_compressed(self, breach: Breach) -> None:
        """After a completion timeout (a pre-copy that did not converge), start the move once more with
        Compression where the source's policy says so: a new job, through pre-flight and the queue like
        any, linked both ways by "policy" events. Only when the move did not use Compression already, so
        the retry itself is never retried; never after a stall (a hung move is not a slow one)."""
        job = self.job
        if breach.rule != COMPLETION or job.kind not in PRECOPY_KINDS or not retries_with_compression(job.source):
            return
        if (job.performance_option or job.source.performance_option) == "compression":
            return
        try:
            retry = create_job(
                job.vm,
                job.destination,
                storage_path=job.storage_path,
                vhds=tuple(tuple(pair) for pair in job.vhds),
                performance_option="compression",
                priority=job.priority,
                batch=job.batch,
                user=job.requested_by,
            )
        except Refused as refused:
            record(job, "policy", {"action": "retry_refused", "reason": str(refused)})
            return
        except Exception:  # the job's own end is recorded; a retry that could not start is a warning
            log.exception("job %s: the retry with Compression could not be created", job.pk)
            record(job, "warning", {"message": "The move could not be started again with Compression."})
            return
        record(job, "policy", {"action": "retry", "job": retry.pk, "performance_option": "compression"})
        record(retry, "policy", {"action": "retry_of", "job": job.pk})

    def _unknown(self, exc: HostUnreachable) -> None:
        """The host stopped answering after Move-VM was sent: how the move ends is not known here, so
        the job neither fails nor touches HA; it keeps its slots and leaves this worker, and the
        supervisor hands it to recovery again until the host answers."""
        log.warning("job %s: the outcome is unknown: %s", self.job.pk, exc)
        released = {"worker": "", "heartbeat_at": timezone.now()}  # heartbeat_at: when it was last asked
        if self.job.state == JobState.UNKNOWN:
            save_fields(self.job, **released)  # asked again, still no answer: no news
            return
        data = {"host": exc.fqdn, "reason": exc.reason, "step": self.job.step}
        change_state(self.job, JobState.UNKNOWN, data, **released)

    def _restore(self) -> None:
        self._restore_ha()
        self._restore_power()

    def _restore_power(self) -> None:
        """The VM was taken down for this move and the job did not succeed: start it again where it
        is (on the source when the move did not happen), so a failed maintenance move does not leave
        a service off."""
        if not self.job.powered_off or self.job.powered_on:
            return

        def start(host, conn) -> None:
            self._step("restore_power")
            if self.driver.get_vm(conn, self.request.vm_id).state != "running":
                self.driver.start_vm(conn, self.request.vm_id)
            record(self.job, "step", {"step": "restore_power", "done": True, "host": host.name}, powered_on=True)

        self._mend_where_it_is(POWER_NOWHERE, "Could not start the VM again", start)

    def _restore_ha(self) -> None:
        """The VM left its cluster for this move and the job did not succeed: make it highly available
        again where it runs now, asked of the hosts: on the source when the move did not happen, on the
        destination when it did (and what came after failed). Never on a host where it does not run."""
        if not self.job.ha_removed or self.joined:
            return

        def rejoin(host, conn) -> None:
            if not host.cluster_id:
                record(self.job, "warning", {"message": HA_STANDALONE % {"host": host.name}})
                return
            self._step("restore_ha")
            self._add_cluster_role(host, conn)
            record(self.job, "step", {"step": "restore_ha", "done": True, "host": host.name}, ha_removed=False)

        self._mend_where_it_is(HA_NOWHERE, "Could not make the VM highly available again", rejoin)

    def _add_cluster_role(self, host, conn) -> None:
        """Add-ClusterVirtualMachineRole where the VM runs, safe to repeat: a worker killed after the
        host made the VM highly available (in the refresh that follows, say), or a read that timed out
        on the host's answer, never recorded it, and the cluster refuses a role it already has
        (InvalidState). On a refusal the host is asked: a VM it shows clustered there has joined."""
        try:
            self.driver.add_cluster_role(conn, self.request.vm_id)
        except HyperVError:
            vm = self.driver.get_vm(conn, self.request.vm_id)
            if vm is None or not vm.is_clustered:
                raise
            record(self.job, "evidence", {"found": "VM already highly available", "host": host.name})

    def _mend_where_it_is(self, nowhere: str, failed: str, mend) -> None:
        """After a job that did not succeed: mend(host, connection) on the side the VM is on, or warn
        that it is on neither. A failure here is a warning: the job's own failure is what it reports."""
        try:
            side = self._where_it_runs()
            if side is None:
                record(self.job, "warning", {"message": nowhere})
                return
            mend(*side)
        except Exception as exc:
            message = exc.message if isinstance(exc, HyperVError) else str(exc)
            record(self.job, "warning", {"message": f"{failed}: {message}"})

    def _where_it_runs(self):
        """(host, connection) of the side the VM runs on, by Get-VM on each; None when on neither."""
        if self.driver.get_vm(self.source, self.request.vm_id) is not None:
            return self.job.source, self.source
        elsewhere = self.job.destination_id != self.job.source_id
        if elsewhere and self.driver.get_vm(self.destination, self.request.vm_id) is not None:
            return self.job.destination, self.destination
        return None


NOT_MOVED = gettext_noop(
    "The move did not happen: the host has no running migration of the VM, and the VM runs on the source."
)
ON_NEITHER = gettext_noop("The host has no running migration of the VM, and neither host has the VM now.")
REMEDY_ON_NEITHER = gettext_noop(
    "Look for the VM in Hyper-V Manager or Failover Cluster Manager; refresh the inventory."
)
HA_NOWHERE = gettext_noop(
    "The VM left its cluster for this move and runs on neither host now: make it highly available by hand."
)
POWER_NOWHERE = gettext_noop(
    "The VM was taken down for this move and is on neither host now: find it and start it by hand."
)
HA_STANDALONE = gettext_noop(
    "The VM left its cluster for this move and runs on %(host)s, which is not a cluster node: "
    "it is not highly available."
)


class Heartbeat:
    """Writes the job's heartbeat every HEARTBEAT_S from a thread of its own while the runner works:
    a driver call blocked on a slow host (up to the read timeout) must not make the worker look dead
    and its job be driven twice. Fenced like every write: once the lease is taken it stops."""

    def __init__(self, job: MigrationJob):
        self.pk, self.lease = job.pk, job.lease
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{job.pk}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def _beat(self) -> None:
        try:
            while not self.stop.wait(HEARTBEAT_S):
                try:
                    beat = MigrationJob.objects.filter(pk=self.pk, lease=self.lease, worker=worker_id())
                    if not beat.update(heartbeat_at=timezone.now()):
                        return  # the lease is gone, or the job left this worker (unknown)
                except DatabaseError:
                    log.warning("job %s: a heartbeat could not be written; trying again", self.pk, exc_info=True)
        finally:
            connection.close()


def leaves_cluster(job: MigrationJob) -> bool:
    """A clustered VM moving to a host outside its cluster leaves the cluster first (hyperv.md section 1)."""
    return job.vm.is_clustered and job.source.cluster_id != job.destination.cluster_id


def steps_for(job: MigrationJob) -> list[str]:
    """The steps this job runs, in order (restore_ha only after a failure: it is not listed)."""
    if job.kind == "storage":
        return ["move", "verify", "refresh"]  # one host: nothing to compare, no cluster to leave
    names = ["compare", "move", "verify", "refresh"]
    if job.ha_removed or leaves_cluster(job):
        with_storage = job.kind in STORAGE_OPTION_KINDS or bool(job.storage_path or job.vhds)
        first = ["leave_cluster", "compare"] if with_storage else ["compare", "leave_cluster"]
        names = [*first, "move", "verify", "join_cluster", "refresh"]
    if job.power:  # taken down first, started once verified (and highly available again)
        names = ["power_off", *names[:-1], "start", "refresh"]
    return names


def _removed(status: MigrationStatus) -> bool:
    return status.error is not None and status.error.code == "JobRemoved"


def still_starting(rows: list[tuple[str, object]]) -> bool:
    """Whether a job of (state, move_requested_at) rows is on its way to Move-VM: taken by a worker,
    Move-VM not sent yet."""
    return any(state == JobState.RUNNING and requested is None for state, requested in rows)


class Pace:
    """How long to wait before reading a running move again (pure; one per move followed).

    POLL_S, or less when the move's end is near by its own pace: what is left, at the rate progress
    went since it began, in wall time (so a host's clock or a simulator's time scale does not matter).
    Progress is bytes where the host reports them, else its percent. Once nothing is left to copy
    (the blackout and the VM's resume on the destination) it reads every FAST_POLL_S.
    """

    def __init__(self) -> None:
        self.first: tuple[float, float] | None = None  # (time, progress) of the first sample with progress

    def next_sleep(self, status: MigrationStatus, now: float) -> float:
        done, left = _progress(status)
        if status.state != "running" or done <= 0:
            return POLL_S
        if left <= 0:
            return FAST_POLL_S
        if self.first is None or done <= self.first[1] or now <= self.first[0]:
            self.first = self.first or (now, done)
            return POLL_S
        eta = left * (now - self.first[0]) / (done - self.first[1])
        # Half the time left: a late estimate costs half a read, an early one is read again soon.
        return min(POLL_S, max(FAST_POLL_S, eta / 2))


def _progress(status: MigrationStatus) -> tuple[float, float]:
    """(done, left) in bytes when the host reports them (the emulator does), else in percent."""
    if status.bytes_sent or status.bytes_remaining:
        return status.bytes_sent, status.bytes_remaining
    return status.percent, 100 - status.percent


def _load(job_id: int) -> MigrationJob:
    return MigrationJob.objects.select_related("vm", "source__cluster", "destination__cluster").get(pk=job_id)


def _compare_remedy(message_id: int) -> str:
    remedies = {
        33012: gettext_noop("Create the virtual switch on the destination, or reconnect the VM's network adapter."),
    }
    return remedies.get(message_id, gettext_noop("Resolve the incompatibility Compare-VM reports, then try again."))
