import re

import pytest
from django.urls import reverse

from fabric.models import StorageLocation
from migrations_ui.models import JobEvent, MigrationJob
from tests.fabric.factories import GB, make_cluster, make_disk, make_host, make_location, make_share, make_vm

pytestmark = pytest.mark.django_db

SHARE = "\\\\fs01.contoso.test\\vms"
READY = {"auth_type": "kerberos", "kerberos_delegation": "configured", "use_any_network": True}


@pytest.fixture
def fabric():
    s1 = make_host("hv-s1", vm_path="D:\\Hyper-V", **READY)
    s2 = make_host("hv-s2", **READY)
    s3 = make_host("hv-s3", vm_path="D:\\Hyper-V", **READY)
    make_location(s3, "D:\\Hyper-V", is_default=True)
    make_location(s1, "D:\\Hyper-V", is_default=True)
    share = make_share(SHARE, hosts=[s1, s2])
    make_share("\\\\fs01\\vmstore2", hosts=[s1], file_server="fs01", file_server_fqdn="fs01.contoso.test")
    vm = make_vm("web01", host=s1, config_path=SHARE + "\\web01", share=share, memory_assigned_bytes=8 * GB)
    make_disk(SHARE + "\\web01\\web01.vhdx", vms=[vm])
    return {"s1": s1, "s2": s2, "s3": s3, "vm": vm}


def wizard(vm):
    return reverse("migrations_ui:migrate_vm", args=[vm.guid])


def storage_wizard(vm):
    return reverse("migrations_ui:migrate_storage", args=[vm.guid])


def test_it_lists_every_destination_with_its_transfer_type(admin_client, fabric):
    response = admin_client.get(wizard(fabric["vm"]))

    assert response.status_code == 200
    rows = {h.name: h for h, _ in response.context["ranked"]}
    assert set(rows) == {"hv-s2", "hv-s3"}
    kinds = {h.name: a.transfer_type for h, a in response.context["ranked"]}
    assert kinds == {"hv-s2": "live", "hv-s3": "live_vsm"}
    assert b"Live (VSM)" in response.content and b"<html" in response.content


def test_it_ranks_blocked_hosts_last(admin_client, fabric):
    fabric["s2"].virtual_switches = ["Other"]
    fabric["s2"].save()

    ranked = admin_client.get(wizard(fabric["vm"])).context["ranked"]

    assert [h.name for h, _ in ranked] == ["hv-s3", "hv-s2"]
    assert ranked[1][1].rating == 0
    assert any(f.rule == "vswitch-missing" for f in ranked[1][1].findings)


def test_it_answers_htmx_with_the_details_fragment(admin_client, fabric):
    response = admin_client.get(wizard(fabric["vm"]), {"to": fabric["s3"].fqdn}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert "Live (VSM)" in body
    assert 'value="D:\\Hyper-V"' in body  # the destination's default location is proposed
    assert "Move</button>" in body


def test_it_checks_a_typed_share_path_for_the_fqdn(admin_client, fabric):
    response = admin_client.get(
        wizard(fabric["vm"]),
        {"to": fabric["s3"].fqdn, "storage_path": "\\\\fs01\\vmstore2\\web01"},
        HTTP_HX_REQUEST="true",
    )

    body = response.content.decode()
    assert 'data-rule="smb-path-not-fqdn"' in body
    assert "\\\\fs01.contoso.test\\vmstore2\\web01" in body
    assert "Move</button>" not in body


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"to": "nowhere.contoso.test"}, "no host nowhere.contoso.test"),
        ({"to": "hv-s1.contoso.test"}, "runs already"),
        ({"to": "hv-s3.contoso.test", "storage_path": "D:\\VMs\x01"}, "control characters"),
        ({"to": "hv-s3.contoso.test", "storage_path": "D:\\" + "x" * 300}, "260"),
        ({"to": "hv-s3.contoso.test", "storage_path": "relative"}, "Give a local path"),
        ({"to": "hv-s2.contoso.test", "performance": "warp"}, "Select a valid choice"),
    ],
)
def test_it_refuses_bad_input_with_a_message_and_creates_nothing(admin_client, fabric, params, message):
    htmx = admin_client.get(wizard(fabric["vm"]), params, HTTP_HX_REQUEST="true")
    posted = admin_client.post(wizard(fabric["vm"]), params)

    assert htmx.status_code == 400 and message in htmx.content.decode()
    assert posted.status_code == 400 and message in posted.content.decode()
    assert MigrationJob.objects.count() == 0


def test_it_creates_a_queued_job_and_leads_to_it(admin_client, admin_user, fabric):
    response = admin_client.post(wizard(fabric["vm"]), {"to": fabric["s2"].fqdn, "performance": "smb"})

    job = MigrationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    assert (job.kind, job.state, job.source, job.destination) == ("live", "queued", fabric["s1"], fabric["s2"])
    assert job.performance_option == "smb" and job.requested_by == admin_user
    assert list(JobEvent.objects.filter(job=job).values_list("kind", flat=True)) == ["created"]
    assert "web01" in admin_client.get(reverse("migrations_ui:jobs")).content.decode()


def test_it_redirects_htmx_with_a_header(admin_client, fabric):
    response = admin_client.post(
        wizard(fabric["vm"]), {"to": fabric["s3"].fqdn, "storage_path": "E:\\VMs"}, HTTP_HX_REQUEST="true"
    )

    job = MigrationJob.objects.get()
    assert response["HX-Redirect"] == job.get_absolute_url()
    assert (job.kind, job.storage_path) == ("live_vsm", "E:\\VMs")


def test_it_refuses_a_blocked_move(admin_client, fabric):
    fabric["s2"].memory_available_bytes = 1 * GB
    fabric["s2"].save()

    response = admin_client.post(wizard(fabric["vm"]), {"to": fabric["s2"].fqdn})

    assert response.status_code == 409
    assert "insufficient-memory" in response.content.decode()
    assert MigrationJob.objects.count() == 0


def test_it_refuses_a_second_move_of_a_vm_already_moving(admin_client, fabric):
    admin_client.post(wizard(fabric["vm"]), {"to": fabric["s2"].fqdn})

    response = admin_client.post(wizard(fabric["vm"]), {"to": fabric["s3"].fqdn})

    assert response.status_code == 409
    assert "already has a migration" in response.content.decode()
    assert MigrationJob.objects.count() == 1


def test_it_refuses_a_vm_that_disappeared_since_the_page_was_drawn(admin_client, fabric):
    fabric["vm"].removed = True
    fabric["vm"].save()

    response = admin_client.post(wizard(fabric["vm"]), {"to": fabric["s2"].fqdn}, HTTP_HX_REQUEST="true")

    assert response.status_code == 409
    assert "no longer" in response.content.decode()
    assert MigrationJob.objects.count() == 0


def test_it_answers_404_for_an_unknown_vm(admin_client):
    assert admin_client.get("/vms/00000000-0000-0000-0000-000000000000/migrate/").status_code == 404


def test_it_requires_login(client, fabric):
    response = client.get(wizard(fabric["vm"]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.fixture
def guest_cluster(fabric):
    s1 = fabric["s1"]
    fc1 = make_vm("sql-fc1", host=s1, config_path="D:\\Hyper-V\\sql-fc1")
    fc2 = make_vm("sql-fc2", host=s1, config_path="D:\\Hyper-V\\sql-fc2")
    make_disk("D:\\Hyper-V\\sql-fc1\\os.vhdx", vms=[fc1], key="s1|os1")
    make_disk("D:\\Hyper-V\\shared\\quorum.vhdx", vms=[fc1, fc2], shared=True, key="s1|quorum")
    return fc1


def test_storage_wizard_shows_and_blocks_a_shared_vhdx(admin_client, guest_cluster):
    page = admin_client.get(storage_wizard(guest_cluster))
    assert "shared VHDX" in page.content.decode()

    response = admin_client.get(
        storage_wizard(guest_cluster), {"mode": "whole", "storage_path": "E:\\VMs"}, HTTP_HX_REQUEST="true"
    )

    body = response.content.decode()
    assert 'data-rule="shared-vhdx-not-movable"' in body
    assert "Shut down the VMs sharing the disk" in body
    assert "Move storage</button>" not in body


def test_storage_wizard_moves_selected_vhds_and_adds_the_location(admin_client, guest_cluster, fabric):
    response = admin_client.post(
        storage_wizard(guest_cluster),
        {
            "mode": "selected",
            "vhd": ["D:\\Hyper-V\\sql-fc1\\os.vhdx"],
            "storage_path": "E:\\Fast",
            "add_default_location": "on",
        },
    )

    job = MigrationJob.objects.get()
    assert response.status_code == 302
    assert (job.kind, job.source, job.destination) == ("storage", fabric["s1"], fabric["s1"])
    assert job.vhds == [["D:\\Hyper-V\\sql-fc1\\os.vhdx", "E:\\Fast\\os.vhdx"]]
    assert StorageLocation.objects.filter(host=fabric["s1"], path="E:\\Fast", added_by_user=True).exists()


def test_storage_wizard_refuses_the_shared_vhdx_when_posted_anyway(admin_client, guest_cluster):
    response = admin_client.post(
        storage_wizard(guest_cluster),
        {"mode": "selected", "vhd": ["D:\\Hyper-V\\shared\\quorum.vhdx"], "storage_path": "E:\\Fast"},
    )

    assert response.status_code == 409
    assert MigrationJob.objects.count() == 0
    assert not StorageLocation.objects.filter(path="E:\\Fast").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"mode": "whole", "storage_path": ""}, "Enter a destination path"),
        ({"mode": "selected", "storage_path": "E:\\x"}, "Select at least one virtual disk"),
        ({"mode": "selected", "vhd": ["C:\\not-attached.vhdx"], "storage_path": "E:\\x"}, "Select a valid choice"),
        ({"mode": "teleport", "storage_path": "E:\\x"}, "Select a valid choice"),
    ],
)
def test_storage_wizard_refuses_bad_input(admin_client, guest_cluster, data, message):
    response = admin_client.post(storage_wizard(guest_cluster), data, HTTP_HX_REQUEST="true")

    assert response.status_code == 400
    assert message in response.content.decode()
    assert MigrationJob.objects.count() == 0


def test_storage_wizard_applies_the_fqdn_rule(admin_client, fabric):
    response = admin_client.get(
        storage_wizard(fabric["vm"]), {"mode": "whole", "storage_path": "\\\\fs01\\vmstore2\\web01"}
    )

    assert 'data-rule="smb-path-not-fqdn"' in response.content.decode()


@pytest.mark.parametrize("path", ["D:\\VMs\\..\\..\\Windows\\System32", "C:\\Windows\\System32", "C:\\Program Files"])
def test_it_refuses_a_destination_in_a_system_folder_or_with_dot_dot(admin_client, fabric, path):
    shown = admin_client.get(
        wizard(fabric["vm"]), {"to": fabric["s3"].fqdn, "storage_path": path}, HTTP_HX_REQUEST="true"
    )
    posted = admin_client.post(wizard(fabric["vm"]), {"to": fabric["s3"].fqdn, "storage_path": path})

    assert 'data-rule="path-not-allowed"' in shown.content.decode()
    assert "Move</button>" not in shown.content.decode()
    assert posted.status_code == 409 and "path-not-allowed" in posted.content.decode()
    assert MigrationJob.objects.count() == 0


@pytest.mark.parametrize("mode", ["whole", "selected"])
def test_storage_wizard_refuses_a_system_folder_for_the_vm_and_for_selected_vhds(admin_client, guest_cluster, mode):
    data = {"mode": mode, "vhd": ["D:\\Hyper-V\\sql-fc1\\os.vhdx"], "storage_path": "C:\\Windows\\System32"}

    response = admin_client.post(storage_wizard(guest_cluster), data)

    assert response.status_code == 409 and "path-not-allowed" in response.content.decode()
    assert MigrationJob.objects.count() == 0


def test_it_warns_of_the_host_where_the_other_node_of_a_guest_cluster_runs(admin_client, fabric):
    s1, s2 = fabric["s1"], fabric["s2"]
    fc1 = make_vm("sql-fc1", host=s1, config_path=SHARE + "\\sql-fc1", memory_assigned_bytes=8 * GB)
    fc2 = make_vm("sql-fc2", host=s2, config_path=SHARE + "\\sql-fc2", memory_assigned_bytes=8 * GB)
    make_disk(SHARE + "\\sql-fc\\quorum.vhdx", vms=[fc1, fc2], shared=True)

    response = admin_client.get(wizard(fc1))

    verdicts = {h.name: a for h, a in response.context["ranked"]}
    partner = [f for f in verdicts["hv-s2"].findings if f.rule == "guest-cluster-same-host"]
    assert [f.severity for f in partner] == ["warn"] and verdicts["hv-s2"].allowed  # Hyper-V takes the move
    assert "sql-fc2" in partner[0].message
    assert not [f for f in verdicts["hv-s3"].findings if f.rule == "guest-cluster-same-host"]
    row = response.content.decode().split('value="hv-s2.contoso.test"', 1)[1].split("</tr>", 1)[0]
    assert "1 warning" in row and "ready" not in row
    details = admin_client.get(wizard(fc1), {"to": s2.fqdn}, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-rule="guest-cluster-same-host"' in details and "Move</button>" in details


def test_a_bad_path_keeps_the_summary_and_shows_the_error_at_the_field(admin_client, fabric):
    params = {"to": fabric["s3"].fqdn, "storage_path": "relative\\path"}

    response = admin_client.get(wizard(fabric["vm"]), params, HTTP_HX_REQUEST="true")

    # The path field asks for #summary (hx-select) and #storage-path-error (hx-select-oob): both are there.
    assert response.status_code == 400
    body = response.content.decode()
    summary = body.split('id="summary"', 1)[1]
    assert "Correct the destination path in step 2" in summary and "Move</button>" not in summary
    field_error = body.split('id="storage-path-error"', 1)[1].split("</div>", 1)[0]
    assert "Give a local path such as D:\\Hyper-V" in field_error
    assert body.count("Give a local path") == 1  # at the field only, not again above the steps


def test_the_path_field_asks_again_on_input_not_only_on_keyup(admin_client, fabric):
    body = admin_client.get(wizard(fabric["vm"]), {"to": fabric["s3"].fqdn}, HTTP_HX_REQUEST="true").content.decode()

    field = body.split('id="id_storage_path"', 1)[1].split(">", 1)[0]
    assert 'hx-trigger="input changed delay:400ms, change changed"' in field


def test_the_wizards_htmx_gets_leave_the_csrf_token_out(admin_client, fabric):
    for page in (wizard(fabric["vm"]), storage_wizard(fabric["vm"])):
        form = admin_client.get(page).content.decode().split('<form id="wizard"', 1)[1].split(">", 1)[0]
        assert 'hx-params="not csrfmiddlewaretoken"' in form


def test_without_script_only_the_move_buttons_send_the_csrf_token(admin_user, fabric, client):
    """A GET of the wizard form (Show details, Check) carries no token: none is a field of the form. The
    POST buttons carry it as their own name and value, and a move posted by them passes the CSRF check."""
    client.handler.enforce_csrf_checks = True
    client.force_login(admin_user)
    vm = fabric["vm"]
    for page, params in (
        (wizard(vm), {"to": fabric["s2"].fqdn}),
        (storage_wizard(vm), {"mode": "whole", "storage_path": "D:\\VMs"}),
    ):
        html = client.get(page, params).content.decode()
        form = html.split('<form id="wizard"', 1)[1].split("</form>", 1)[0]
        fields = re.findall(r"<(?:input|select|textarea)\b[^>]*>", form)
        assert not [f for f in fields if "csrfmiddlewaretoken" in f], page
        [button] = re.findall(
            r'<button type="submit" formmethod="post" name="csrfmiddlewaretoken" value="([^"]+)"', form
        )
        token = button
    refused = client.post(wizard(vm), {"to": fabric["s2"].fqdn})
    posted = client.post(wizard(vm), {"to": fabric["s2"].fqdn, "csrfmiddlewaretoken": token})

    assert refused.status_code == 403
    assert posted.status_code in (200, 302) and MigrationJob.objects.filter(vm=vm).count() == 1


def test_an_ha_vm_sees_the_nodes_of_its_cluster_first(admin_client, fabric):
    cluster = make_cluster("CL1")
    n1 = make_host("hv-n1", cluster=cluster, **READY)
    n2 = make_host("hv-n2", cluster=cluster, memory_available_bytes=100 * GB, cpu_load_percent=30, **READY)
    ha = make_vm("sql01", host=n1, is_clustered=True, config_path="C:\\ClusterStorage\\Volume1\\sql01")
    make_disk("C:\\ClusterStorage\\Volume1\\sql01\\sql01.vhdx", vms=[ha], key="cl1|sql01")
    for standalone in ("s1", "s2", "s3"):  # emptier than the node: they used to rank first, with 5 stars
        fabric[standalone].memory_available_bytes = 250 * GB
        fabric[standalone].save()

    ranked = admin_client.get(wizard(ha)).context["ranked"]

    assert ranked[0][0] == n2 and ranked[0][1].transfer_type == "live"
    assert all(a.rating < ranked[0][1].rating for _, a in ranked[1:])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"to": "gone.contoso.test", "storage_path": "D:\\Hyper-V"}, "no host gone.contoso.test"),
        ({"to": "hv-s3.contoso.test", "storage_path": "D:\\Hyper-V", "performance": "warp"}, "Select a valid choice"),
    ],
)
def test_every_error_reaches_the_part_the_path_field_swaps_in(admin_client, fabric, params, message):
    # The path field keeps only #summary (and the field's own error) of the answer: a message elsewhere is lost.
    body = admin_client.get(wizard(fabric["vm"]), params, HTTP_HX_REQUEST="true").content.decode()

    assert message in body.split('id="summary"', 1)[1]


def test_a_refused_move_says_why_in_the_summary(admin_client, fabric):
    fabric["vm"].removed = True
    fabric["vm"].save()

    body = admin_client.get(wizard(fabric["vm"]), {"to": fabric["s2"].fqdn}, HTTP_HX_REQUEST="true").content.decode()

    assert "no longer in Hyper-V" in body.split('id="summary"', 1)[1]
