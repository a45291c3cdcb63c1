import re
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from fabric.models import AuthType, Delegation, PerformanceOption, Transport, VmState
from tests.fabric.factories import GB, make_cluster, make_disk, make_host, make_location, make_share, make_vm

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def text(response) -> str:
    # filesizeformat separates number and unit with a no-break space.
    return response.content.decode().replace("\xa0", " ")


# An id no VM has. A constant, not uuid4(): parametrize ids must be the same in every pytest-xdist
# worker's collection.
UNKNOWN_VM = uuid.UUID("00000000-0000-4000-8000-000000000404")


def vm_names(response) -> list[str]:
    return [vm.name for vm in response.context["page"]]


# --- access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        reverse("fabric:hosts"),
        reverse("fabric:host", args=["hv01.contoso.test"]),
        reverse("fabric:vms"),
        reverse("fabric:vm", args=[UNKNOWN_VM]),
        "/hosts/",
    ],
)
def test_it_redirects_anonymous_users_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url}"


def test_it_shows_the_login_page(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b'name="password"' in response.content
    assert b"csrfmiddlewaretoken" in response.content


def test_it_signs_in_and_lands_on_all_hosts(client, operator_user):
    response = client.post(reverse("login"), {"username": "operator", "password": "operator-pass-123"})
    assert response.status_code == 302
    assert response.url == reverse("fabric:hosts")


def test_it_shows_the_nav_bar_with_user_and_logout_form(operator_client):
    response = operator_client.get(reverse("fabric:hosts"))
    html = text(response)
    assert f'href="{reverse("fabric:hosts")}"' in html
    assert f'href="{reverse("fabric:vms")}"' in html
    assert "operator" in html
    assert f'<form method="post" action="{reverse("logout")}">' in html
    assert 'hx-headers=\'{"X-CSRFToken": ' in html
    assert "/static/django_htmx/htmx-2.min.js" in html
    assert "/static/css/console.css" in html


# --- All Hosts ------------------------------------------------------------------------------------


def test_it_shows_clusters_with_their_nodes_then_standalone_hosts(operator_client):
    cluster = make_cluster("CLU-PROD", functional_level=11, max_parallel_migrations=3)
    node = make_host(
        "hv-node1",
        cluster=cluster,
        memory_total_bytes=512 * GB,
        memory_available_bytes=200 * GB,
        performance_option=PerformanceOption.SMB,
        max_storage_migrations=4,
    )
    make_vm("running-1", host=node)
    make_vm("moving-1", host=node, migrating=True)
    make_vm("gone-1", host=node, removed=True, migrating=True)
    make_host("hv-alone", reachable=False, last_error="WinRM: connection refused on 10.0.0.9:5986")

    response = operator_client.get(reverse("fabric:hosts"))

    assert response.status_code == 200
    html = text(response)
    assert f'id="cluster-{cluster.pk}"' in html
    assert "CLU-PROD" in html
    assert "Functional level 11" in html
    assert "MaximumParallelMigrations 3" in html
    assert html.index("CLU-PROD") < html.index("hv-node1") < html.index("Standalone hosts") < html.index("hv-alone")
    assert f'href="{node.get_absolute_url()}"' in html
    node_row = response.context["clusters"][0].node_list[0]
    assert (node_row.vm_count, node_row.migrating_count) == (2, 1)
    assert '<td class="num">2</td>' in html
    assert '<span class="badge busy">1</span>' in html
    assert "200.0 GB / 512.0 GB" in html
    assert "SMB" in html
    assert "3 / 4" in html  # effective live limit (cluster) / storage limit
    assert "Unreachable" in html
    assert "WinRM: connection refused on 10.0.0.9:5986" in html


def test_it_says_when_there_are_no_standalone_hosts(operator_client):
    make_host(cluster=make_cluster())
    response = operator_client.get(reverse("fabric:hosts"))
    assert "No standalone hosts." in response.content.decode()


@pytest.mark.parametrize("hosts", [5, 60])
def test_it_keeps_the_hosts_page_queries_constant(admin_client, django_assert_num_queries, hosts):
    clusters = [make_cluster(), make_cluster()]
    for i in range(hosts):
        host = make_host(cluster=clusters[i % 3] if i % 3 < 2 else None)
        make_vm(host=host, migrating=i % 2 == 0)
    # session, user, clusters, their nodes, standalone hosts, the drift guard's settings
    with django_assert_num_queries(6):
        response = admin_client.get(reverse("fabric:hosts"))
    assert response.content.decode().count('<tr class="host') == hosts


# --- Host detail ----------------------------------------------------------------------------------


def test_it_shows_a_host_with_its_settings_vms_storage_and_connection(operator_client):
    cluster = make_cluster("CLU-A", max_parallel_migrations=1)
    host = make_host(
        "hv07",
        cluster=cluster,
        address="10.1.2.7",
        port=5985,
        transport=Transport.HTTP,
        max_live_migrations=4,
        max_storage_migrations=3,
        performance_option=PerformanceOption.COMPRESSION,
        auth_type=AuthType.KERBEROS,
        kerberos_delegation=Delegation.CONFIGURED,
        migration_networks=["10.20.0.0/24", "10.30.0.0/24"],
        virtual_switches=["External", "Storage-vSwitch"],
        vm_path="D:\\Hyper-V",
    )
    make_location(host, "D:\\Hyper-V", is_default=True)
    make_location(host, "E:\\Extra", added_by_user=True)
    make_share("\\\\fs01.contoso.test\\vms", hosts=[host])
    make_vm("web01", host=host, migrating=True)
    make_vm("old-vm", host=host, removed=True)
    make_vm("elsewhere")

    response = operator_client.get(reverse("fabric:host", args=["hv07.contoso.test"]))

    assert response.status_code == 200
    html = text(response)
    assert "hv07.contoso.test" in html
    assert "web01" in html
    assert "old-vm" not in html
    assert "elsewhere" not in html
    assert "Enabled" in html
    assert "(cluster MaximumParallelMigrations; host setting 4)" in html
    assert "<dt>Simultaneous storage migrations</dt><dd>3</dd>" in html
    assert "<dt>Performance option</dt><dd>Compression</dd>" in html
    assert "<dt>Authentication</dt><dd>Kerberos</dd>" in html
    assert "10.20.0.0/24" in html
    assert "10.30.0.0/24" in html
    assert "Storage-vSwitch" in html
    assert "E:\\Extra" in html
    assert "Added by an operator" in html
    assert "\\\\fs01.contoso.test\\vms" in html
    assert "<code>10.1.2.7</code>" in html
    assert "<dt>Port</dt><dd>5985</dd>" in html
    assert "HTTP (5985)" in html
    assert "<dt>Running migrations</dt><dd>1</dd>" in html
    assert "password" not in html.lower()


def test_it_shows_the_host_limit_and_missing_delegation_on_a_standalone_host(operator_client):
    make_host(
        "hv09",
        max_live_migrations=5,
        auth_type=AuthType.KERBEROS,
        kerberos_delegation=Delegation.MISSING,
        use_any_network=True,
        reachable=False,
        last_error="Access is denied",
    )
    html = operator_client.get(reverse("fabric:host", args=["hv09.contoso.test"])).content.decode()
    assert "<dt>Simultaneous live migrations</dt>\n      <dd>\n        5" in html
    assert "MaximumParallelMigrations" not in html
    assert "Missing" in html and "(moves between hosts fail with 0x8009030E)" in html
    assert "Use any available network" in html
    assert "Unreachable" in html
    assert "Access is denied" in html


def test_the_hosts_folder_of_a_host_pages_url_leads_to_all_hosts(operator_client):
    response = operator_client.get("/hosts/", follow=True)
    assert response.redirect_chain == [(reverse("fabric:hosts"), 302)]
    assert response.status_code == 200


def test_it_answers_404_for_an_unknown_host(operator_client):
    response = operator_client.get(reverse("fabric:host", args=["nope.contoso.test"]))
    assert response.status_code == 404
    assert "Not found" in response.content.decode()
    assert response.templates[0].name == "404.html"


@pytest.mark.parametrize("vms", [5, 60])
def test_it_keeps_the_host_page_queries_constant(admin_client, django_assert_num_queries, vms):
    host = make_host("hv01", cluster=make_cluster())
    make_location(host, "D:\\VMs", is_default=True)
    share = make_share(hosts=[host])
    for i in range(vms):
        make_vm(host=host, share=share if i % 2 else None)
    # session, user, host + cluster, storage locations, shares, VMs, every host's settings (drift),
    # migration slots in use, the last hour's jobs with their admission times (the slots chart)
    with django_assert_num_queries(9):
        response = admin_client.get(reverse("fabric:host", args=["hv01.contoso.test"]))
    assert len(response.context["vms"]) == vms


# --- VM list --------------------------------------------------------------------------------------


@pytest.fixture
def fabric():
    prod, test = make_cluster("PROD"), make_cluster("TEST")
    hv1 = make_host("hv1", cluster=prod)
    hv2 = make_host("hv2", cluster=test)
    hv3 = make_host("hv3")
    make_vm("sql01", host=hv1, state=VmState.RUNNING, is_clustered=True)
    make_vm("sql02", host=hv2, state=VmState.OFF)
    make_vm("web01", host=hv2, state=VmState.RUNNING, share=make_share("\\\\fs9.contoso.test\\web"))
    make_vm("web02", host=hv3, state=VmState.SAVED)
    make_vm("retired", host=hv3, state=VmState.OFF, removed=True)
    return {"hv1": hv1, "hv2": hv2, "hv3": hv3}


def test_it_lists_vms_with_their_columns_and_hides_removed_ones(operator_client, fabric):
    response = operator_client.get(reverse("fabric:vms"))
    assert response.status_code == 200
    assert vm_names(response) == ["sql01", "sql02", "web01", "web02"]
    html = text(response)
    assert "<th>Name</th><th>State</th><th>Host</th><th>Cluster</th>" in html
    assert "PROD" in html
    assert "\\\\fs9.contoso.test\\web" in html
    assert "4.0 GB" in html
    assert "10.0" in html
    assert "removed VMs hidden" in html
    assert 'id="vm-results"' in html  # the full page, with the filter form
    assert 'hx-get="/vms/"' in html
    assert 'hx-target="#vm-results"' in html
    assert 'hx-push-url="true"' in html
    assert 'action="/vms/"' in html


def test_it_keeps_the_chosen_filters_selected_in_the_form(operator_client, fabric):
    response = operator_client.get(reverse("fabric:vms"), {"host": "hv2.contoso.test", "state": "off", "q": "sq"})
    html = text(response)
    assert '<option value="hv2.contoso.test" selected>hv2.contoso.test</option>' in html
    assert '<option value="hv1.contoso.test">hv1.contoso.test</option>' in html
    assert '<option value="PROD">PROD</option>' in html
    assert '<option value="off" selected>Off</option>' in html
    assert 'name="q" value="sq"' in html


def test_it_shows_removed_vms_on_request(operator_client, fabric):
    response = operator_client.get(reverse("fabric:vms"), {"removed": "1"})
    assert "retired" in vm_names(response)
    assert 'class="removed"' in response.content.decode()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "running"}, ["sql01", "web01"]),
        ({"host": "hv2.contoso.test"}, ["sql02", "web01"]),
        ({"host": "HV2.contoso.test"}, ["sql02", "web01"]),
        ({"cluster": "PROD"}, ["sql01"]),
        ({"cluster": "test"}, ["sql02", "web01"]),
        ({"q": "SQL"}, ["sql01", "sql02"]),
        ({"q": "web", "state": "saved"}, ["web02"]),
        ({"q": "sql", "cluster": "TEST", "state": "off"}, ["sql02"]),
        ({"q": "retired"}, []),
        ({"cluster": "TEST", "host": "hv2.contoso.test"}, ["sql02", "web01"]),
        ({"cluster": "PROD", "host": "hv2.contoso.test"}, []),
    ],
)
def test_it_filters_vms(operator_client, fabric, params, expected):
    response = operator_client.get(reverse("fabric:vms"), params)
    assert response.status_code == 200
    assert vm_names(response) == expected
    assert response.context["filter"].notices == []


@pytest.mark.parametrize(
    ("params", "notice"),
    [
        ({"state": "exploded"}, "Unknown state “exploded” ignored."),
        ({"host": "ghost.contoso.test"}, "Unknown host “ghost.contoso.test” ignored."),
        ({"cluster": "NOPE"}, "Unknown cluster “NOPE” ignored."),
        ({"page": "abc"}, "Page “abc” is not a number; showing page 1."),
        ({"page": "99999"}, "Page 99999 does not exist; showing page 1."),
        ({"page": "0"}, "Page 0 does not exist; showing page 1."),
        ({"page": "-3"}, "Page -3 does not exist; showing page 1."),
    ],
)
def test_it_ignores_bad_filter_values_with_a_notice(operator_client, fabric, params, notice):
    response = operator_client.get(reverse("fabric:vms"), params)
    assert response.status_code == 200
    assert vm_names(response) == ["sql01", "sql02", "web01", "web02"]
    assert notice in response.content.decode()


def test_it_keeps_the_good_filters_when_one_is_bad(operator_client, fabric):
    response = operator_client.get(reverse("fabric:vms"), {"state": "running", "host": "ghost"})
    assert vm_names(response) == ["sql01", "web01"]
    assert "Unknown host “ghost” ignored." in response.content.decode()


def test_it_escapes_bad_filter_values_in_notices(operator_client, fabric):
    response = operator_client.get(reverse("fabric:vms"), {"state": "<script>x</script>"})
    html = text(response)
    assert "<script>x</script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html


def test_it_returns_only_the_results_fragment_to_htmx(operator_client, fabric):
    response = operator_client.get(reverse("fabric:vms"), {"state": "running"}, **HX)
    assert response.status_code == 200
    assert response.templates[0].name == "partials/vm_table.html"
    html = text(response)
    assert "<html" not in html
    assert "<form" not in html
    assert "sql01" in html
    assert "sql02" not in html
    assert "HX-Request" in response["Vary"]


def test_it_returns_the_full_page_without_htmx_and_on_history_restore(operator_client, fabric):
    plain = operator_client.get(reverse("fabric:vms"))
    restore = operator_client.get(reverse("fabric:vms"), HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HX)
    for response in (plain, restore):
        assert response.templates[0].name == "fabric/vm_list.html"
        assert "<html" in response.content.decode()


def test_it_shows_bad_filter_notices_in_the_fragment(operator_client, fabric):
    response = operator_client.get(reverse("fabric:vms"), {"page": "abc"}, **HX)
    assert "Page “abc” is not a number; showing page 1." in response.content.decode()


def test_it_paginates_50_per_page_and_keeps_filters_in_page_links(operator_client):
    host = make_host("hv1")
    for i in range(60):
        make_vm(f"vm{i:03d}", host=host, state=VmState.RUNNING)
    make_vm("stopped", host=host, state=VmState.OFF)

    first = operator_client.get(reverse("fabric:vms"), {"state": "running"})
    second = operator_client.get(reverse("fabric:vms"), {"state": "running", "page": "2"})
    beyond = operator_client.get(reverse("fabric:vms"), {"state": "running", "page": "99999"})

    assert vm_names(first) == [f"vm{i:03d}" for i in range(50)]
    assert vm_names(second) == [f"vm{i:03d}" for i in range(50, 60)]
    assert vm_names(beyond) == vm_names(second)
    assert "Page 99999 does not exist; showing page 2." in beyond.content.decode()
    html = first.content.decode()
    assert "1\u201350 of 60 virtual machines" in html
    assert 'href="/vms/?state=running&amp;page=2"' in html
    assert 'hx-get="/vms/?state=running&amp;page=2"' in html
    assert "51\u201360 of 60" in second.content.decode()
    assert 'href="/vms/?state=running&amp;page=1"' in second.content.decode()


@pytest.mark.parametrize("vms", [5, 60])
@pytest.mark.parametrize("params", [{}, {"state": "running", "cluster": "PROD", "q": "vm"}])
def test_it_keeps_the_vm_list_queries_constant(admin_client, django_assert_num_queries, vms, params):
    clusters = [make_cluster("PROD"), make_cluster("TEST")]
    hosts = [make_host(cluster=clusters[i % 2]) for i in range(4)] + [make_host()]
    share = make_share()
    for i in range(vms):
        make_vm(host=hosts[i % 5], share=share if i % 3 == 0 else None)
    # session, user, host choices, cluster choices, count, the page's ids, its rows
    with django_assert_num_queries(7):
        response = admin_client.get(reverse("fabric:vms"), params)
    assert 0 < len(response.context["page"]) <= 50


# --- VM detail ------------------------------------------------------------------------------------


def test_it_shows_a_vm_with_its_disks_and_warnings(operator_client):
    cluster = make_cluster("CLU-NEW")
    host = make_host("hv5", cluster=cluster)
    share = make_share("\\\\fs1.contoso.test\\clu", hosts=[host])
    vm = make_vm(
        "sql-node1",
        host=host,
        share=share,
        state=VmState.RUNNING,
        is_clustered=True,
        compat_vector_stale=True,
        config_version="9.0",
        config_path="\\\\fs1.contoso.test\\clu\\sql-node1",
        memory_assigned_bytes=16 * GB,
        processor_count=6,
        switch_names=["External", "Heartbeat"],
    )
    partner = make_vm("sql-node2", host=host)
    make_disk("\\\\fs1.contoso.test\\clu\\quorum.vhdx", vms=[vm, partner], shared=True, size_bytes=10 * GB)
    make_disk(
        "\\\\fs1.contoso.test\\clu\\sql-node1-os.vhdx",
        vms=[vm],
        size_bytes=80 * GB,
        vhd_type="Dynamic",
        max_size_bytes=127 * 2**30,
    )

    response = operator_client.get(reverse("fabric:vm", args=[vm.guid]))

    assert response.status_code == 200
    html = text(response)
    assert "Running" in html
    assert f'href="{host.get_absolute_url()}"' in html
    assert "CLU-NEW" in html
    assert "16.0 GB" in html
    assert "9.0" in html
    assert "\\\\fs1.contoso.test\\clu\\sql-node1" in html
    assert "Yes (clustered role)" in html
    assert "must be restarted before it can migrate within the newer cluster" in html
    assert "Heartbeat" in html
    assert "quorum.vhdx" in html
    assert "sql-node1-os.vhdx" in html
    assert "80.0 GB" in html
    assert "shared VHDX" in html
    assert re.search(r"Virtual processors</dt><dd>6<", html)
    assert "127.0 GB" in html and "Dynamically expanding" in html
    assert f'<a href="{partner.get_absolute_url()}">sql-node2</a>' in html
    assert "gone from Hyper-V" not in html
    disks = {d.path.rsplit("\\", 1)[1]: [o.name for o in d.other_vms] for d in response.context["disks"]}
    assert disks == {"quorum.vhdx": ["sql-node2"], "sql-node1-os.vhdx": []}


def test_it_flags_a_removed_vm(operator_client):
    vm = make_vm("ghost", removed=True, last_seen=timezone.now())
    html = operator_client.get(reverse("fabric:vm", args=[vm.guid])).content.decode()
    assert "gone from Hyper-V at the last sync" in html
    assert "Removed" in html
    assert "must be restarted" not in html


def test_it_shows_a_running_migration_on_the_vm_page(operator_client):
    vm = make_vm("moving", migrating=True)
    html = text(operator_client.get(reverse("fabric:vm", args=[vm.guid])))
    assert '<span class="badge busy">In progress</span> at the last sync' in html


def test_it_tells_a_failed_sign_in(client, operator_user):
    response = client.post(reverse("login"), {"username": "operator", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct" in text(response)


@pytest.mark.parametrize("path", [f"/vms/{UNKNOWN_VM}/", "/vms/not-a-guid/", "/nowhere/"])
def test_it_answers_404_for_an_unknown_vm(operator_client, path):
    make_vm()
    response = operator_client.get(path)
    assert response.status_code == 404
    assert "Not found" in response.content.decode()


def test_it_shows_the_404_page_to_anonymous_users_for_unknown_urls(client):
    response = client.get("/nowhere/")
    assert response.status_code == 404
    assert "Not found" in response.content.decode()


@pytest.mark.parametrize("disks", [5, 60])
def test_it_keeps_the_vm_page_queries_constant(admin_client, django_assert_num_queries, disks):
    vm = make_vm("app", host=make_host(cluster=make_cluster()), share=make_share())
    others = [make_vm() for _ in range(3)]
    for i in range(disks):
        make_disk(vms=[vm, others[i % 3]] if i % 2 else [vm], shared=bool(i % 2))
    # session, user, VM + host + cluster + share, disks, the disks' other VMs, its migration history
    with django_assert_num_queries(6):
        response = admin_client.get(reverse("fabric:vm", args=[vm.guid]))
    assert len(response.context["disks"]) == disks


def test_it_shows_what_real_moves_fail_on_in_english_and_german(operator_client, settings):
    host = make_host("hv6", cluster=make_cluster("CLU-FC"))
    vm = make_vm(
        "tape01",
        host=host,
        is_clustered=True,
        checkpoints=2,
        snapshot_path="D:\\Checkpoints",
        smart_paging_path="D:\\SmartPaging",
        dvd_isos=["C:\\ISO\\setup.iso"],
        passthrough_disks=[3],
        fc_sans=["SAN-Prod"],
        replication_mode="primary",
        replication_replica="hv-dr.contoso.test",
        possible_owners=["hv6", "hv7"],
    )
    url = reverse("fabric:vm", args=[vm.guid])

    html = text(operator_client.get(url))
    for shown in ("D:\\Checkpoints", "D:\\SmartPaging", "C:\\ISO\\setup.iso", "Disk 3", "SAN-Prod", "hv6, hv7"):
        assert shown in html
    assert "Primary, replicating to hv-dr.contoso.test" in html

    operator_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "de"
    german = text(operator_client.get(url))
    assert "Prüfpunkte" in german and "Datenträger 3" in german and "Virtuelles SAN <strong>SAN-Prod</strong>" in german
    assert "Primär, repliziert nach hv-dr.contoso.test" in german and "Mögliche Besitzer" in german
