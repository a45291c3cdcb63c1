"""The pre-maintenance report (pure): the VMs an evacuation cannot move live, why, and what the
operator chooses for each; then the plan that carries the choices out.

A VM the live plan leaves behind (a rule blocks every host, no host has room, it is stopped) gets a
row with the blocking rules and their remedies, and the choices its state allows:

- running: save and move (Save-VM, an offline move of the saved state, Start-VM on the new host: the
  guest resumes where it was, a Quick migration's outage), shut down and move offline (Stop-VM, the
  move, Start-VM: the restart a stale compatibility vector needs), shut down and stay, leave running;
- off or saved: move offline, or stay.

A choice is offered only where the offline move it needs has a destination (tried alone: the plan
that runs counts memory across all moves). A VM left running keeps its host out of maintenance.
Nothing is stopped unless the operator chose it: a running VM's default is to leave it running,
unless its own default was kept from an earlier maintenance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from migrations_ui.planning.placement import STOPPED_LEAVE, STOPPED_MOVE, PlanOptions, stopped_reason
from migrations_ui.planning.planner import LeftVm, Plan, plan_evacuation
from migrations_ui.preflight.facts import SAVE, SHUT_DOWN, HostFacts, Proposal, VmFacts, powered_off
from migrations_ui.preflight.rules import BLOCK, INFO, Finding
from migrations_ui.preflight.transfer import assess
from utilities.texts import Msg

SAVE_MOVE = "save_move"
SHUT_DOWN_MOVE = "shut_down_move"
SHUT_DOWN_STAY = "shut_down_stay"
LEAVE_RUNNING = "leave_running"
MOVE_OFFLINE = "move_offline"
STAY = "stay"
RUNNING_CHOICES = (SAVE_MOVE, SHUT_DOWN_MOVE, SHUT_DOWN_STAY, LEAVE_RUNNING)
STOPPED_CHOICES = (MOVE_OFFLINE, STAY)
CHOICES = RUNNING_CHOICES + STOPPED_CHOICES
LABELS = {
    SAVE_MOVE: Msg("Save and move (Quick)"),
    SHUT_DOWN_MOVE: Msg("Shut down, move offline, start"),
    SHUT_DOWN_STAY: Msg("Shut down and stay"),
    LEAVE_RUNNING: Msg("Leave running (no maintenance)"),
    MOVE_OFFLINE: Msg("Move offline"),
    STAY: Msg("Stay on this host"),
}
# The power step a move choice takes before its offline move (MigrationJob.power).
POWER = {SAVE_MOVE: SAVE, SHUT_DOWN_MOVE: SHUT_DOWN}


@dataclass(frozen=True)
class Row:
    """One VM that cannot move live, and what may happen to it."""

    vm: VmFacts
    findings: tuple[Finding, ...]  # why: the blocking rules with their remedies
    choices: tuple[str, ...]  # what its state allows and a destination takes
    unavailable: tuple[tuple[str, str], ...]  # (choice, why not) for the rest of its state's choices
    default: str
    kept: bool  # the default is the one kept from an earlier maintenance
    destinations: tuple[tuple[str, str], ...]  # (choice, host name) of each offered move choice

    def as_json(self) -> dict:
        return {
            "vm": self.vm.name,
            "vm_id": self.vm.id,
            "state": self.vm.state,
            "findings": [f.as_dict() for f in self.findings],
            "choices": list(self.choices),
            "unavailable": {c: str(why) for c, why in self.unavailable},
            "default": self.default,
            "default_kept": self.kept,
            "destinations": dict(self.destinations),
        }


@dataclass(frozen=True)
class Report:
    host: str
    rows: tuple[Row, ...]
    live: Plan  # the plan of what moves live without any choice

    def defaults(self) -> dict[str, str]:
        return {r.vm.id: r.default for r in self.rows}

    def by_id(self, choices: Mapping[str, str]) -> dict[str, str]:
        """Choices keyed by VM name or id (the CLI, the API) keyed by id; a key no row has stays."""
        ids = {r.vm.name: r.vm.id for r in self.rows}
        return {ids.get(key, key): choice for key, choice in choices.items()}

    def refused(self, choices: Mapping[str, str]) -> dict[str, Msg]:
        """What is wrong with the choices (VM id -> why): a VM the report does not list, a choice
        its row does not offer."""
        rows = {r.vm.id: r for r in self.rows}
        wrong = {}
        for vm_id, choice in choices.items():
            row = rows.get(vm_id)
            if row is None:
                wrong[vm_id] = Msg("The VM %(vm)s is not in the report: it moves live or is gone.", vm=vm_id)
            elif choice not in row.choices:
                why = dict(row.unavailable).get(choice)
                label = LABELS.get(choice, choice)
                wrong[vm_id] = (
                    Msg("%(choice)s is not possible for %(vm)s: %(why)s", choice=label, vm=row.vm.name, why=why)
                    if why
                    else Msg("%(choice)s is not a choice for %(vm)s.", choice=label, vm=row.vm.name)
                )
        return wrong

    def as_json(self) -> dict:
        return {"host": self.host, "vms": [r.as_json() for r in self.rows], "live_moves": len(self.live.moves)}


def stopped_finding(vm: VmFacts) -> Finding:
    return Finding("vm-not-running", INFO, stopped_reason(vm), Msg("Move it offline, or leave it on this host."))


def blocking(vm: VmFacts, source: HostFacts, candidates: Sequence[HostFacts], reason: str, options) -> tuple:
    """The rules that keep a running VM from every candidate, each once; the plan's own reason (no
    room, no host in its cluster) where no rule blocks."""
    found: dict[str, Finding] = {}
    for host in candidates:
        if host.fqdn == source.fqdn or (vm.clustered and host.cluster != source.cluster):
            continue
        verdict = assess(Proposal(vm=vm, source=source, destination=host, kind=None, shares=options.shares))
        for f in verdict.findings:
            if f.severity == BLOCK:
                found.setdefault(f.rule, f)
    if found:
        return tuple(found.values())
    remedy = Msg("Free memory on another host or add one, or choose what happens to the VM.")
    return (Finding("no-destination", BLOCK, reason, remedy),)


def build_report(
    host: HostFacts,
    vms: Sequence[VmFacts],
    candidates: Sequence[HostFacts],
    options: PlanOptions,
    *,
    resident: Mapping[str, Sequence[VmFacts]] | None = None,
    kept: Mapping[str, str] | None = None,
    move_stopped: bool = False,
) -> Report:
    """kept: each VM's default choice from an earlier maintenance (VM id -> choice)."""
    kept = kept or {}
    live = plan_evacuation(host, vms, candidates, replace(options, stopped=STOPPED_LEAVE), resident=resident)
    by_id = {v.id: v for v in vms}
    rows = []
    for left in live.left:
        vm = by_id[left.vm_id]
        offers = _offline(host, vm, candidates, options, resident)
        state_choices = RUNNING_CHOICES if vm.running else STOPPED_CHOICES
        choices = tuple(c for c in state_choices if c not in offers or offers[c][0])
        unavailable = tuple((c, offers[c][1]) for c in state_choices if c in offers and not offers[c][0])
        fallback = LEAVE_RUNNING if vm.running else (MOVE_OFFLINE if move_stopped and MOVE_OFFLINE in choices else STAY)
        default = kept.get(vm.id) if kept.get(vm.id) in choices else fallback
        findings = blocking(vm, host, candidates, left.reason, options) if vm.running else (stopped_finding(vm),)
        destinations = tuple((c, offers[c][0]) for c in choices if c in offers)
        rows.append(Row(vm, findings, choices, unavailable, default, default == kept.get(vm.id), destinations))
    return Report(host.fqdn, tuple(rows), live)


def _offline(host, vm: VmFacts, candidates, options, resident) -> dict[str, tuple[str, str]]:
    """Each move choice of the VM's state -> (destination name, "") or ("", why it has none)."""
    trials = {SAVE_MOVE: powered_off(vm, SAVE), SHUT_DOWN_MOVE: powered_off(vm, SHUT_DOWN)} if vm.running else {}
    if vm.state in ("off", "saved"):
        trials = {MOVE_OFFLINE: vm}
    offers = {}
    for choice, facts in trials.items():
        plan = plan_evacuation(host, [facts], candidates, replace(options, stopped=STOPPED_MOVE), resident=resident)
        offers[choice] = (plan.moves[0].destination_name, "") if plan.moves else ("", plan.left[0].reason)
    return offers


@dataclass(frozen=True)
class Chosen:
    """The evacuation the choices make: its plan, and what the batch does besides the moves."""

    plan: Plan
    power: dict[str, str]  # VM id -> SAVE or SHUT_DOWN before its offline move
    shut_down: tuple[str, ...]  # VM ids shut down where they are
    choices: dict[str, str]  # VM id -> the choice made
    running: frozenset[str]  # VM ids running now and not taken down for a move

    @property
    def left_running(self) -> tuple[LeftVm, ...]:
        """The VMs that stay running on the host: it does not enter maintenance while any does."""
        return tuple(v for v in self.plan.left if v.vm_id in self.running and v.vm_id not in self.shut_down)


def plan_with_choices(
    host: HostFacts,
    vms: Sequence[VmFacts],
    candidates: Sequence[HostFacts],
    options: PlanOptions,
    choices: Mapping[str, str],
    *,
    resident: Mapping[str, Sequence[VmFacts]] | None = None,
    reasons: Mapping[str, str] | None = None,
) -> Chosen:
    """The evacuation with each reported VM's choice (VM id -> choice; a VM not named moves live
    when it can, as without a report). A choice its state does not have is ignored (the caller
    validates); a move the plan cannot place is left with the plan's reason. reasons: why a VM
    stays when nobody chose it (the live plan's reason; by VM id), instead of "as chosen"."""
    reasons = reasons or {}
    moving, stays, power, shut_down = [], [], {}, []
    for vm in vms:
        choice = choices.get(vm.id)
        if vm.running and choice in POWER:
            power[vm.id] = POWER[choice]
            moving.append(powered_off(vm, POWER[choice]))
        elif vm.running and choice in (SHUT_DOWN_STAY, LEAVE_RUNNING):
            if choice == SHUT_DOWN_STAY:
                shut_down.append(vm.id)
            stays.append(LeftVm(vm.name, vm.id, host.fqdn, reasons.get(vm.id) or _stays_reason(vm, choice)))
        elif vm.running or choice == MOVE_OFFLINE:
            moving.append(vm)
        else:
            stays.append(LeftVm(vm.name, vm.id, host.fqdn, reasons.get(vm.id) or stopped_reason(vm)))
    plan = plan_evacuation(host, moving, candidates, replace(options, stopped=STOPPED_MOVE), resident=resident)
    plan = replace(plan, left=plan.left + tuple(stays))
    placed = {m.vm_id for m in plan.moves}
    power = {vm_id: p for vm_id, p in power.items() if vm_id in placed}  # an unplaced VM is not taken down
    running = frozenset(v.id for v in vms if v.running and v.id not in power)
    made = {vm_id: c for vm_id, c in choices.items() if c in CHOICES}
    return Chosen(plan, power, tuple(shut_down), made, running)


def _stays_reason(vm: VmFacts, choice: str) -> Msg:
    if choice == SHUT_DOWN_STAY:
        return Msg("%(vm)s is shut down and stays on this host, as chosen.", vm=vm.name)
    return Msg("%(vm)s stays running on this host, as chosen: the host does not enter maintenance.", vm=vm.name)
