"""The top bar's search: one match opens its page, several are listed by kind, nothing says so."""

import pytest
from django.test import Client
from django.urls import reverse

from fabric.models import Host, VirtualMachine
from migrations_ui.models import MigrationJob

pytestmark = pytest.mark.django_db
SEARCH = reverse("search")


def test_one_match_opens_its_page(viewer_client, demo_fabric):
    vm = VirtualMachine.objects.get(name="dc01")
    assert viewer_client.get(SEARCH, {"q": "dc01"})["Location"] == vm.get_absolute_url()
    assert viewer_client.get(SEARCH, {"q": str(vm.guid)})["Location"] == vm.get_absolute_url()
    host = Host.objects.get(name="hv-old1")
    assert viewer_client.get(SEARCH, {"q": "hv-old1.contoso"})["Location"] == host.get_absolute_url()
    assert viewer_client.get(SEARCH, {"q": "vmstore2"})["Location"].startswith("/shares/")


def test_a_job_by_its_number(viewer_client, demo_fabric):
    vm = VirtualMachine.objects.get(name="dc01")
    job = MigrationJob.objects.create(
        kind="live", vm=vm, vm_name=vm.name, source=vm.host, destination=Host.objects.exclude(pk=vm.host_id).first()
    )
    assert viewer_client.get(SEARCH, {"q": f"#{job.pk}"})["Location"] == job.get_absolute_url()


def test_several_matches_are_listed_by_kind(viewer_client, demo_fabric):
    page = viewer_client.get(SEARCH, {"q": "CL-"})
    assert page.status_code == 200
    assert [c.name for c in page.context["found"]["clusters"]] == ["CL-NEW", "CL-OLD"]
    hv = viewer_client.get(SEARCH, {"q": "hv-new"})
    assert len(hv.context["found"]["hosts"]) == 3 and "hv-new1.contoso.test" in hv.content.decode()


def test_nothing_and_an_empty_query_say_so(viewer_client, demo_fabric):
    assert "Nothing matches “zzz-none”." in viewer_client.get(SEARCH, {"q": "zzz-none"}).content.decode()
    assert "Press / on any page to search." in viewer_client.get(SEARCH).content.decode()


def test_every_page_has_the_search_box_and_strangers_get_none(viewer_client, demo_fabric):
    assert 'role="search"' in viewer_client.get(reverse("fabric:vms")).content.decode()
    stranger = Client().get(SEARCH, {"q": "dc01"})
    assert stranger.status_code == 302 and stranger["Location"].startswith(reverse("login"))
