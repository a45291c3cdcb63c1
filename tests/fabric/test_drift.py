import io
import json
from dataclasses import replace

import pytest
from django.core.management import call_command

from fabric.drift import HostSettingsView, find_drift

NODE = HostSettingsView("n1.c", "n1", "CL", 2, "compression", "kerberos", 2, 2, True)


def nodes(*changes):
    return [replace(NODE, fqdn=f"n{i}.c", name=f"n{i}", **c) for i, c in enumerate(changes, 1)]


def test_it_flags_nothing_when_nodes_agree():
    assert find_drift(nodes({}, {}, {})) == {}


@pytest.mark.parametrize(
    ("change", "label"),
    [
        ({"performance_option": "smb"}, "performance option"),
        ({"auth_type": "credssp"}, "authentication"),
        ({"max_live_migrations": 4}, "simultaneous live migrations"),
        ({"max_storage_migrations": 1}, "simultaneous storage migrations"),
        ({"migration_enabled": False}, "live migration enabled"),
    ],
)
def test_it_flags_every_node_of_a_cluster_that_disagrees(change, label):
    flags = find_drift(nodes({}, {}, change))
    assert set(flags) == {"n1.c", "n2.c", "n3.c"}
    assert all(any(label in reason for reason in reasons) for reasons in flags.values())


def test_it_flags_a_cluster_cap_below_the_nodes_limit():
    flags = find_drift(nodes({"cluster_max_parallel": 1}, {"cluster_max_parallel": 1}))
    assert flags["n1.c"] == ["cluster CL caps live migrations at 1 (MaximumParallelMigrations) while n1 is set to 2"]


def test_it_flags_a_standalone_host_with_an_odd_performance_option():
    standalone = [replace(NODE, fqdn=f"s{i}", name=f"s{i}", cluster=None, cluster_max_parallel=None) for i in range(3)]
    standalone[2] = replace(standalone[2], performance_option="tcpip")
    flags = find_drift(standalone)
    assert list(flags) == ["s2"] and "TCP/IP differs from the rest of the fabric" in flags["s2"][0]


@pytest.mark.django_db
def test_the_demo_fabric_flags_the_odd_host_and_the_capped_cluster(demo_fabric):
    out = io.StringIO()
    call_command("drift", "--json", stdout=out)

    rows = {row["host"]: row for row in json.loads(out.getvalue())["hosts"]}
    assert set(rows) == {"hv-s3.contoso.test", "hv-new1.contoso.test", "hv-new2.contoso.test", "hv-new3.contoso.test"}
    assert rows["hv-new1.contoso.test"]["cluster"] == "CL-NEW"
    assert "caps live migrations at 1" in rows["hv-new2.contoso.test"]["reasons"][0]


@pytest.mark.django_db
def test_all_hosts_flags_drift_and_filters_to_flagged_hosts(admin_client, demo_fabric):
    page = admin_client.get("/")
    assert page.context["flagged"] == 4 and "Settings drift" in page.content.decode()

    flagged = admin_client.get("/?flagged=1")

    names = {h.name for h in flagged.context["standalone"]} | {
        h.name for c in flagged.context["clusters"] for h in c.node_list
    }
    assert names == {"hv-s3", "hv-new1", "hv-new2", "hv-new3"}
    assert [c.name for c in flagged.context["clusters"]] == ["CL-NEW"]


@pytest.mark.django_db
def test_the_reasons_are_said_on_the_page_not_only_on_hover(admin_client, demo_fabric):
    # issue 19 defect 15: the reasons were only in the badge's title.
    flagged = admin_client.get("/?flagged=1").content.decode()
    row = flagged[flagged.index('title="hv-new2.contoso.test"') :].split("</tr>")[0]
    assert '<ul class="drift-reasons"><li>' in row and "caps live migrations at 1" in row
    host_page = admin_client.get("/hosts/hv-new2.contoso.test/").content.decode()
    notice = host_page[host_page.index('id="drift"') :].split("</div>")[0]
    assert "caps live migrations at 1" in notice
    assert 'id="drift"' not in admin_client.get("/hosts/hv-s1.contoso.test/").content.decode()
