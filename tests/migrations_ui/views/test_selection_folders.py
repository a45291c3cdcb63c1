"""Migrate selected: the operator chooses the folder each Live (VSM) move copies the VM's files to
(issue 19), among the destination's storage locations; the choice reaches the job."""

import pytest
from django.urls import reverse

from fabric.models import Host, StorageLocation, VirtualMachine
from migrations_ui.models import Batch, MigrationJob

pytestmark = pytest.mark.django_db

SELECTED = reverse("migrations_ui:migrate_selected")
# In the demo, hv-s3's VMs are copied to hv-s4 (standalone hosts, no shared storage): Live (VSM).
TO = "hv-s4"
DEFAULT = "D:\\Hyper-V"
FAST = "E:\\Fast VMs"


@pytest.fixture
def copies(demo_fabric):
    """Two VMs whose moves to hv-s4 copy their files, and hv-s4 with one more storage location."""
    to = Host.objects.get(name=TO)
    StorageLocation.objects.create(host=to, path=FAST, added_by_user=True)
    vms = list(VirtualMachine.objects.filter(name__in=["lab-01", "dc01"]).order_by("name"))
    return to, vms


def params(to, vms, paths=None):
    """The page's query: the selection, the destination and the folders chosen ({vm: path})."""
    chosen = {f"path_{vm.guid}": path for vm, path in (paths or {}).items()}
    return {"vm": [str(v.guid) for v in vms], "to": to.fqdn, **chosen}


def test_each_live_vsm_move_offers_the_destinations_folders_default_first(operator_client, copies):
    to, vms = copies
    response = operator_client.get(SELECTED, params(to, vms))
    assert response.status_code == 200
    assert {m.transfer_type for m in response.context["plan"].moves} == {"live_vsm"}
    body = response.content.decode()
    for vm in vms:
        select = body[body.index(f'name="path_{vm.guid}"') :]
        select = select[: select.index("</select>")]
        assert 'form="replan"' in select
        assert select.index(f"{DEFAULT} (the host's default)") < select.index(f'<option value="{FAST}">')
    assert body.count(f"files to <code>{DEFAULT}</code>") == 2


def test_the_chosen_folder_reaches_the_job_and_the_others_go_to_the_default(operator_client, copies):
    to, (dc01, lab01) = copies
    response = operator_client.post(SELECTED, params(to, [dc01, lab01], {lab01: FAST}))
    assert response.status_code == 302
    jobs = {j.vm_name: j for j in Batch.objects.get().jobs.all()}
    assert jobs["lab-01"].storage_path == FAST
    assert jobs["dc01"].storage_path == DEFAULT  # as before: the destination's default VM folder


def test_plan_again_keeps_the_choice_and_start_carries_it(operator_client, copies):
    to, (dc01, lab01) = copies
    response = operator_client.get(SELECTED, params(to, [dc01, lab01], {lab01: FAST}))
    assert response.status_code == 200
    body = response.content.decode()
    assert f'<option value="{FAST}" selected>' in body
    assert f"files to <code>{FAST}</code>" in body and f"files to <code>{DEFAULT}</code>" in body
    start = body[body.index('method="post" action="' + SELECTED) :]
    assert f'<input type="hidden" name="path_{lab01.guid}" value="{FAST}">' in start
    assert f"path_{dc01.guid}" not in start  # no choice made: the default


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("E:\\Elsewhere", "E:\\Elsewhere is not a storage location of hv-s4"),
        ("C:\\Windows\\VMs", "C:\\Windows\\VMs is not a storage location of hv-s4"),
        ("relative\\folder", "Give a local path such as D:\\Hyper-V"),
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_folder_not_offered_answers_400_at_its_field_and_starts_nothing(
    operator_client, copies, path, message, method
):
    to, (dc01, lab01) = copies
    response = getattr(operator_client, method)(SELECTED, params(to, [dc01, lab01], {lab01: path}))
    assert response.status_code == 400
    body = response.content.decode()
    error = body[body.index(f'id="path-error-{lab01.guid}"') :]
    assert message in error[: error.index("</p>")]
    assert "Nothing was started." in body and 'method="post"' not in body.split("<main>")[1]
    assert not Batch.objects.exists() and not MigrationJob.objects.exists()


def test_an_unusable_storage_location_is_not_offered(operator_client, copies):
    # A share by its short name: Hyper-V could not use it, and create_job would refuse the move.
    to, (_, lab01) = copies
    StorageLocation.objects.create(host=to, path="\\\\fs01\\vmstore2", added_by_user=True)
    body = operator_client.get(SELECTED, params(to, [lab01])).content.decode()
    assert "\\\\fs01\\vmstore2" not in body
    response = operator_client.post(SELECTED, params(to, [lab01], {lab01: "\\\\fs01\\vmstore2"}))
    assert response.status_code == 400 and not Batch.objects.exists()


def test_a_viewer_sees_the_chosen_folder_but_no_choice(viewer_client, copies):
    to, (dc01, lab01) = copies
    response = viewer_client.get(SELECTED, params(to, [dc01, lab01], {lab01: FAST}))
    body = response.content.decode()
    assert response.status_code == 200 and f"files to <code>{FAST}</code>" in body
    assert '<select name="path_' not in body and 'method="post" action="' + SELECTED not in body


def test_the_choice_is_german_too(operator_client, copies):
    to, (_, lab01) = copies
    operator_client.cookies["django_language"] = "de"
    body = operator_client.get(SELECTED, params(to, [lab01], {lab01: "E:\\Elsewhere"})).content.decode()
    assert "ist kein Speicherort von hv-s4" in body
    assert "Speicherordner für lab-01" in body and "(Standard des Hosts)" in body
