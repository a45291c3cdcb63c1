"""Creating migration jobs: pre-flight again at the moment of submission, then one queued job.

Every entry point (wizards, CLI, later the API and bulk moves) goes through create_job, so a move
that a rule blocks is never recorded, and a VM never has two active jobs (a database constraint
backs the check when two requests race).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext_noop

from fabric.hyperv.host_values import file_name, renamed_vhd
from fabric.models import Host, PerformanceOption, StorageLocation, VirtualMachine
from migrations_ui.jobs.events import LeaseLost, audit_job, change_state, record
from migrations_ui.models import FINAL_STATES, JobState, MigrationJob
from migrations_ui.preflight.assess import Preflight, vm_for_preflight
from migrations_ui.preflight.paths import path_problem
from migrations_ui.preflight.rules import BLOCK, Finding
from migrations_ui.preflight.transfer import Assessment
from utilities.texts import Msg


class Refused(Exception):
    """The move cannot be recorded; findings say why."""

    def __init__(self, findings: list[Finding]):
        super().__init__("; ".join(f.message for f in findings))
        self.findings = findings


def input_problems(storage_path: str = "", vhds=(), performance_option: str = "") -> list[Finding]:
    """Refusals for typed input, before any rule runs."""
    problems = []
    labelled = [(Msg("Destination path"), storage_path), *[(Msg("VHD destination"), dst) for _, dst in vhds]]
    for label, path in labelled:
        if path and (problem := path_problem(path)):
            problems.append(
                Finding("invalid-input", BLOCK, Msg("%(label)s: %(problem)s", label=label, problem=problem))
            )
    for src, dst in vhds:
        if renamed_vhd(src, dst):
            # Move-VM and Move-VMStorage refuse it: "The virtual hard disk name must be identical in both entries".
            problems.append(
                Finding(
                    "invalid-input",
                    BLOCK,
                    Msg(
                        "VHD destination %(path)s renames the disk: Hyper-V keeps a virtual disk's file name when it "
                        "moves it. Give %(name)s in the destination folder.",
                        path=dst,
                        name=file_name(src),
                    ),
                )
            )
    if performance_option and performance_option not in PerformanceOption.values:
        problems.append(
            Finding(
                "invalid-input",
                BLOCK,
                Msg("Unknown performance option %(option)s.", option=repr(performance_option)),
            )
        )
    return problems


def create_job(
    vm: VirtualMachine,
    destination: Host,
    *,
    storage_path: str = "",
    vhds: tuple[tuple[str, str], ...] = (),
    performance_option: str = "",
    add_location: str = "",
    priority: int = 0,
    power: str = "",
    batch=None,
    not_before=None,
    user=None,
    request=None,
) -> MigrationJob:
    """Record a queued migration job, or raise Refused with the findings that stand in the way.
    add_location: a folder to add to the destination's storage locations along with the job.
    power: "save" or "shut_down": the job takes the VM down first and moves it offline (the
    pre-maintenance report's choice for a VM that cannot move live), and starts it after.
    not_before: the batch's plan holds the job in the queue until then (a datetime)."""
    if problems := input_problems(storage_path, vhds, performance_option):
        raise Refused(problems)
    try:
        with transaction.atomic():
            # Read the VM again inside the transaction: it may have moved since the page was drawn.
            # of=self: PostgreSQL refuses FOR UPDATE on the nullable side of the outer joins.
            vm = vm_for_preflight().select_for_update(of=("self",)).get(pk=vm.pk, removed=False)
            assessment = Preflight(vm, power).assess_move(destination, storage_path=storage_path, vhds=vhds)
            if not assessment.allowed:
                raise Refused([f for f in assessment.findings if f.severity == BLOCK])
            job = _record(
                vm,
                destination,
                assessment,
                user,
                request,
                storage_path=assessment.proposal.storage_path,
                vhds=[list(pair) for pair in vhds],
                performance_option=performance_option,
                add_default_location=bool(add_location),
                priority=priority,
                power=power,
                batch=batch,
                not_before=not_before,
            )
            if add_location:
                StorageLocation.objects.get_or_create(
                    host=destination, path=add_location, defaults={"added_by_user": True}
                )
    except VirtualMachine.DoesNotExist:
        raise Refused([Finding("vm-gone", BLOCK, Msg("The VM is no longer in the inventory."))]) from None
    except IntegrityError:
        message = Msg("%(vm)s already has a migration queued or running.", vm=vm.name)
        raise Refused([Finding("vm-already-moving", BLOCK, message)]) from None
    return job


def _record(vm, destination, assessment: Assessment, user, request=None, **fields) -> MigrationJob:
    job = MigrationJob.objects.create(
        kind=assessment.transfer_type,
        vm=vm,
        vm_name=vm.name,
        memory_bytes=vm.memory_assigned_bytes,
        source=vm.host,
        destination=destination,
        findings=[f.as_stored() for f in assessment.findings],
        requested_by=user,
        state=JobState.QUEUED,
        **fields,
    )
    record(job, "created", {"state": JobState.QUEUED, "user": user.get_username() if user else ""})
    audit_job(job, "requested", actor=user, request=request, findings=[f["rule"] for f in job.findings])
    transaction.on_commit(_admit)
    return job


def _admit() -> None:
    from migrations_ui.jobs.scheduler import admit_waiting

    admit_waiting()


# How a refusal names an ended job's state.
_ENDED = {
    JobState.SUCCEEDED: Msg("succeeded"),
    JobState.FAILED: Msg("failed"),
    JobState.CANCELLED: Msg("cancelled"),
}


class CannotCancel(Exception):
    pass


def cancel_job(job_id: int, user=None) -> MigrationJob:
    """Cancel a waiting job at once; ask the host to stop a running one (the runner passes it on
    and the job ends cancelled when the host confirms). Raises CannotCancel with the reason."""
    try:
        return _cancel(job_id, user)
    except LeaseLost:
        raise CannotCancel(Msg("Job %(pk)s changed state meanwhile; look again.", pk=job_id)) from None


def _cancel(job_id: int, user) -> MigrationJob:
    with transaction.atomic():
        job = MigrationJob.objects.filter(pk=job_id).first()
        if job is None:
            raise CannotCancel(Msg("There is no job %(pk)s.", pk=job_id))
        by = {"user": user.get_username() if user else ""}
        if job.state == JobState.UNKNOWN:
            raise CannotCancel(
                Msg(
                    "Job %(pk)s cannot be cancelled: its host stopped answering and how the move ended is "
                    "unknown. The console asks the host again until it answers; or decide how it ended.",
                    pk=job.pk,
                )
            )
        if job.is_active:
            audit_job(job, "cancel_requested", actor=user, state=job.state)
        if job.state in (JobState.QUEUED, JobState.ADMITTED):
            if MigrationJob.objects.filter(pk=job.pk, state=job.state).update(state=JobState.CANCELLED):
                change_state(job, JobState.CANCELLED, by)
                transaction.on_commit(_admit)
                return job
        elif job.state == JobState.RUNNING:
            if MigrationJob.objects.filter(pk=job.pk, state=JobState.RUNNING).update(state=JobState.CANCELLING):
                change_state(job, JobState.CANCELLING, by)
                return job
        elif job.state in FINAL_STATES:
            raise CannotCancel(
                Msg("Job %(pk)s has already ended (%(state)s).", pk=job.pk, state=_ENDED.get(job.state, job.state))
            )
        elif job.state == JobState.CANCELLING:
            raise CannotCancel(Msg("Job %(pk)s is already being cancelled.", pk=job.pk))
        raise CannotCancel(Msg("Job %(pk)s changed state meanwhile; look again.", pk=job.pk))


class CannotDecide(Exception):
    pass


DECIDED_NOT_MOVED = gettext_noop("An operator decided that the move did not happen (the host did not answer).")
DECIDED_REMEDY = gettext_noop("Check the VM's high availability on its cluster; start the move again when ready.")
# What an operator may decide of an unknown job, after looking at the hosts themselves.
DECISIONS = {"succeeded": JobState.SUCCEEDED, "failed": JobState.FAILED}


def decide_unknown(job_id: int, outcome: str, user=None, request=None) -> MigrationJob:
    """An operator says how an unknown job's move ended (they checked the hosts themselves): the job
    ends so, its slots are freed, and the decision is audited. The console changes nothing on the
    hosts (no HA change): it could not tell which side to change. Takes the job's lease, so a
    recovery asking the hosts at that moment writes nothing more."""
    if outcome not in DECISIONS:
        raise CannotDecide(Msg("Unknown outcome %(outcome)s: say succeeded or failed.", outcome=repr(outcome)))
    with transaction.atomic():
        taken = MigrationJob.objects.filter(pk=job_id, state=JobState.UNKNOWN).update(lease=F("lease") + 1)
        if not taken:
            raise CannotDecide(Msg("Job %(pk)s is not waiting for a decision (its outcome is known).", pk=job_id))
        job = MigrationJob.objects.select_related("vm", "source", "destination").get(pk=job_id)
        by = user.get_username() if user else ""
        fields = {"worker": ""}
        if outcome == "failed":
            fields.update(error_code="operator", error_message=DECIDED_NOT_MOVED, error_remedy=DECIDED_REMEDY)
        change_state(job, DECISIONS[outcome], {"decided_by": by}, **fields)
        audit_job(job, "decided", actor=user, request=request, outcome=outcome)
        transaction.on_commit(_admit)
    return job
