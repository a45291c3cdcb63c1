"""Every URL of the console, for every persona: anonymous, outsider (no role), viewer, operator,
administrator. The list of routes comes from the URL resolver: a route nobody classified here as
mutating, read-only or tested elsewhere fails test_every_route_is_classified."""

from datetime import timedelta

import pytest
from django.urls import URLResolver, get_resolver, resolve, reverse
from django.utils import timezone

from access import Role, capabilities, role_of
from audit.log import record
from audit.models import AuditEvent
from fabric.models import Cluster, Host, SmbShare
from migrations_ui.models import Batch, MaintenanceWindow, MigrationJob
from notifications.models import Webhook
from tests.fabric.factories import make_host, make_vm

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    ready = {"auth_type": "kerberos", "kerberos_delegation": "configured", "use_any_network": True}
    source, destination = make_host("hv-a", **ready), make_host("hv-b", **ready)
    vm = make_vm("web01", host=source)
    job = MigrationJob.objects.create(kind="live", vm=vm, vm_name=vm.name, source=source, destination=destination)
    batch = Batch.objects.create(name="Evacuate hv-a", kind="evacuation", host=source)
    window = MaintenanceWindow.objects.create(
        kind="evacuation", name="Evacuate hv-b", host=destination, starts_at=timezone.now() + timedelta(days=1)
    )
    webhook = Webhook(name="ops", url="http://127.0.0.1:9/", kinds=["job.failed"], enabled=False)
    webhook.set_secret("a-secret-of-16-characters")
    webhook.save()
    return {"vm": vm, "job": job, "destination": destination, "batch": batch, "window": window, "webhook": webhook}


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
        ("ask hosts again", reverse("migrations_ui:ask_hosts_again", args=[job.pk]), {}, "operator"),
        (
            "decide job",
            reverse("migrations_ui:decide_job", args=[job.pk]),
            {"outcome": "succeeded", "checked": "yes"},
            "operator",
        ),
        ("move job", reverse("migrations_ui:move_job", args=[job.pk]), {"direction": "up"}, "operator"),
        ("cancel jobs", reverse("migrations_ui:cancel_jobs"), {"job": [job.pk]}, "operator"),
        ("pause queue", reverse("migrations_ui:host_queue", args=[destination.fqdn]), {"paused": "1"}, "operator"),
        ("refresh host", reverse("fabric:host_refresh", args=["hv-none.test"]), {}, "operator"),  # 404 past the check
        ("refresh cluster", reverse("fabric:cluster_refresh", args=["CL-NONE"]), {}, "operator"),
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
            "schedule window",
            reverse("migrations_ui:schedule_window"),
            {"kind": "evacuation", "host": "hv-a"},
            "operator",
        ),
        ("change window", reverse("migrations_ui:window", args=[world["window"].pk]), {"starts_at": "x"}, "operator"),
        ("cancel window", reverse("migrations_ui:cancel_window", args=[world["window"].pk]), {}, "operator"),
        (
            "host settings",
            reverse("fabric:settings"),
            {"hosts": [destination.fqdn], "max_live_migrations": "x"},  # invalid: nothing reaches a host
            "administrator",
        ),
        (
            "host settings of one host",
            reverse("fabric:host_settings", args=[destination.fqdn]),
            {"max_live_migrations": "x"},
            "administrator",
        ),
        (
            "cluster settings",
            reverse("fabric:cluster_settings", args=["no-such-cluster"]),
            {"max_live_migrations": "x"},
            "administrator",
        ),
        ("add host", reverse("fabric_admin:host_add"), {"fqdn": "bad name"}, "administrator"),
        ("edit host", reverse("fabric_admin:host_edit", args=[destination.fqdn]), {"port": "x"}, "administrator"),
        # Unconfirmed: nothing is removed.
        ("remove host", reverse("fabric_admin:host_remove", args=[destination.fqdn]), {}, "administrator"),
        ("check host", reverse("fabric:host_check", args=[destination.fqdn]), {}, "operator"),
        ("add webhook", reverse("notifications:webhook_add"), {"name": "x", "url": "ftp://x"}, "administrator"),
        (
            "edit webhook",
            reverse("notifications:webhook_edit", args=[world["webhook"].pk]),
            {"url": "x"},
            "administrator",
        ),
        # Unconfirmed: nothing is deleted.
        ("delete webhook", reverse("notifications:webhook_delete", args=[world["webhook"].pk]), {}, "administrator"),
        # Disabled and unreachable: the ping fails at once, nothing leaves the machine.
        ("test webhook", reverse("notifications:webhook_test", args=[world["webhook"].pk]), {}, "administrator"),
        (
            "host move timeouts",
            reverse("fabric:host_timeouts", args=[destination.fqdn]),
            {"move_stall_timeout_s": "60"},
            "operator",
        ),
        (
            "cluster move timeouts",
            reverse("fabric:cluster_timeouts", args=["CL-NONE"]),  # 404 past the check
            {"move_stall_timeout_s": "60"},
            "operator",
        ),
    ]


def read_only(world):
    """(name, URL) of every page that only shows something: GET and HEAD, every other method is 405."""
    vm, job, batch = world["vm"], world["job"], world["batch"]
    event = record("test.read_only", target_type="test", target_name="an audit row to show")
    cluster = Cluster.objects.get_or_create(name="CL-A", fqdn="cl-a.test", functional_level=11)[0]
    share = SmbShare.objects.get_or_create(unc_path="\\\\fs9.test\\vms", file_server="fs9.test")[0]
    return [
        ("hosts", reverse("fabric:hosts")),
        ("hosts folder", "/hosts/"),  # redirects to the list
        ("host", reverse("fabric:host", args=[vm.host.fqdn])),
        ("vms", reverse("fabric:vms")),
        ("vm", vm.get_absolute_url()),
        ("clusters", reverse("fabric:clusters")),
        ("cluster", cluster.get_absolute_url()),
        ("shares", reverse("fabric:shares")),
        ("search", reverse("search") + "?q=zzz"),  # no match: the page itself, not a redirect
        ("share", share.get_absolute_url()),
        ("jobs", reverse("migrations_ui:jobs")),
        ("job", job.get_absolute_url()),
        ("history", reverse("migrations_ui:history")),
        ("history csv", reverse("migrations_ui:history_csv")),
        ("maintenance report", reverse("migrations_ui:maintenance_report", args=[vm.host.fqdn])),
        ("maintenance report csv", reverse("migrations_ui:maintenance_report_csv", args=[vm.host.fqdn])),
        ("maintenance windows", reverse("migrations_ui:windows")),
        ("batch", batch.get_absolute_url()),
        ("audit", reverse("audit:list")),
        ("audit event", reverse("audit:detail", args=[event.pk])),
        ("audit csv", reverse("audit:export_csv")),
        ("audit json", reverse("audit:export_json")),
        ("audit json lines", reverse("audit:export_jsonl")),
    ]


# Routes tested in their own files, with why they are neither in mutating() nor in read_only().
ELSEWHERE = {
    "accounts/login/": "anyone may sign in: tests/console/test_hardening.py (lockout, CSRF)",
    "accounts/logout/": "POST only, for oneself: Django's LogoutView",
    "oidc/authenticate/": "single sign-on, open before signing in, 404 when off: tests/access/test_oidc.py",
    "oidc/callback/": "single sign-on's return from the provider, off by default: tests/access/test_oidc.py",
    "i18n/setlang/": "open before signing in too: tests/console/test_i18n.py",
    "account/tokens/": "a user's own API tokens: tests/api/test_tokens.py",
    "account/tokens/<int:pk>/revoke/": "a user's own API tokens: tests/api/test_tokens.py",
    "manage/webhooks/": "administrators only, GET too (403 for viewers): tests/notifications/test_pages.py",
    "account/notifications/": "a user's own notification choices: tests/notifications/test_pages.py",
    "favicon.ico": "the icon, open to anyone as browsers ask for it: tests/console/test_not_found.py",
    "metrics": "Prometheus, its own token and network checks, off by default: tests/console/test_metrics.py",
}
# Django's admin site and the API (tests/api/test_access.py) are checked apart.
APART = ("admin/", "api/v1/")


def console_routes(patterns=None, prefix: str = "") -> set[str]:
    """Every route of the console as the URL resolver has it (the same text as resolve(url).route)."""
    routes = set()
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if route.startswith(APART):
            continue
        if isinstance(pattern, URLResolver):
            routes |= console_routes(pattern.url_patterns, route)
        else:
            routes.add(route)
    return routes


def test_every_route_is_classified(world):
    urls = [url.split("?")[0] for _, url, *_ in [*mutating(world), *read_only(world)]]
    classified = {resolve(url).route for url in urls} | set(ELSEWHERE)

    # A new route must be added to mutating(), read_only() or ELSEWHERE, so that its access is tested.
    assert console_routes() - classified == set()
    assert classified - console_routes() == set()  # nothing stale listed


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
    assert list(MaintenanceWindow.objects.values_list("state", flat=True)) == ["scheduled"]
    assert not Host.objects.filter(move_stall_timeout_s__isnull=False).exists()
    assert list(Webhook.objects.values_list("name", "url", "enabled")) == [("ops", "http://127.0.0.1:9/", False)]


@pytest.mark.parametrize("persona", ["viewer", "operator", "administrator"])
def test_every_role_sees_the_pages(world, as_persona, persona):
    client = as_persona(persona)
    pages = [url for name, url in read_only(world) if name != "hosts folder"]
    pages += [reverse("migrations_ui:evacuate", args=[world["vm"].host.fqdn])]
    for url in pages:
        assert client.get(url).status_code == 200, url
        assert client.head(url).status_code == 200, url


@pytest.mark.parametrize("persona", ["viewer", "operator", "administrator"])
def test_read_only_pages_refuse_unsafe_methods(world, as_persona, persona):
    client = as_persona(persona)
    for name, url in read_only(world):
        for method in ("post", "put", "patch", "delete"):
            response = getattr(client, method)(url)
            assert response.status_code == 405, (name, method, response.status_code)
            assert set(response["Allow"].split(", ")) == {"GET", "HEAD"}, name


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
