"""The Clusters and Shares pages (issue 19: what VMM users look for): nodes, CSVs and shares of a
cluster; each share with its hosts, VMs and disks, a short-name registration flagged in the inventory."""

import pytest
from django.urls import reverse

from fabric.models import Cluster, SmbShare

pytestmark = pytest.mark.django_db


def test_the_clusters_page_counts_nodes_and_vms(viewer_client, demo_fabric):
    body = viewer_client.get(reverse("fabric:clusters")).content.decode()
    row = body[body.index(">CL-NEW</a>") :].split("</tr>")[0]
    cells = [c.split("<")[0] for c in row.split('<td class="num">')[1:]]
    assert cells[:5] == ["11", "3", "3", "18", "18"]  # functional level, nodes, reachable, VMs, HA VMs
    assert 'href="/clusters/CL-OLD/"' in body


def test_a_cluster_page_lists_its_nodes_volumes_and_shares(viewer_client, demo_fabric):
    page = viewer_client.get(reverse("fabric:cluster", args=["CL-NEW"]))
    body = page.content.decode()
    assert [n.name for n in page.context["nodes"]] == ["hv-new1", "hv-new2", "hv-new3"]
    volumes = body[body.index('id="volumes"') :].split("</section>")[0]
    assert 'C:\\ClusterStorage\\Volume1</code></td><td class="num">11' in volumes
    assert "\\\\fs01.contoso.test\\vms" in body
    assert reverse("fabric:cluster", args=["CL-NEW"]) == Cluster.objects.get(name="CL-NEW").get_absolute_url()
    assert viewer_client.get(reverse("fabric:cluster", args=["CL-NONE"])).status_code == 404


def test_the_shares_page_flags_a_short_name_registration(viewer_client, demo_fabric):
    body = viewer_client.get(reverse("fabric:shares")).content.decode()
    short = body[body.index("\\\\fs01\\vmstore2") :].split("</tr>")[0]
    assert "short name" in short
    full = body[body.index("\\\\fs01.contoso.test\\vms") :].split("</tr>")[0]
    assert "short name" not in full


def test_a_share_page_names_its_hosts_vms_disks_and_the_fix(viewer_client, demo_fabric):
    share = SmbShare.objects.get(unc_path="\\\\fs01\\vmstore2")
    page = viewer_client.get(share.get_absolute_url())
    body = page.content.decode()
    assert "register it by the file server's FQDN, <code>fs01.contoso.test</code>" in body
    stored = share.vms.filter(removed=False).order_by("name")
    assert [vm.name for vm in page.context["vms"]] == [vm.name for vm in stored]
    assert len(page.context["vms"]) == 2 and len(page.context["disks"]) == 2
    assert viewer_client.get(reverse("fabric:share", args=[9999])).status_code == 404


def test_the_drift_view_leaves_out_standalone_hosts_that_do_not_drift(viewer_client, demo_fabric):
    # It said "Standalone hosts: No standalone hosts." although there are some.
    body = viewer_client.get(reverse("fabric:hosts"), {"flagged": "1"}).content.decode()
    assert "No standalone hosts." not in body
