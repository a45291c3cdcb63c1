"""Every page and form of the console, fed generated query strings and form fields by an
administrator (every permission, so every form is reached): an answer, never a 500.

The pages' own tests check what each answer says; this one looks for the input nobody thought of
(schemathesis does the same for /api/v1/)."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabric.models import Cluster, Host, VirtualMachine

pytestmark = pytest.mark.django_db

# The field names the console's forms and filters read (request.GET/POST and form fields), and a
# few they do not.
FIELDS = (
    "action", "add_default_location", "add_location", "add_networks", "address", "auth", "auth_type", "cluster",
    "cluster_max_parallel", "direction", "flagged", "fqdn", "hosts", "host", "job", "jobs", "language",
    "max_live_migrations", "max_storage_migrations", "migration_enabled", "mode", "move_stopped", "name", "next",
    "page", "password", "paused", "performance", "performance_option", "port", "remove_locations", "remove_networks",
    "state", "storage_path", "to", "transport", "use_any_network", "username", "vhd", "vhd_path", "vm", "vm_path",
    "q", "cursor", "limit", "kind", "target", "actor", "since", "until", "removed", "csrfmiddlewaretoken",
)  # fmt: skip
# Not walked: signing out would end the session the walk runs in.
SKIPPED = {"accounts/logout/"}

# Text as a browser can send it (UTF-8 has no lone surrogates); broken bytes are sent percent-encoded below.
values = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["", "0", "-1", "on", "true", "up", "down", "live", "live_vsm", "storage", "smb", "tcpip",
                     "compression", "\\\\fs01\\vms", "C:\\ClusterStorage\\Volume1", "hv-s1.contoso.test",
                     "../../etc", "%", "\x00"]),
    # Well-formed but impossible dates and times (Django's parsers raise ValueError on them), and
    # values past SQLite's 50,000-character LIKE patterns.
    st.sampled_from(["2026-02-30", "2026-13-01", "2026-01-01T25:00", "9999-12-31T23:00-05:00",
                     "0001-01-01T00:00+05:00", "x" * 50_001, "%" * 50_001, "_" * 50_001]),
)  # fmt: skip
forms = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
    st.lists(values, max_size=3),
    max_size=6,
)


def routes() -> list[str]:
    found = []

    def walk(resolver: URLResolver, prefix: str) -> None:
        for p in resolver.url_patterns:
            if isinstance(p, URLResolver):
                walk(p, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                found.append(prefix + str(p.pattern))

    walk(get_resolver(), "")
    return [r for r in found if not r.startswith(("admin/", "api/v1/", "static/")) and r not in SKIPPED]


def fill(route: str, draw_id: int) -> str:
    """The route with real objects of the demo fabric in its converters, or a made-up one."""
    host = Host.objects.order_by("fqdn").first()
    vm = VirtualMachine.objects.order_by("name").first()
    cluster = Cluster.objects.order_by("name").first()
    path = "/" + route
    for token, value in (
        ("<str:fqdn>", host.fqdn),
        ("<uuid:guid>", str(vm.guid)),
        ("<str:cluster>", cluster.name),
        ("<int:pk>", str(draw_id)),
    ):
        path = path.replace(token, value)
    return path


@pytest.fixture
def walk_client(admin_client, admin_user, demo_fabric):
    """The demo fabric with an evacuation queued: jobs 1-4, batch 1 and audit events to walk."""
    from migrations_ui.jobs.batches import start_batch
    from migrations_ui.models import BatchKind
    from migrations_ui.planning.inventory import evacuation_plan

    node = Host.objects.get(name="hv-new2")
    start_batch(evacuation_plan(node), BatchKind.EVACUATION, "Evacuate hv-new2", host=node, user=admin_user)
    return admin_client


def test_every_page_is_walked(demo_fabric):
    # The walk below must reach the pages themselves: a new converter would leave "<" in a path.
    assert len(routes()) > 25
    for route in routes():
        assert "<" not in fill(route, 1), route


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(route=st.sampled_from(routes()), query=forms, data=forms, draw_id=st.integers(0, 5))
def test_no_page_answers_generated_input_with_a_server_error(walk_client, route, query, data, draw_id):
    path = fill(route, draw_id)
    flat_query = [(k, v) for k, vs in query.items() for v in vs]
    got = walk_client.get(path, flat_query)
    assert got.status_code < 500, (path, flat_query)
    posted = walk_client.post(path, data)
    assert posted.status_code < 500, (path, data)
    # Bytes that are not UTF-8, as a hand-made URL may carry them.
    broken = "&".join(f"{k}=%FF%ED%A0%80%00" for k in list(query)[:3] or ["q"])
    got = walk_client.get(f"{path}?{broken}")
    assert got.status_code < 500, (path, broken)
    # htmx asks for fragments of the same pages.
    got = walk_client.get(path, flat_query, headers={"HX-Request": "true"})
    assert got.status_code < 500, (path, flat_query, "htmx")
    posted = walk_client.post(path, data, headers={"HX-Request": "true"})
    assert posted.status_code < 500, (path, data, "htmx")


# The values found to give 500s, sent to every page in the fields that read text, dates and numbers
# (the generated walk above reaches a given page and field with one of them only by chance).
READ = ("q", "actor", "target", "action", "since", "until", "page", "cursor", "limit", "vm", "host", "cluster",
        "username", "name", "fqdn", "to", "state", "job")  # fmt: skip
FOUND = ["2026-02-30", "2026-13-01", "2026-01-01T25:00", "9999-12-31T23:00-05:00", "x" * 50_001, "%" * 50_001]


@pytest.mark.parametrize("value", FOUND, ids=lambda v: v[:12])
def test_no_page_answers_the_inputs_found_with_a_server_error(walk_client, value):
    from audit.log import record

    # SQLite evaluates the lockout's LIKE only against rows of failed sign-ins: have one.
    record("login_failed", username="someone", outcome="failure")
    data = dict.fromkeys(READ, value)
    for route in routes():
        path = fill(route, 1)
        assert walk_client.get(path, data).status_code < 500, (path, value[:20])
        assert walk_client.post(path, data).status_code < 500, (path, value[:20])
