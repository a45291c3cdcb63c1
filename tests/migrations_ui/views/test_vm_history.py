"""A VM's page lists the moves the console made of it (issue 19: the VM's migration history)."""

import pytest

from fabric.models import Host, VirtualMachine
from migrations_ui.jobs.operations import create_job

pytestmark = pytest.mark.django_db


def test_the_vm_page_lists_its_moves_newest_first_with_who_asked(viewer_client, operator_user, demo_fabric):
    vm = VirtualMachine.objects.get(name="dc01")
    others = Host.objects.exclude(pk=vm.host_id).filter(reachable=True).order_by("name")
    first = create_job(vm, others[0], user=operator_user)
    page = viewer_client.get(vm.get_absolute_url()).content.decode()
    history = page[page.index('id="vm-history"') :].split("</section>")[0]
    assert f'href="{first.get_absolute_url()}">{first.pk}</a>' in history
    assert ">operator</td>" in history and others[0].name in history


def test_a_vm_never_moved_says_so(viewer_client, demo_fabric):
    vm = VirtualMachine.objects.get(name="web-dmz01")
    page = viewer_client.get(vm.get_absolute_url()).content.decode()
    assert "This VM has not been moved by the console." in page
