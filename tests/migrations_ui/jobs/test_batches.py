"""Batches: Evacuate a host (maintenance, Move back), migrate a selection from the VM list, the batch page."""

import dataclasses
import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from fabric.models import Host, VirtualMachine
from migrations_ui.jobs.batches import start_batch
from migrations_ui.live.timeline import clock
from migrations_ui.models import Batch, BatchKind, JobState, MigrationJob
from migrations_ui.planning.inventory import evacuation_plan

pytestmark = pytest.mark.django_db

NODE = "hv-new2"


@pytest.fixture
def node(demo_fabric):
    return Host.objects.select_related("cluster").get(name=NODE)


def evacuate_url(host):
    return reverse("migrations_ui:evacuate", args=[host.fqdn])


def finish(batch, *, moved=True):
    """What the workers would leave: every job succeeded, each VM on its destination, times set."""
    start = timezone.now() - timedelta(minutes=10)
    for n, job in enumerate(batch.jobs.select_related("vm")):
        MigrationJob.objects.filter(pk=job.pk).update(
            state=JobState.SUCCEEDED,
            percent=100,
            started_at=start + timedelta(seconds=10 * n),
            finished_at=start + timedelta(seconds=10 * n + 60),
        )
        if moved:
            VirtualMachine.objects.filter(pk=job.vm_id).update(host=job.destination)


def test_the_evacuate_page_previews_the_plan_with_a_timeline(operator_client, node):
    response = operator_client.get(evacuate_url(node))
    body = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in body and "Estimated start" in body
    on_node = VirtualMachine.objects.filter(host=node, removed=False, state="running")
    for vm in on_node:
        assert vm.name in body
    assert not Batch.objects.exists() and not MigrationJob.objects.exists()


def test_with_every_other_host_in_maintenance_the_preview_says_why_nothing_can_move(operator_client, node):
    Host.objects.exclude(pk=node.pk).update(maintenance=True)

    response = operator_client.get(evacuate_url(node))

    assert response.status_code == 200
    plan = response.context["plan"]
    assert plan.moves == ()
    on_node = VirtualMachine.objects.filter(host=node, removed=False, state="running")
    assert {v.vm for v in plan.left} >= set(on_node.values_list("name", flat=True))
    assert "no other node of it can take it" in response.content.decode()


def test_a_note_every_move_has_is_said_once_above_the_plan(operator_client, node):
    # CL-NEW allows one live migration at a time: every move of its node is flagged by that rule.
    response = operator_client.get(evacuate_url(node))
    plan, body = response.context["plan"], response.content.decode()

    assert len(plan.moves) > 1 and "cluster-parallel-limit" in plan.shared_rules
    notes, table = body.split('<div class="plan-notes">', 1)[1].split("</div>", 1)
    assert "MaximumParallelMigrations" in notes
    assert "MaximumParallelMigrations" not in table.split("</table>", 1)[0]
    # Every move leaves the evacuated host: no From column; a selection's plan has one.
    assert ">From<" not in table.split("</thead>", 1)[0]


def test_the_preview_says_why_a_vm_does_not_go_to_the_host_tried_first(operator_client, demo_fabric):
    # sql-fc1 and sql-fc2 share a VHDX (a guest cluster); sql-fc2 runs on hv-s2, the other standalone host.
    host = Host.objects.get(name="hv-s1")
    body = operator_client.get(evacuate_url(host)).content.decode()
    assert "Not hv-s2: sql-fc2, the other node of sql-fc1&#x27;s guest cluster (they share a VHDX)" in body
    german = operator_client.get(evacuate_url(host), headers={"Accept-Language": "de"}).content.decode()
    assert "Nicht hv-s2:" in german and "Not hv-s2" not in german


def test_stopped_vms_are_left_with_the_reason_or_moved_as_the_operator_chooses(operator_client, node):
    stopped = VirtualMachine.objects.filter(host=node, removed=False).first()
    # A stopped HA VM is never copied offline (it would leave its cluster role): take a plain one.
    VirtualMachine.objects.filter(pk=stopped.pk).update(state="off", is_clustered=False)
    left = operator_client.get(evacuate_url(node)).context["plan"]
    assert stopped.name in [v.vm for v in left.left]
    moved = operator_client.get(evacuate_url(node), {"move_stopped": "1"}).context["plan"]
    assert stopped.name in [m.vm for m in moved.moves]


def test_running_an_evacuation_makes_a_batch_and_puts_the_host_in_maintenance(operator_client, node):
    plan = operator_client.get(evacuate_url(node)).context["plan"]
    response = operator_client.post(evacuate_url(node))
    batch = Batch.objects.get()
    assert response.status_code == 302 and response["Location"] == batch.get_absolute_url()
    assert batch.kind == BatchKind.EVACUATION and batch.host == node
    node.refresh_from_db()
    assert node.maintenance
    jobs = list(batch.jobs.order_by("pk"))
    assert [j.vm_name for j in jobs] == [m.vm for m in plan.moves]
    assert {j.destination.cluster_id for j in jobs} == {node.cluster_id}
    assert AuditEvent.objects.filter(action="evacuation.started", target_name=node.fqdn).exists()
    page = operator_client.get(batch.get_absolute_url()).content.decode()
    assert "In maintenance" in page and jobs[0].vm_name in page
    assert "Maintenance" in operator_client.get(reverse("fabric:hosts")).content.decode()


def test_the_jobs_page_links_each_job_of_a_batch_to_its_batch(operator_client, node):
    operator_client.post(evacuate_url(node))
    batch = Batch.objects.get()

    body = operator_client.get(reverse("migrations_ui:jobs")).content.decode()

    link = f'href="{batch.get_absolute_url()}">batch {batch.pk}</a>'
    assert body.count(link) == batch.jobs.count() > 0


def test_a_second_evacuation_while_one_runs_is_refused(operator_client, node):
    operator_client.post(evacuate_url(node))
    response = operator_client.post(evacuate_url(node))
    assert response.status_code == 409
    assert "still running" in response.content.decode()
    assert Batch.objects.count() == 1


def test_move_back_waits_for_the_evacuation_to_end(operator_client, node):
    operator_client.post(evacuate_url(node))
    batch = Batch.objects.get()
    response = operator_client.post(reverse("migrations_ui:batch_move_back", args=[batch.pk]), follow=True)
    assert "still running" in response.content.decode()
    assert Batch.objects.count() == 1


def test_move_back_returns_each_vm_to_where_it_came_from_and_ends_maintenance(operator_client, node):
    operator_client.post(evacuate_url(node))
    evacuation = Batch.objects.get()
    finish(evacuation)
    page = operator_client.get(evacuation.get_absolute_url())
    assert page.context["can_move_back"] and page.context["actual_svg"]
    assert "the run took" in page.content.decode()

    response = operator_client.post(reverse("migrations_ui:batch_move_back", args=[evacuation.pk]))
    back = Batch.objects.get(kind=BatchKind.MOVE_BACK)
    assert response["Location"] == back.get_absolute_url()
    moved = {j.vm_id: j.source_id for j in evacuation.jobs.all()}
    assert {j.vm_id: j.destination_id for j in back.jobs.all()} == moved
    node.refresh_from_db()
    assert not node.maintenance
    # Maintenance is over: a second Move back is refused with the reason, nothing made.
    again = operator_client.post(reverse("migrations_ui:host_move_back", args=[node.fqdn]), follow=True)
    assert "not in maintenance" in again.content.decode()
    assert Batch.objects.count() == 2


def test_move_back_with_nothing_to_bring_back_just_ends_maintenance(operator_client, node):
    operator_client.post(evacuate_url(node))
    finish(Batch.objects.get(), moved=False)
    response = operator_client.post(reverse("migrations_ui:host_move_back", args=[node.fqdn]), follow=True)
    assert "maintenance has ended" in response.content.decode()
    node.refresh_from_db()
    assert not node.maintenance and Batch.objects.count() == 1


def test_the_evacuate_command_makes_the_batch_and_sets_maintenance(admin_user, node):
    out = io.StringIO()
    call_command("evacuate", NODE, "--json", "--user", "admin", stdout=out)
    data = json.loads(out.getvalue())
    batch = Batch.objects.get(pk=data["batch"])
    assert batch.kind == BatchKind.EVACUATION and batch.jobs.count() == len(data["jobs"]) == len(data["plan"]["moves"])
    node.refresh_from_db()
    assert node.maintenance


def unreachable(node):
    Host.objects.filter(pk=node.pk).update(reachable=False, last_error="unreachable: connection refused")
    node.refresh_from_db()
    return node


def test_an_unreachable_host_is_not_evacuated_and_the_page_says_why(operator_client, node):
    unreachable(node)

    shown = operator_client.get(evacuate_url(node))
    response = operator_client.post(evacuate_url(node))

    assert "does not answer" in shown.content.decode() and "Run: put" not in shown.content.decode()
    assert response.status_code == 409
    assert f"{NODE} does not answer, so none of its VMs can be moved off it" in response.content.decode()
    german = operator_client.post(evacuate_url(node), headers={"Accept-Language": "de"})
    assert f"{NODE} antwortet nicht" in german.content.decode()
    node.refresh_from_db()
    assert not node.maintenance and not Batch.objects.exists() and not MigrationJob.objects.exists()
    assert not AuditEvent.objects.filter(action="evacuation.started").exists()


def test_the_evacuate_command_refuses_an_unreachable_host(admin_user, node):
    unreachable(node)

    with pytest.raises(CommandError, match="does not answer") as raised:
        call_command("evacuate", NODE, "--json", "--user", "admin", stdout=io.StringIO())

    assert raised.value.returncode == 1
    node.refresh_from_db()
    assert not node.maintenance and not Batch.objects.exists()


# --- a selection from the VM list -------------------------------------------------------------------


def selection(n=3, exclude=None):
    vms = VirtualMachine.objects.filter(state="running", removed=False, is_clustered=False)
    if exclude:
        vms = vms.exclude(host=exclude)
    return list(vms.order_by("name")[:n])


SELECTED = reverse("migrations_ui:migrate_selected")


def test_the_vm_list_offers_selection_to_operators_only(operator_client, viewer_user, client, demo_fabric):
    # The inventory's list names no migration URL: migrations_ui adds the row link and the button.
    body = operator_client.get(reverse("fabric:vms")).content.decode()
    vm = VirtualMachine.objects.filter(removed=False).order_by("name").first()
    assert 'form="vm-selection"' in body and f'formaction="{SELECTED}"' in body
    assert f'href="{reverse("migrations_ui:migrate_vm", args=[vm.guid])}"' in body
    client.force_login(viewer_user)
    body = client.get(reverse("fabric:vms")).content.decode()
    assert 'form="vm-selection"' not in body and "Migrate selected" not in body
    assert reverse("migrations_ui:migrate_vm", args=[vm.guid]) not in body


def test_a_dry_run_to_one_host_lists_each_vm_and_starts_nothing(operator_client, node):
    vms = selection(exclude=node)
    response = operator_client.get(SELECTED, {"vm": [str(v.guid) for v in vms], "to": node.fqdn})
    assert response.status_code == 200
    plan = response.context["plan"]
    assert {m.vm for m in plan.moves} | {v.vm for v in plan.left} == {v.name for v in vms}
    assert all(m.destination == node.fqdn for m in plan.moves)
    assert not MigrationJob.objects.exists() and not Batch.objects.exists()


def test_the_console_places_a_selection_on_other_hosts(operator_client, demo_fabric):
    vms = selection()
    plan = operator_client.get(SELECTED, {"vm": [str(v.guid) for v in vms]}).context["plan"]
    where = {v.name: v.host.fqdn for v in vms}
    assert plan.moves and all(m.destination != where[m.vm] for m in plan.moves)


def test_starting_a_selection_makes_one_batch_and_leads_to_its_page(operator_client, node):
    vms = selection(exclude=node)
    response = operator_client.post(SELECTED, {"vm": [str(v.guid) for v in vms], "to": node.fqdn, "name": "patch"})
    batch = Batch.objects.get()
    assert response.status_code == 302 and response["Location"] == batch.get_absolute_url()
    assert batch.kind == BatchKind.SELECTION and batch.name == "patch"
    assert batch.jobs.count() == len(batch.plan["moves"]) > 0
    page = operator_client.get(batch.get_absolute_url())
    assert page.status_code == 200 and "Progress" in page.content.decode()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "Select at least one VM"),
        ({"vm": ["not-a-uuid"]}, "not a VM id"),
        ({"vm": ["00000000-0000-0000-0000-000000000000"]}, "no longer in the inventory"),
        ({"to": "nowhere.contoso.test"}, "Select a valid choice"),
    ],
)
def test_bad_selections_answer_400_and_make_nothing(operator_client, demo_fabric, params, message):
    if "to" in params:
        params = {**params, "vm": [str(selection(1)[0].guid)]}
    response = operator_client.post(SELECTED, params)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Batch.objects.exists() and not MigrationJob.objects.exists()


def test_a_selection_with_nothing_to_move_is_refused(operator_client, node):
    vm = VirtualMachine.objects.filter(host=node, removed=False).first()
    response = operator_client.post(SELECTED, {"vm": [str(vm.guid)], "to": node.fqdn})
    assert response.status_code == 409
    assert "Already on" in response.content.decode()
    assert not Batch.objects.exists()


def test_names_on_the_batch_page_are_escaped(operator_client, node):
    vm = selection(1, exclude=node)[0]
    VirtualMachine.objects.filter(pk=vm.pk).update(name='x"><script>alert(1)</script>')
    operator_client.post(SELECTED, {"vm": [str(vm.guid)], "to": node.fqdn})
    body = operator_client.get(Batch.objects.get().get_absolute_url()).content.decode()
    assert "<script>alert(1)</script>" not in body


# --- maintenance: End maintenance, the host page, the planner and the wizard ------------------------


def end_maintenance_url(host):
    return reverse("migrations_ui:host_end_maintenance", args=[host.fqdn])


def test_end_maintenance_leaves_the_vms_where_they_are_and_is_audited(operator_client, node):
    operator_client.post(evacuate_url(node))
    evacuation = Batch.objects.get()
    finish(evacuation)
    where = dict(VirtualMachine.objects.filter(jobs__batch=evacuation).values_list("pk", "host_id"))

    response = operator_client.post(end_maintenance_url(node), follow=True)

    assert "maintenance has ended; its VMs stay" in response.content.decode()
    node.refresh_from_db()
    assert not node.maintenance
    assert Batch.objects.count() == 1  # no Move back batch, no job
    assert dict(VirtualMachine.objects.filter(pk__in=where).values_list("pk", "host_id")) == where
    event = AuditEvent.objects.get(action="maintenance.ended")
    assert event.target_name == node.fqdn and event.username == "operator"
    assert event.details == {"moved_back": False, "batch": evacuation.pk}
    # Once ended, a second click changes nothing and says why.
    again = operator_client.post(end_maintenance_url(node), follow=True)
    assert "is not in maintenance" in again.content.decode()
    assert AuditEvent.objects.filter(action="maintenance.ended").count() == 1


def test_end_maintenance_waits_for_the_evacuation_to_end(operator_client, node):
    operator_client.post(evacuate_url(node))

    response = operator_client.post(end_maintenance_url(node), follow=True)

    assert "still running" in response.content.decode()
    node.refresh_from_db()
    assert node.maintenance and not AuditEvent.objects.filter(action="maintenance.ended").exists()


def test_the_batch_pages_buttons_post_through_htmx_and_the_browser_follows(operator_client, node):
    operator_client.post(evacuate_url(node))
    evacuation = Batch.objects.get()
    finish(evacuation)
    page = operator_client.get(evacuation.get_absolute_url()).content.decode()
    assert f'ws-connect="/ws/batches/{evacuation.pk}/"' in page
    assert f'hx-post="{end_maintenance_url(node)}"' in page and "Move back to" in page

    response = operator_client.post(end_maintenance_url(node), HTTP_HX_REQUEST="true")

    assert response.status_code == 200 and response["HX-Redirect"] == node.get_absolute_url()
    node.refresh_from_db()
    assert not node.maintenance


def test_the_host_page_shows_maintenance_with_both_actions(operator_client, viewer_user, client, node):
    move_back = reverse("migrations_ui:host_move_back", args=[node.fqdn])
    body = operator_client.get(node.get_absolute_url()).content.decode()
    assert "In maintenance" not in body and move_back not in body and end_maintenance_url(node) not in body

    operator_client.post(evacuate_url(node))
    body = operator_client.get(node.get_absolute_url()).content.decode()
    assert "In maintenance" in body and Batch.objects.get().get_absolute_url() in body
    # Not while the evacuation's moves run: both wait for them (as the batch page says).
    assert move_back not in body and end_maintenance_url(node) not in body
    assert "are offered once every move has ended" in body

    finish(Batch.objects.get())
    body = operator_client.get(node.get_absolute_url()).content.decode()
    assert f'action="{move_back}"' in body and f'action="{end_maintenance_url(node)}"' in body

    client.force_login(viewer_user)
    body = client.get(node.get_absolute_url()).content.decode()
    assert "In maintenance" in body and move_back not in body and end_maintenance_url(node) not in body


def test_a_host_in_maintenance_is_never_chosen_by_the_planner(operator_client, node):
    chosen = {m.destination for m in operator_client.get(evacuate_url(node)).context["plan"].moves}
    resting = Host.objects.get(fqdn=sorted(chosen)[0])  # a node the plan uses while it is not in maintenance
    Host.objects.filter(pk=resting.pk).update(maintenance=True)

    plan = operator_client.get(evacuate_url(node)).context["plan"]
    assert plan.moves and resting.fqdn not in {m.destination for m in plan.moves}
    placed = operator_client.get(SELECTED, {"vm": [str(v.guid) for v in selection(20)]}).context["plan"]
    assert placed.moves and resting.fqdn not in {m.destination for m in placed.moves}


def test_a_selection_sent_to_a_host_in_maintenance_is_left_with_the_reason(operator_client, node):
    Host.objects.filter(pk=node.pk).update(maintenance=True)
    vms = selection(exclude=node)

    response = operator_client.post(SELECTED, {"vm": [str(v.guid) for v in vms], "to": node.fqdn})

    assert response.status_code == 409 and "is in maintenance" in response.content.decode()
    assert not Batch.objects.exists() and not MigrationJob.objects.exists()


def test_the_wizard_offers_a_host_in_maintenance_last(operator_client, node):
    vm = selection(1, exclude=node)[0]
    url = reverse("migrations_ui:migrate_vm", args=[vm.guid])
    first = operator_client.get(url).context["ranked"][0][0]
    Host.objects.filter(pk=first.pk).update(maintenance=True)

    response = operator_client.get(url)

    ranked = response.context["ranked"]
    allowed = [host for host, a in ranked if a.allowed]
    assert ranked[0][0].pk != first.pk
    assert allowed[-1].pk == first.pk  # after every other allowed host, still offered
    assert "In maintenance" in response.content.decode()


def test_the_stopped_vms_option_works_from_the_page(operator_client, node):
    stopped = VirtualMachine.objects.filter(host=node, removed=False).first()
    # A stopped HA VM is never copied offline (it would leave its cluster role): take a plain one.
    VirtualMachine.objects.filter(pk=stopped.pk).update(state="off", is_clustered=False)
    page = operator_client.get(evacuate_url(node)).content.decode()
    # The choice submits without an inline handler (the CSP forbids them) and says what each does.
    assert "onchange" not in page and "data-autosubmit" in page and "Plan again</button>" in page
    assert 'name="move_stopped" value="1"' in page and "non-live transfer" in page
    chosen = operator_client.get(evacuate_url(node), {"move_stopped": "1"}).content.decode()
    assert '<input type="hidden" name="move_stopped" value="1">' in chosen

    operator_client.post(evacuate_url(node), {"move_stopped": "1"})

    job = MigrationJob.objects.get(vm=stopped)
    assert job.kind == "network" and job.destination.cluster_id == node.cluster_id


def test_leaving_the_stopped_vms_shows_the_reason_on_the_batch_page(operator_client, node):
    stopped = VirtualMachine.objects.filter(host=node, removed=False).first()
    VirtualMachine.objects.filter(pk=stopped.pk).update(state="saved", is_clustered=False)

    operator_client.post(evacuate_url(node), {"move_stopped": "0"})

    batch = Batch.objects.get()
    assert not MigrationJob.objects.filter(vm=stopped).exists()
    assert stopped.name in [v["vm"] for v in batch.plan["left"]]
    assert "Not moved" in operator_client.get(batch.get_absolute_url()).content.decode()


@pytest.mark.parametrize("scale", [None, 4])
def test_the_batch_page_shows_wall_clock_seconds_and_the_api_keeps_the_fabric_s(operator_client, node, settings, scale):
    # A simulated fabric runs SIM_TIME_SCALE times faster than the wall clock. A person reads one clock:
    # the wall's, as on the job pages (issue 19, 6); batch_summary, hence the API, keeps the plan's.
    operator_client.post(evacuate_url(node))
    evacuation = Batch.objects.get()
    assert evacuation.jobs.count() == 4, "the demo node's four VMs; the expected time below assumes it"
    settings.SIM_TIME_SCALE = scale
    finish(evacuation)
    wall = 60 + 10 * 3
    makespan = evacuation.plan["makespan_s"] / (scale or 1)

    page = operator_client.get(evacuation.get_absolute_url())
    body = page.content.decode()

    assert page.context["actual_s"] == wall * (scale or 1)
    assert f"the run took {wall} s" in body
    assert f"Estimated makespan {makespan:.0f} s" in body
    api = operator_client.get(f"/api/v1/batches/{evacuation.pk}").json()
    assert api["actual_s"] == wall * (scale or 1) and api["makespan_s"] == evacuation.plan["makespan_s"]


def test_the_evacuate_preview_shows_the_plan_in_wall_clock_seconds(operator_client, node, settings):
    settings.SIM_TIME_SCALE = 1
    one = operator_client.get(evacuate_url(node)).context["plan"]
    settings.SIM_TIME_SCALE = 10
    body = operator_client.get(evacuate_url(node)).content.decode()

    assert f"estimated makespan {one.makespan_s / 10:.0f} s" in body
    assert f'<td class="num">{one.moves[-1].end_s / 10:.0f} s</td>' in body
    assert f"moves, estimated {clock(one.makespan_s / 10)}</title>" in body  # the timeline too


def test_the_plan_says_where_live_vsm_moves_put_the_files(operator_client, demo_fabric):
    # issue 19: a Live (VSM) move copies the VM's files; the plan now says to which folder.
    found = []
    for host in Host.objects.filter(reachable=True).order_by("name"):
        page = operator_client.get(reverse("migrations_ui:evacuate", args=[host.fqdn]))
        for move in page.context["plan"].moves:
            if move.transfer_type == "live_vsm":
                folder = Host.objects.get(fqdn=move.destination).vm_path
                found.append(folder)
                assert f"files to <code>{folder}</code>" in page.content.decode()
    assert found  # the demo has Live (VSM) evacuations


def test_a_move_its_plan_holds_back_is_queued_with_its_time(admin_user, node, settings):
    # The plan counts in the fabric's seconds; the demo's fabric runs SIM_TIME_SCALE times faster
    # than the wall clock, so a move held 80 fabric seconds waits 80 / scale wall seconds.
    settings.SIM_TIME_SCALE = 4
    plan = evacuation_plan(node)
    held, *rest = plan.moves
    plan = dataclasses.replace(plan, moves=(*rest, dataclasses.replace(held, not_before_s=80.0)))
    before = timezone.now()
    batch = start_batch(plan, BatchKind.EVACUATION, f"Evacuate {node.name}", host=node, user=admin_user)
    after = timezone.now()
    jobs = {job.vm_name: job for job in batch.jobs.all()}
    assert before + timedelta(seconds=20) <= jobs[held.vm].not_before <= after + timedelta(seconds=20)
    assert all(jobs[m.vm].not_before is None for m in rest)
    rows = {row["vm"]: row for row in batch.plan["moves"]}
    assert rows[held.vm]["not_before_s"] == 80.0
    assert all("not_before_s" not in rows[m.vm] for m in rest)  # the plan JSON as before for the others
    page = render_to_string("partials/plan_rows.html", {"plan": plan})
    assert page.count("Held back until 20 s: started at once") == 1  # in wall-clock seconds, as the page counts
