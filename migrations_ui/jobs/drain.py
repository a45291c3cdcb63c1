"""A cluster node emptied the cluster's way: Suspend-ClusterNode -Drain, followed live, then resumed.

start_drain records the batch (kind drain), puts the node in maintenance and audits it, all in one
transaction, and a worker task (follow_drain) sends Suspend-ClusterNode -Name N -Drain without -Wait
(Microsoft's help: the call is initiated and the cmdlet returns) and follows the drain from the
worker: Get-ClusterNode's DrainStatus, Get-ClusterGroup's OwnerNode and the node's migration jobs.
Each role's move becomes a job of the batch as soon as the host shows it, so the batch page shows the
cluster's moves as it shows the console's own. A job of a drain holds its hosts' slots while it runs
(the console's own moves wait for the cluster's) and has a heartbeat; the console never sends a move
for it. The drain ends when the node says Completed or Failed; then the roles still on the node are
named with the reason the hosts gave.

Move back resumes the node with Resume-ClusterNode -Failback Immediate (the cluster brings the
drained roles back, Resume-ClusterNode.md); End maintenance resumes it with -Failback NoFailback.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop
from django_tasks import task

from fabric.driver import get_driver
from fabric.hyperv.api import HyperVError, MigrationStatus, NodeDrain
from fabric.models import Host, VirtualMachine
from fabric.sync import connection_for, sync_inventory
from migrations_ui.jobs.batches import BatchRefused, end_maintenance, evacuation_refusal, last_evacuation, stored
from migrations_ui.jobs.events import LeaseLost, audit_job, change_state, record
from migrations_ui.jobs.runner import worker_id
from migrations_ui.models import ACTIVE_STATES, Batch, BatchKind, JobState, MigrationJob, TransferType
from migrations_ui.planning.planner import Plan
from utilities.texts import Msg

log = logging.getLogger(__name__)

POLL_S = 0.5
BEAT_S = 2.0  # a follower's beat in the batch (plan["drain"]["beat"])
STALE_AFTER = timedelta(seconds=15)  # no beat for this long: the follower's worker is gone
ENDED = ("completed", "failed", "stopped", "refused")
NOT_MOVED = gettext_noop(
    "The cluster did not move it: no other node that is up and among its possible owners had room for it, "
    "or Hyper-V refused the move (the cluster's events on the node say which)."
)


def drain_refusal(host: Host) -> str | None:
    """Why the cluster cannot be asked to drain this node now, or None."""
    if host.cluster_id is None:
        return Msg("%(host)s is not a node of a failover cluster: the console's plan empties it.", host=host.name)
    if not host.reachable:
        return Msg("%(host)s does not answer; it was not put in maintenance.", host=host.name)
    if (running := evacuation_refusal(host)) is not None:
        return running
    last = Batch.objects.filter(host=host, kind=BatchKind.DRAIN).order_by("-pk").first()
    if last is not None and not drain_finished(last):
        return Msg("A drain of %(host)s is still running.", host=host.name)
    if MigrationJob.objects.filter(Q(source=host) | Q(destination=host), state__in=ACTIVE_STATES).exists():
        return Msg("Moves from or to %(host)s are still running; drain it when they have ended.", host=host.name)
    return None


def start_drain(host: Host, plan: Plan, *, clustered: dict[str, str], user=None, request=None) -> Batch:
    """Record the drain of a cluster node and hand it to a worker. plan: the console's estimate of
    the drain (the node's clustered VMs, the cluster's limits); clustered: every role's VM, id -> name."""
    from audit.log import record as audit

    if refusal := drain_refusal(host):
        raise BatchRefused(refusal)
    drain = {"status": "starting", "roles": clustered, "stuck": [], "before": []}
    with transaction.atomic():
        batch = Batch.objects.create(
            name=f"Drain {host.name}", kind=BatchKind.DRAIN, host=host, created_by=user, plan=stored(plan, drain=drain)
        )
        Host.objects.filter(pk=host.pk).update(maintenance=True)
        host.maintenance = True
        details = {"batch": batch.pk, "roles": len(clustered), "makespan_s": round(plan.makespan_s, 1)}
        audit("evacuation.drain_started", actor=user, request=request, target_type="host", target_id=str(host.pk),
              target_name=host.fqdn, details=details)  # fmt: skip
        transaction.on_commit(lambda: follow_drain.enqueue(batch.pk))
    return batch


class DrainFollower:
    """Sends the drain and follows it to its end, writing each role's move as a job of the batch."""

    def __init__(self, batch: Batch, driver=None, poll_s: float = POLL_S):
        self.batch = batch
        self.host = batch.host
        self.driver = driver or get_driver()
        self.conn = connection_for(self.host)
        self.poll_s = poll_s
        self.roles: dict[str, str] = batch.plan["drain"]["roles"]
        self.vms = {str(v.guid): v for v in VirtualMachine.objects.filter(guid__in=list(self.roles))}
        nodes = Host.objects.filter(cluster_id=self.host.cluster_id)
        self.nodes = {k.lower(): h for h in nodes for k in (h.name, h.fqdn)}
        self.jobs = {j.host_migration_id: j for j in batch.jobs.select_related("vm", "source", "destination")}
        self.sampled: dict[int, float] = {}
        self.lost: set[int] = set()  # jobs another holder took over (events.LeaseLost)
        self.beaten = 0.0

    def run(self) -> None:
        drain = self.batch.plan["drain"]
        if drain["status"] in ENDED:
            return  # a late second follower: the first one ended it
        self._beat()
        if drain["status"] == "starting":
            try:
                self._suspend(drain)
            except HyperVError as exc:
                self._end("refused", error={"code": exc.code, "message": exc.message, "remedy": exc.remedy})
                return
        while True:
            try:
                state = self.driver.node_drain(self.conn, self.host.name)
            except HyperVError as exc:
                # The node (or the cluster service) does not answer for now: the drain goes on without
                # the console; ask again, and keep beating so no other worker takes over meanwhile.
                log.warning("drain %s: %s; asking again", self.batch.pk, exc)
                self._beat(last_error={"code": exc.code, "message": exc.message})
                time.sleep(min(5.0, self.poll_s * 4))
                continue
            running = self._follow(state)
            self._beat(last_error=None)
            if state.drain_status in ("completed", "failed") and not running:
                self._end(state.drain_status, roles=state)
                return
            if state.state != "paused" and not running:  # resumed meanwhile: the drain was stopped
                self._end("stopped", roles=state)
                return
            time.sleep(self.poll_s)

    def _suspend(self, drain: dict) -> None:
        """Suspend-ClusterNode -Drain, once: a follower that took over from one that died while
        sending it asks the node first, and a node that is paused and draining is not asked again."""
        now = self.driver.node_drain(self.conn, self.host.name)
        if drain.get("asking"):
            if now.state == "paused" and now.drain_status != "not_initiated":
                self._save(status="in_progress")
                return
        else:
            # The moves the node already shows (kept minutes after they end) are not the drain's.
            self._save(before=[m.migration_id for m in now.moves], asking=True)
        asked = self.driver.suspend_node(self.conn, self.host.name, drain=True)
        self._save(status=asked.drain_status if asked.drain_status != "not_initiated" else "in_progress")

    # --- one look at the node --------------------------------------------------------------------

    def _follow(self, state: NodeDrain) -> int:
        """Bring the batch's jobs up to what the node shows; the number of moves still running."""
        before = set(self.batch.plan["drain"].get("before", []))
        running = 0
        for move in state.moves:
            if move.vm_id.lower() not in self.roles or move.migration_id in before:
                continue
            job = self.jobs.get(move.migration_id) or self._new_job(move)
            if job is not None and job.pk not in self.lost:
                try:
                    self._update(job, move)
                except LeaseLost:  # a recovery took the job (this follower seemed dead): it follows it
                    self.lost.add(job.pk)
            running += move.state == "running"
        owners = {r.name: r.owner_node.lower() for r in state.roles}
        moved = {j.vm_id for j in self.jobs.values()}
        for vm_id, name in self.roles.items():
            vm = self.vms.get(vm_id)
            owner = owners.get(name, self.host.name.lower())
            if vm is not None and vm.pk not in moved and owner != self.host.name.lower() and owner in self.nodes:
                self._offline_move(vm, self.nodes[owner])  # an offline role changed its owner: no migration
        MigrationJob.objects.filter(batch=self.batch, state=JobState.RUNNING).update(heartbeat_at=timezone.now())
        return running

    def _new_job(self, move: MigrationStatus) -> MigrationJob | None:
        vm = self.vms.get(move.vm_id.lower())
        destination = self.nodes.get(move.destination.lower()) or self.nodes.get(move.destination.split(".")[0].lower())
        if vm is None or destination is None:
            return None
        job = self._job(vm, destination, TransferType.LIVE, host_migration_id=move.migration_id)
        self.jobs[move.migration_id] = job
        return job

    def _offline_move(self, vm: VirtualMachine, destination: Host) -> None:
        """A role now owned by another node that no migration job shows: an offline role (off or saved)
        changes only its owner; a running one's job was gone from WMI before this follower read it."""
        kind = TransferType.LIVE if vm.state == "running" else TransferType.QUICK
        job = self._job(vm, destination, kind, host_migration_id=f"owner:{vm.guid}")
        self.jobs[job.host_migration_id] = job
        change_state(job, JobState.SUCCEEDED, {"by": "cluster"}, percent=100, slots_released_at=timezone.now())

    def _job(self, vm: VirtualMachine, destination: Host, kind: str, host_migration_id: str) -> MigrationJob:
        now = timezone.now()
        with transaction.atomic():
            job = MigrationJob.objects.create(
                kind=kind,
                vm=vm,
                vm_name=vm.name,
                memory_bytes=vm.memory_assigned_bytes,
                source=self.host,
                destination=destination,
                batch=self.batch,
                requested_by=self.batch.created_by,
                state=JobState.RUNNING,
                started_at=now,
                heartbeat_at=now,
                move_requested_at=now,
                worker=worker_id(),
                step="move",
                host_migration_id=host_migration_id,
            )
            record(job, "state", {"state": JobState.RUNNING, "by": "cluster", "drain": self.batch.pk})
            # Its announcement carries the drain's rows as a whole (batch_page.render_batch_job): a new row.
            audit_job(job, "started", actor=self.batch.created_by, by="cluster drain", batch=self.batch.pk)
        return job

    def _update(self, job: MigrationJob, move: MigrationStatus) -> None:
        if job.state != JobState.RUNNING:
            return
        fields = {
            "percent": move.percent,
            "bytes_sent": move.bytes_sent,
            "bytes_remaining": move.bytes_remaining,
            "pass_number": move.pass_number,
            "dirty_rate_mbps": move.dirty_rate_mbps,
            "transfer_rate_mbps": move.transfer_rate_mbps,
        }
        if move.state == "completed":
            now = timezone.now()
            change_state(job, JobState.SUCCEEDED, {"by": "cluster"}, **fields, slots_released_at=now, step="")
        elif move.state in ("failed", "cancelled"):
            error = move.error or HyperVError("21502", gettext_noop("The migration failed on the host."))
            change_state(
                job,
                JobState.FAILED,
                error_code=error.code,
                error_message=error.message,
                error_remedy=error.remedy,
                step="",
                **fields,
            )
        elif time.monotonic() - self.sampled.get(job.pk, 0.0) >= 1.0:
            self.sampled[job.pk] = time.monotonic()
            record(job, "progress", dict(fields), **fields)

    # --- the end ---------------------------------------------------------------------------------

    def _end(self, status: str, roles: NodeDrain | None = None, error: dict | None = None) -> None:
        from audit.log import record as audit

        stuck = []
        if roles is not None:
            owners = {r.name: r.owner_node.lower() for r in roles.roles}
            failed = {str(j.vm.guid): j for j in self.jobs.values() if j.state == JobState.FAILED}
            for vm_id, name in self.roles.items():
                if owners.get(name, self.host.name.lower()) == self.host.name.lower():
                    job = failed.get(vm_id)
                    reason = job.error_message if job else NOT_MOVED
                    stuck.append({"vm": name, "vm_id": vm_id, "reason": reason})
        with transaction.atomic():
            self._save(status=status, stuck=stuck, error=error)
            if status == "refused":  # the node was never paused: it is no longer in maintenance either
                Host.objects.filter(pk=self.host.pk).update(maintenance=False)
            details = {"batch": self.batch.pk, "status": status, "moved": len(self.roles) - len(stuck)}
            details |= {"not_moved": [s["vm"] for s in stuck]} | ({"error": error} if error else {})
            outcome = "success" if status == "completed" else "failure"
            audit("evacuation.drain_ended", target_type="host", target_id=str(self.host.pk),
                  target_name=self.host.fqdn, details=details, outcome=outcome)  # fmt: skip
        try:
            sync_inventory(self.driver, list(Host.objects.filter(cluster_id=self.host.cluster_id)))
        except Exception:
            log.exception("drain %s: the inventory refresh after the drain failed", self.batch.pk)

    def _beat(self, **changes) -> None:
        """Say this follower is alive (restart_stale_drains reads it), at most every BEAT_S."""
        if time.monotonic() - self.beaten >= BEAT_S:
            self.beaten = time.monotonic()
            self._save(tell=False, beat=timezone.now().isoformat(), **changes)

    def _save(self, tell: bool = True, **changes) -> None:
        with transaction.atomic():
            batch = Batch.objects.select_for_update().get(pk=self.batch.pk)
            batch.plan["drain"] = {**batch.plan["drain"], **changes}
            batch.save(update_fields=["plan"])
            self.batch.plan = batch.plan
            if tell:
                self._tell_page()

    def _tell_page(self) -> None:
        from migrations_ui.jobs.emit import send_batch_update

        transaction.on_commit(lambda: send_batch_update(self.batch.pk))


def restart_stale_drains(now: datetime | None = None) -> list[int]:
    """Give a new follower to every drain whose follower stopped beating (its worker died): the
    cluster drains on regardless, and the new follower picks the batch's jobs up where they are.
    Each restart writes a new beat first, so several supervisors restart a drain once."""
    from django_tasks_db.models import DBTaskResult

    now = now or timezone.now()
    restarted = []
    waiting = DBTaskResult.objects.filter(task_path=follow_drain.module_path).ready()
    waiting = {a["args"][0] for a in waiting.values_list("args_kwargs", flat=True) if a.get("args")}
    following = Batch.objects.filter(kind=BatchKind.DRAIN, plan__drain__status__in=["starting", "in_progress"])
    for batch in following.order_by("-pk")[:50]:
        drain = batch.plan.get("drain") or {}
        beat = drain.get("beat") or batch.created_at.isoformat()
        if drain.get("status") in ENDED or datetime.fromisoformat(beat) > now - STALE_AFTER or batch.pk in waiting:
            continue  # ended, followed, or its follower waits for a free worker
        with transaction.atomic():
            fresh = Batch.objects.select_for_update().get(pk=batch.pk)
            if (fresh.plan["drain"].get("beat") or batch.created_at.isoformat()) != beat:
                continue  # another supervisor restarted it meanwhile
            fresh.plan["drain"]["beat"] = now.isoformat()
            fresh.save(update_fields=["plan"])
            transaction.on_commit(lambda pk=batch.pk: follow_drain.enqueue(pk))
        restarted.append(batch.pk)
    return restarted


def drain_state(batch: Batch) -> dict | None:
    return batch.plan.get("drain") if batch.kind == BatchKind.DRAIN else None


def drain_finished(batch: Batch) -> bool:
    return (drain_state(batch) or {}).get("status") in ENDED


def start_resume(batch: Batch, failback: str, user=None, request=None) -> None:
    """End the drained node's maintenance: a worker sends Resume-ClusterNode -Failback Immediate (the
    cluster brings the drained roles back) or NoFailback (they stay where they are). Audited."""
    from audit.log import record as audit
    from migrations_ui.jobs.emit import send_batch_update

    if batch.kind != BatchKind.DRAIN or batch.host is None:
        raise BatchRefused(Msg("Only a drained node can be resumed."))
    if not drain_finished(batch):
        raise BatchRefused(Msg("The drain is still running; resume the node when it has ended."))
    with transaction.atomic():
        if not Host.objects.filter(pk=batch.host.pk, maintenance=True).update(maintenance=False):
            raise BatchRefused(Msg("%(host)s is not in maintenance.", host=batch.host.name))
        batch.host.maintenance = False
        fresh = Batch.objects.select_for_update().get(pk=batch.pk)
        fresh.plan["drain"] = {**fresh.plan["drain"], "resume": {"failback": failback, "state": "asked"}}
        fresh.save(update_fields=["plan"])
        batch.plan = fresh.plan
        details = {"batch": batch.pk, "failback": failback, "moved_back": failback == "immediate"}
        audit("maintenance.ended", actor=user, request=request, target_type="host", target_id=str(batch.host.pk),
              target_name=batch.host.fqdn, details=details)  # fmt: skip
        transaction.on_commit(lambda: resume_drained_node.enqueue(batch.pk, failback))
        transaction.on_commit(lambda: send_batch_update(batch.pk))


def end_maintenance_of(host: Host, user=None, request=None) -> Batch | None:
    """End Maintenance, whoever emptied the host: a node the cluster drained resumes without failback
    (its roles stay where they are, as after the console's evacuation); any other host as
    batches.end_maintenance. Returns the host's last evacuation or drain, or None."""
    last = last_evacuation(host)
    if last is not None and last.kind == BatchKind.DRAIN and host.maintenance:
        start_resume(last, "no_failback", user, request)
        return last
    return end_maintenance(host, user, request)


def resume(batch_id: int, failback: str, driver=None) -> None:
    """The worker's half of start_resume: Resume-ClusterNode, then the inventory once the roles are back."""
    batch = Batch.objects.select_related("host").get(pk=batch_id)
    driver = driver or get_driver()
    conn = connection_for(batch.host)
    outcome = {"failback": failback, "state": "done"}
    try:
        driver.resume_node(conn, batch.host.name, failback)
        if failback == "immediate":
            _wait_for_failback(driver, conn, batch)
    except HyperVError as exc:
        outcome |= {"state": "failed", "error": {"code": exc.code, "message": exc.message, "remedy": exc.remedy}}
    try:  # before the page says done: the inventory then shows the roles where they are
        sync_inventory(driver, list(Host.objects.filter(cluster_id=batch.host.cluster_id)))
    except Exception:
        log.exception("drain %s: the inventory refresh after the resume failed", batch_id)
    with transaction.atomic():
        fresh = Batch.objects.select_for_update().get(pk=batch_id)
        fresh.plan["drain"] = {**fresh.plan["drain"], "resume": outcome}
        fresh.save(update_fields=["plan"])
        from migrations_ui.jobs.emit import send_batch_update

        transaction.on_commit(lambda: send_batch_update(batch_id))


FAILBACK_WAIT_S = 3600.0


def _wait_for_failback(driver, conn, batch: Batch) -> None:
    """Until every role the drain moved is owned by the node again, or moves no more (bounded)."""
    moved = {j.vm_name for j in batch.jobs.filter(state=JobState.SUCCEEDED)}
    started = time.monotonic()
    while time.monotonic() - started < FAILBACK_WAIT_S:
        state = driver.node_drain(conn, batch.host.name)
        owners = {r.name: r.owner_node.lower() for r in state.roles}
        if all(owners.get(n, "") == batch.host.name.lower() for n in moved):
            return
        if not any(m.state == "running" for m in state.moves) and time.monotonic() - started > 5:
            return  # nothing moves any more: what stayed away, the inventory shows
        time.sleep(POLL_S)


@task()
def follow_drain(batch_id: int) -> None:
    """Send a cluster node's drain and follow it to its end."""
    DrainFollower(Batch.objects.select_related("host").get(pk=batch_id)).run()


@task()
def resume_drained_node(batch_id: int, failback: str) -> None:
    """Resume a drained node, with or without failback."""
    resume(batch_id, failback)
