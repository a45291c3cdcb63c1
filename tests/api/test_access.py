"""Every endpoint with each persona: roles as on the pages (viewers read, operators also move and
evacuate), a user without a role refused (403), no credentials refused (401), always the one error
shape."""

import pytest

from access import Perm
from fabric.models import Host, VirtualMachine, VmState
from migrations_ui.jobs.batches import start_batch
from migrations_ui.models import BatchKind
from migrations_ui.planning.inventory import evacuation_plan
from migrations_ui.preflight.assess import Preflight, vm_for_preflight
from tests.api.conftest import PERSONAS

READERS = ("admin", "operator", "viewer")


@pytest.fixture
def targets(demo_fabric, admin_user):
    """A job, an evacuation batch and audit rows to read; a VM and host each mover can use."""
    standalone = Host.objects.filter(cluster=None).order_by("fqdn")
    evacuated = standalone.first()
    batch = start_batch(evacuation_plan(evacuated), BatchKind.EVACUATION, "Evacuate", host=evacuated, user=admin_user)
    job = batch.jobs.first()
    free = [vm for vm in vm_for_preflight().filter(state=VmState.RUNNING, removed=False) if not vm.jobs.exists()]
    moves = []
    for vm in free:
        best = Preflight(vm).destinations()
        if best and best[0][1].allowed and vm.host_id != evacuated.pk and best[0][0].pk != evacuated.pk:
            moves.append((vm, best[0][0]))
    return {"batch": batch, "job": job, "moves": moves, "host": standalone.last(), "share": 1}


def reads(t):
    vm = VirtualMachine.objects.filter(removed=False).first()
    host = t["host"]
    return [
        ("/clusters", {}),
        ("/clusters/cl-new.contoso.test", {}),
        ("/hosts", {}),
        (f"/hosts/{host.fqdn}", {}),
        ("/shares", {}),
        ("/shares/1", {}),
        ("/vms", {}),
        (f"/vms/{vm.guid}", {}),
        ("/preflight", {"vm": str(vm.guid), "to": host.fqdn}),
        ("/migrations", {}),
        (f"/migrations/{t['job'].pk}", {}),
        ("/events", {}),
        (f"/hosts/{host.fqdn}/evacuation-plan", {}),
        ("/batches", {}),
        (f"/batches/{t['batch'].pk}", {}),
        ("/audit-events", {}),
        ("/audit-events/1", {}),
        ("/account/notifications", {}),  # each reader's own (webhooks: tests/api/test_notifications.py)
    ]


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_read_endpoint_answers_each_persona_as_its_role_allows(apis, targets, persona):
    expected = 200 if persona in READERS else 403 if persona == "outsider" else 401
    for path, params in reads(targets):
        status, body = apis[persona].get(path, **params)
        assert status == expected, (path, body)
        if expected != 200:
            assert set(body) == {"code", "message", "errors"}, body
    selection = {"vms": [str(targets["moves"][0][0].guid)]}
    status, body = apis[persona].post("/batches/plan", selection)
    assert status == expected, body


WRITE_STATUS = {"admin": 201, "operator": 201, "viewer": 403, "outsider": 403, "anonymous": 401}


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_write_endpoint_answers_each_persona_as_its_role_allows(apis, targets, persona):
    from audit.models import AuditEvent

    api, expected = apis[persona], WRITE_STATUS[persona]
    (vm, destination), (other, _) = targets["moves"][:2]
    before = AuditEvent.objects.count()

    status, job = api.post("/migrations", {"vm": vm.name, "to": destination.fqdn})
    assert status == expected, job
    job_id = job["id"] if status == 201 else targets["job"].pk
    status, body = api.post(f"/migrations/{job_id}/cancel")
    assert status == (200 if expected == 201 else expected), body

    status, body = api.post("/batches", {"vms": [str(other.guid)]})
    assert status == expected, body
    host = targets["host"]
    status, body = api.post("/evacuations", {"host": host.fqdn})
    assert status == expected, body
    # The first batch still runs: move back is refused for movers (409), forbidden for the others.
    status, body = api.post(f"/batches/{targets['batch'].pk}/move-back")
    assert status == (409 if expected == 201 else expected), body
    # So is ending the maintenance of the host whose evacuation runs.
    status, body = api.post(f"/hosts/{targets['batch'].host.fqdn}/end-maintenance")
    assert status == (409 if expected == 201 else expected), body

    denied = AuditEvent.objects.filter(pk__gt=before, action="permission_denied")
    if persona == "viewer":
        # Refusals of a signed-in user are audited, as on the pages.
        assert denied.count() == 6
        assert {e.details["permission"] for e in denied} == {Perm.MIGRATE, Perm.EVACUATE}
    if expected == 201:
        assert Host.objects.get(pk=host.pk).maintenance
    else:
        assert not Host.objects.get(pk=host.pk).maintenance
        assert not vm.jobs.exists()
