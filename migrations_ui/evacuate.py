"""Evacuating a host against the inventory: facts in, the pure planner's plan out, jobs in plan order.

Jobs are created in the plan's order with one priority, so the admission (FIFO per slot) starts
them as the plan's timeline expects (migrations_ui.evacuation).
"""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction

from fabric.models import Host, VirtualMachine
from migrations_ui.estimates import HostRates
from migrations_ui.evacuation import Plan, plan_evacuation
from migrations_ui.jobs import Refused, create_job
from migrations_ui.models import MigrationJob
from migrations_ui.placement import PlanOptions
from migrations_ui.preflight import host_facts, hosts_for_preflight, share_facts, slot_usage, vm_facts, vm_for_preflight


def evacuation_plan(host: Host, *, move_stopped: bool = False) -> Plan:
    usage = slot_usage()
    hosts = list(hosts_for_preflight())
    facts = {h.pk: host_facts(h, usage) for h in hosts}
    by_host = defaultdict(list)
    dirty = {}
    for vm in vm_for_preflight().filter(removed=False):
        by_host[vm.host_id].append(vm_facts(vm))
        dirty[str(vm.guid)] = vm.dirty_rate_mbps
    options = PlanOptions(
        stopped="move" if move_stopped else "leave",
        rates={h.fqdn: HostRates(nic_gbps=h.nic_gbps) for h in hosts},
        dirty_mbps=dirty,
        shares=share_facts(),
    )
    candidates = [facts[h.pk] for h in hosts if h.pk != host.pk and h.reachable]
    resident = {facts[h.pk].fqdn: by_host[h.pk] for h in hosts if h.pk != host.pk}
    return plan_evacuation(facts[host.pk], by_host[host.pk], candidates, options, resident=resident)


def run_plan(plan: Plan, user=None, request=None) -> tuple[list[MigrationJob], list[dict]]:
    """Queue one job per planned move, in plan order; a move refused meanwhile is reported, not fatal."""
    from audit.log import record as audit

    hosts = {h.fqdn: h for h in Host.objects.filter(fqdn__in={m.destination for m in plan.moves})}
    vms = {str(v.guid): v for v in VirtualMachine.objects.filter(guid__in=[m.vm_id for m in plan.moves])}
    jobs, refused = [], []
    with transaction.atomic():
        audit(
            "evacuation.started",
            actor=user,
            request=request,
            target_type="host",
            target_name=plan.host or "",
            details={"moves": len(plan.moves), "left": len(plan.left), "makespan_s": plan.makespan_s},
        )
    for move in plan.moves:
        try:
            jobs.append(create_job(vms[move.vm_id], hosts[move.destination], user=user, request=request))
        except Refused as exc:
            refused.append({"vm": move.vm, "reason": "; ".join(f.message for f in exc.findings)})
    return jobs, refused
