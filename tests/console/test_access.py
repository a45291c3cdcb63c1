"""Every mutating URL, for every persona: anonymous, outsider (no role), viewer, operator, administrator."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from console.access import Role, capabilities, role_of
from fabric.models import Host
from migrations_ui.models import Batch, MigrationJob
from tests.fabric.factories import make_host, make_vm

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    ready = {"auth_type": "kerberos", "kerberos_delegation": "configured", "use_any_network": True}
    source, destination = make_host("hv-a", **ready), make_host("hv-b", **ready)
    vm = make_vm("web01", host=source)
    job = MigrationJob.objects.create(kind="live", vm=vm, vm_name=vm.name, source=source, destination=destination)
    batch = Batch.objects.create(name="Evacuate hv-a", kind="evacuation", host=source)
    return {"vm": vm, "job": job, "destination": destination, "batch": batch}


def mutating(world):
    """(name, url, POST data, the least role allowed): extend this list with every URL that changes something."""
    vm, job, destination = world["vm"], world["job"], world["destination"]
    return [
        ("migrate vm", reverse("migrations_ui:migrate_vm", args=[vm.guid]), {"to": destination.fqdn}, "operator"),
        (
            "migrate storage",
            reverse("migrations_ui:migrate_storage", args=[vm.guid]),
            {"mode": "whole", "storage_path": "E:\\VMs"},
            "operator",
        ),
        ("cancel job", reverse("migrations_ui:cancel_job", args=[job.pk]), {}, "operator"),
        ("move job", reverse("migrations_ui:move_job", args=[job.pk]), {"direction": "up"}, "operator"),
        ("cancel jobs", reverse("migrations_ui:cancel_jobs"), {"job": [job.pk]}, "operator"),
        ("pause queue", reverse("migrations_ui:host_queue", args=[destination.fqdn]), {"paused": "1"}, "operator"),
        (
            "migrate selected",
            reverse("migrations_ui:migrate_selected"),
            {"vm": [str(vm.guid)], "to": destination.fqdn},
            "operator",
        ),
        ("evacuate", reverse("migrations_ui:evacuate", args=[vm.host.fqdn]), {}, "operator"),
        ("host move back", reverse("migrations_ui:host_move_back", args=[vm.host.fqdn]), {}, "operator"),
        ("end maintenance", reverse("migrations_ui:host_end_maintenance", args=[vm.host.fqdn]), {}, "operator"),
        ("batch move back", reverse("migrations_ui:batch_move_back", args=[world["batch"].pk]), {}, "operator"),
        (
            "host settings",
            reverse("fabric:settings"),
            {"hosts": [destination.fqdn], "max_live_migrations": "x"},  # invalid: nothing reaches a host
            "administrator",
        ),
        ("add host", reverse("fabric_admin:host_add"), {"fqdn": "bad name"}, "administrator"),
    ]


RANK = {"anonymous": 0, "outsider": 0, "viewer": 1, "operator": 2, "administrator": 3}


PERSONAS = ["anonymous", "outsider", "viewer", "operator", "administrator"]


@pytest.fixture
def as_persona(client, django_user_model, outsider_user, viewer_user, operator_user, admin_user):
    users = {"outsider": outsider_user, "viewer": viewer_user, "operator": operator_user, "administrator": admin_user}

    def login(persona):
        if persona != "anonymous":
            client.force_login(users[persona])
        return client

    return login


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_mutating_url_answers_each_persona_as_its_role_allows(world, as_persona, persona):
    client = as_persona(persona)
    for name, url, data, least in mutating(world):
        denied_before = AuditEvent.objects.filter(action="permission_denied").count()
        response = client.post(url, data)
        if persona == "anonymous":
            assert response.status_code == 302 and "/accounts/login/" in response["Location"], name
        elif RANK[persona] < RANK[least]:
            assert response.status_code == 403, (name, persona)
        else:
            assert response.status_code != 403, (name, response.status_code)
        if persona == "viewer":
            denied = AuditEvent.objects.filter(action="permission_denied").order_by("-id").first()
            assert AuditEvent.objects.filter(action="permission_denied").count() == denied_before + 1, name
            assert denied.username == "viewer" and denied.target_name == url and denied.outcome == "denied"


def test_a_viewer_changes_nothing(world, as_persona):
    client = as_persona("viewer")
    for _, url, data, _least in mutating(world):
        client.post(url, data)
    assert MigrationJob.objects.count() == 1
    assert MigrationJob.objects.get().state == "queued"
    assert Batch.objects.count() == 1
    assert not Host.objects.filter(queue_paused=True).exists()
    assert not Host.objects.filter(maintenance=True).exists()


@pytest.mark.parametrize("persona", ["viewer", "operator", "administrator"])
def test_every_role_sees_the_pages(world, as_persona, persona):
    client = as_persona(persona)
    pages = ["/", "/vms/", world["vm"].get_absolute_url(), "/jobs/", world["job"].get_absolute_url(), "/audit/"]
    pages += [world["batch"].get_absolute_url(), reverse("migrations_ui:evacuate", args=[world["vm"].host.fqdn])]
    for url in pages:
        assert client.get(url).status_code == 200, url


def test_a_user_without_a_role_sees_nothing(world, as_persona):
    client = as_persona("outsider")
    assert client.get("/").status_code == 403
    assert client.get("/vms/").status_code == 403


def test_roles_and_capabilities(outsider_user, viewer_user, operator_user, admin_user):
    assert [role_of(u) for u in (None, outsider_user, viewer_user, operator_user, admin_user)] == [
        None,
        None,
        Role.VIEWER,
        Role.OPERATOR,
        Role.ADMINISTRATOR,
    ]
    assert capabilities(viewer_user)["migrate"] is False
    assert capabilities(operator_user)["migrate"] is True and capabilities(operator_user)["host_settings"] is False
    assert capabilities(admin_user)["host_settings"] is True


def test_templates_hide_controls_from_viewers(world, as_persona):
    client = as_persona("viewer")
    body = client.get(world["vm"].get_absolute_url()).content.decode()
    assert "Migrate…" not in body
    body = client.get(reverse("migrations_ui:migrate_vm", args=[world["vm"].guid]), {"to": "hv-b.contoso.test"})
    assert "Move</button>" not in body.content.decode()
