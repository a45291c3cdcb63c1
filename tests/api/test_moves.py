"""Migrations, pre-flight, events and errors through the API: the wizards' rules and audit, one
error shape, never a 500."""

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from fabric.models import Host, VirtualMachine, VmState
from migrations_ui.models import JobState, MigrationJob
from migrations_ui.preflight.assess import Preflight, vm_for_preflight


def pairs(kind: str, cross_cluster: bool | None = None):
    """(vm, destination) pairs pre-flight allows with the given kind."""
    for vm in vm_for_preflight().filter(state=VmState.RUNNING, removed=False):
        for host, assessment in Preflight(vm).destinations():
            if not assessment.allowed or assessment.transfer_type != kind:
                continue
            crossing = host.cluster_id != vm.host.cluster_id or host.cluster_id is None
            if cross_cluster is None or crossing == cross_cluster:
                yield vm, host


@pytest.mark.django_db
def test_a_live_migration_is_created_audited_and_shown(apis, demo_fabric):
    vm, host = next(pairs("live", cross_cluster=False))
    status, job = apis["operator"].post("/migrations", {"vm": vm.name, "to": host.fqdn, "transfer_type": "live"})
    assert status == 201, job
    assert (job["transfer_type"], job["state"], job["destination"]) == ("live", "queued", host.fqdn)
    event = AuditEvent.objects.get(action="migration.requested")
    assert (event.username, event.target_id, event.details["job"]) == ("operator", str(vm.guid), job["id"])
    assert apis["viewer"].get(f"/migrations/{job['id']}") == (200, job)
    status, page = apis["viewer"].get("/migrations", state="queued")
    assert [j["id"] for j in page["items"]] == [job["id"]]


@pytest.mark.django_db
def test_a_cross_cluster_move_goes_through_the_same_rules(apis, demo_fabric):
    vm, host = next(pairs("live_vsm", cross_cluster=True), None) or next(pairs("live", cross_cluster=True))
    body = {"vm": str(vm.guid), "to": host.fqdn}
    status, preflight = apis["viewer"].get("/preflight", vm=str(vm.guid), to=host.fqdn)
    assert preflight["allowed"]
    status, job = apis["admin"].post("/migrations", body)
    assert status == 201, job
    assert job["source"] == vm.host.fqdn and job["destination"] == host.fqdn


@pytest.mark.django_db
def test_a_live_vsm_move_without_a_path_goes_to_the_destinations_default_folder_as_in_the_wizard(apis, demo_fabric):
    vm, host = next(pairs("live_vsm"))
    assert host.vm_path

    status, job = apis["operator"].post("/migrations", {"vm": vm.name, "to": host.fqdn})

    assert status == 201, job
    assert (job["transfer_type"], job["storage_path"]) == ("live_vsm", host.vm_path)
    assert MigrationJob.objects.get(pk=job["id"]).storage_path == host.vm_path


@pytest.mark.django_db
def test_a_storage_move_takes_a_path_and_a_second_move_of_the_vm_is_refused(apis, demo_fabric):
    vm = VirtualMachine.objects.filter(state=VmState.RUNNING, is_clustered=False, removed=False).first()
    target = "D:\\Hyper-V\\Moved"
    status, job = apis["operator"].post("/migrations", {"vm": vm.name, "storage_path": target})
    assert status == 201, job
    assert (job["transfer_type"], job["source"], job["destination"], job["storage_path"]) == (
        "storage",
        vm.host.fqdn,
        vm.host.fqdn,
        target,
    )
    assert AuditEvent.objects.filter(action="storage_move.requested").count() == 1
    # One active job per VM: a second move is refused with the rule that stands in the way.
    status, body = apis["operator"].post("/migrations", {"vm": vm.name, "storage_path": target})
    assert status == 409
    assert body["code"] == "refused" and "vm-already-moving" in body["errors"]


@pytest.mark.django_db
def test_a_blocked_move_is_409_with_its_rules_and_records_nothing(apis, demo_fabric):
    vm = VirtualMachine.objects.filter(state=VmState.RUNNING, removed=False).first()
    blocked = next(h for h, a in Preflight(vm_for_preflight().get(pk=vm.pk)).destinations() if not a.allowed)
    status, body = apis["operator"].post("/migrations", {"vm": vm.name, "to": blocked.fqdn})
    assert status == 409
    assert body["errors"] and all(isinstance(m, list) for m in body["errors"].values())
    assert not MigrationJob.objects.exists()


@pytest.mark.django_db
def test_an_unexpected_kind_of_move_is_refused_before_anything_starts(apis, demo_fabric):
    vm, host = next(pairs("live"))
    status, body = apis["operator"].post("/migrations", {"vm": vm.name, "to": host.fqdn, "transfer_type": "storage"})
    assert status == 409 and "transfer_type" in body["errors"]
    assert not MigrationJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"vm": "no-such-vm", "to": "hv-s1.contoso.test"}, "vm"),
        ({"vm": "api-01", "to": "nowhere.contoso.test"}, "to"),
        ({"vm": "api-01", "storage_path": "relative\\path"}, "storage_path"),
        ({"vm": "api-01", "storage_path": "D:\\x", "vhds": [{"source": "C:\\no.vhdx", "destination": "D:\\x"}]},
         "vhds.0.source"),
        ({"vm": "api-01", "performance_option": "fast"}, "performance_option"),
        ({"vm": "app-s01", "storage_path": "D:\\x", "vhds": [{"source": "{disk}", "destination": "D:\\a|b\\{name}"}]},
         "input"),
        # Move-VMStorage keeps a disk's file name (its -Vhds help): a renamed disk is refused at input.
        ({"vm": "app-s01", "storage_path": "D:\\x", "vhds": [{"source": "{disk}", "destination": "D:\\x\\new.vhdx"}]},
         "vhds.0.destination"),
        ({"to": "hv-s1.contoso.test"}, "vm"),
        ({"vm": "api-01\x00"}, "vm"),
    ],
)  # fmt: skip
def test_bad_input_is_400_naming_the_field_and_changes_nothing(apis, demo_fabric, body, field):
    if body.get("vhds") and body["vhds"][0]["source"] == "{disk}":
        body["vhds"][0]["source"] = disk = VirtualMachine.objects.get(name=body["vm"]).disks.first().path
        body["vhds"][0]["destination"] = body["vhds"][0]["destination"].replace("{name}", disk.rsplit("\\", 1)[-1])
    status, answer = apis["operator"].post("/migrations", body)
    assert status == 400, answer
    assert answer["code"] == "invalid" and field in answer["errors"], answer
    assert not MigrationJob.objects.exists()


@pytest.mark.django_db
def test_malformed_requests_get_the_error_shape_never_a_500(apis, demo_fabric):
    api = apis["operator"]
    for path, params in [
        ("/vms", {"limit": "0"}),
        ("/vms", {"limit": "many"}),
        ("/vms", {"cursor": "!!!"}),
        ("/vms", {"cursor": "WzEsMiwzXQ"}),  # a list of the wrong length
        ("/vms", {"state": "melting"}),
        ("/vms", {"host": "nowhere"}),
        ("/migrations", {"batch": str(2**70)}),
        ("/events", {"after": "-1"}),
        ("/audit-events", {"since": "yesterday-ish"}),
        # Well-formed but impossible dates: Django's parsers raise ValueError on them (was a 500).
        ("/audit-events", {"since": "2026-02-30"}),
        ("/audit-events", {"until": "2026-13-01"}),
        ("/audit-events", {"until": "9999-12-31T23:00-05:00"}),
        ("/preflight", {"vm": "api-01"}),
    ]:
        status, body = api.get(path, **params)
        assert status == 400 and set(body) == {"code", "message", "errors"}, (path, params, body)
    for path in ["/vms/not-a-uuid", f"/vms/{uuid.uuid4()}", "/migrations/99999", "/batches/99999", "/nope",
                 "/hosts/nowhere.contoso.test", "/shares/9999", "/audit-events/99999", "/clusters/none",
                 "/hosts/a%00b/evacuation-plan", "/clusters/a%00b",
                 # Past SQLite's 50,000-character LIKE pattern (iexact is a LIKE there): was a 500.
                 "/hosts/" + "h" * 50_001, "/clusters/" + "c" * 50_001,
                 "/hosts/" + "h" * 50_001 + "/evacuation-plan"]:  # fmt: skip
        status, body = api.get(path)
        assert status in (400, 404) and set(body) == {"code", "message", "errors"}, (path, body)
    response = api.client.post("/api/v1/migrations", "{not json", content_type="application/json", headers=api.headers)
    assert response.status_code == 400 and response.json()["code"] == "invalid"


@pytest.mark.django_db
def test_a_body_over_the_limit_is_413_in_the_error_shape(apis, settings):
    # RequestDataTooBig reached the catch-all handler: a 500 "server_error" and a traceback logged.
    api, big = apis["operator"], "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    for data, content_type in [
        (f'{{"vm": "{big}"}}', "application/json"),
        (f"vm={big}", "application/x-www-form-urlencoded"),
    ]:
        response = api.client.post("/api/v1/migrations", data, content_type=content_type, headers=api.headers)
        assert response.status_code == 413, content_type
        assert response.json()["code"] == "too_large" and set(response.json()) == {"code", "message", "errors"}
    # Too many form fields (TooManyFieldsSent) is bad input too.
    many = "&".join(f"f{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = api.client.post(
        "/api/v1/migrations", many, content_type="application/x-www-form-urlencoded", headers=api.headers
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert not MigrationJob.objects.exists()


@pytest.mark.django_db
def test_cancel_a_waiting_job_then_cancelling_again_is_409(apis, demo_fabric):
    vm, host = next(pairs("live"))
    _, job = apis["operator"].post("/migrations", {"vm": vm.name, "to": host.fqdn})
    status, cancelled = apis["operator"].post(f"/migrations/{job['id']}/cancel")
    assert (status, cancelled["state"]) == (200, JobState.CANCELLED)
    status, body = apis["operator"].post(f"/migrations/{job['id']}/cancel")
    assert (status, body["code"]) == (409, "conflict")
    assert apis["operator"].post("/migrations/424242/cancel")[0] == 404
    assert AuditEvent.objects.filter(action="migration.cancel_requested").count() == 1


@pytest.mark.django_db
def test_events_since_a_cursor_return_only_newer_events(apis, demo_fabric):
    vm, host = next(pairs("live"))
    _, job = apis["operator"].post("/migrations", {"vm": vm.name, "to": host.fqdn})
    status, first = apis["viewer"].get("/events", job=str(job["id"]))
    assert status == 200 and [e["kind"] for e in first["items"]][:1] == ["created"]
    apis["operator"].post(f"/migrations/{job['id']}/cancel")
    status, newer = apis["viewer"].get("/events", job=str(job["id"]), after=str(first["cursor"]))
    assert [e["data"].get("state") for e in newer["items"]] == ["cancelled"]
    assert all(e["id"] > first["cursor"] for e in newer["items"])
    status, none = apis["viewer"].get("/events", after=str(newer["cursor"]))
    assert none == {"items": [], "cursor": newer["cursor"]}


@pytest.mark.django_db
def test_cursor_pages_walk_the_whole_filtered_list_once(apis, demo_fabric):
    everything = list(
        VirtualMachine.objects.filter(removed=False).order_by("name", "pk").values_list("name", flat=True)
    )
    names, cursor = [], None
    while True:
        params = {"limit": "7", **({"cursor": cursor} if cursor else {})}
        _status, page = apis["viewer"].get("/vms", **params)
        names += [vm["name"] for vm in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == everything
    host = Host.objects.filter(vms__isnull=False).first()
    _, page = apis["viewer"].get("/vms", host=host.fqdn, state="running", limit="200")
    expected = set(host.vms.filter(state="running", removed=False).values_list("name", flat=True))
    assert {vm["name"] for vm in page["items"]} == expected


@pytest.mark.django_db
def test_audit_events_filter_and_page_newest_first(apis, demo_fabric):
    apis["viewer"].post("/migrations", {"vm": "x"})  # a refusal: permission_denied
    _, page = apis["admin"].get("/audit-events", outcome="denied")
    assert [e["action"] for e in page["items"]] == ["permission_denied"]
    assert page["items"][0]["username"] == "viewer"
    _status, all_events = apis["admin"].get("/audit-events", limit="2")
    ids = [e["id"] for e in all_events["items"]]
    assert ids == sorted(ids, reverse=True)
    _, older = apis["admin"].get("/audit-events", limit="2", cursor=all_events["next_cursor"])
    assert max(e["id"] for e in older["items"]) < min(ids)


# --- property: generated names and paths into pre-flight ------------------------------------------------

# What a URL can carry: any character UTF-8 encodes (a lone surrogate cannot be sent by any client).
char = st.characters(codec="utf-8")
names = st.one_of(
    st.text(char, max_size=80), st.sampled_from(["api-01", "sql-prod01", "hv-s1.contoso.test", "hv-new2"])
)
paths = st.one_of(
    st.text(char, max_size=300),
    st.builds(
        lambda server, share, rest: f"\\\\{server}\\{share}\\{rest}",
        st.text(char, max_size=40),
        st.text(char, max_size=20),
        st.text(char, max_size=40),
    ),
    st.builds(lambda drive, rest: f"{drive}:\\{rest}", char, st.text(char, max_size=260)),
)


@pytest.mark.django_db
def test_preflight_explains_every_block_and_never_fails_whatever_names_and_paths_it_gets(apis, demo_fabric):
    api = apis["viewer"]

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(vm=names, to=names, storage_path=paths)
    def check(vm, to, storage_path):
        status, body = api.get("/preflight", vm=vm, to=to, storage_path=storage_path)
        assert status in (200, 400), body
        if status == 400:
            assert body["code"] == "invalid" and body["errors"] and body["message"]
            return
        if not body["allowed"]:
            blocks = [f for f in body["findings"] if f["severity"] == "block"]
            assert blocks and all(f["message"] for f in blocks), body

    check()


@pytest.mark.django_db
def test_json_booleans_are_strict(apis, demo_fabric):
    status, body = apis["operator"].post("/evacuations", {"host": "hv-s1.contoso.test", "move_stopped": 0})
    assert (status, list(body["errors"])) == (400, ["move_stopped"])
    assert not Host.objects.filter(maintenance=True).exists()


@pytest.mark.django_db
def test_end_maintenance_lets_the_host_take_vms_again_once_and_is_audited(apis, demo_fabric):
    host = Host.objects.filter(cluster=None).order_by("fqdn").first()
    Host.objects.filter(pk=host.pk).update(maintenance=True)
    where = dict(VirtualMachine.objects.values_list("pk", "host_id"))

    status, body = apis["operator"].post(f"/hosts/{host.fqdn}/end-maintenance")

    assert status == 200, body
    assert body["host"]["fqdn"] == host.fqdn and body["host"]["maintenance"] is False
    assert "its VMs stay where they are" in body["message"]
    assert not Host.objects.get(pk=host.pk).maintenance
    assert dict(VirtualMachine.objects.values_list("pk", "host_id")) == where  # nothing moved
    event = AuditEvent.objects.get(action="maintenance.ended")
    assert (event.target_name, event.username) == (host.fqdn, "operator")
    # A second call changes nothing and says why; an unknown host is 404.
    status, body = apis["operator"].post(f"/hosts/{host.fqdn}/end-maintenance")
    assert status == 409 and "is not in maintenance" in body["message"], body
    status, body = apis["operator"].post("/hosts/nosuch.contoso.test/end-maintenance")
    assert status == 404 and body["code"] == "not_found", body
    assert AuditEvent.objects.filter(action="maintenance.ended").count() == 1


def test_evacuating_while_every_other_host_is_in_maintenance_leaves_each_vm_with_the_reason(apis, demo_fabric):
    host = Host.objects.filter(cluster=None, vms__state=VmState.RUNNING).order_by("fqdn").first()
    Host.objects.exclude(pk=host.pk).update(maintenance=True)

    status, body = apis["operator"].post("/evacuations", {"host": host.fqdn})

    assert status == 201, body
    assert body["jobs"] == [] and body["plan"]["moves"] == []
    running = set(host.vms.filter(state=VmState.RUNNING, removed=False).values_list("name", flat=True))
    assert {v["vm"] for v in body["plan"]["left"] if v["reason"] == "No other host to move it to."} == running
    assert not MigrationJob.objects.exists()


def test_a_fault_of_the_console_still_answers_in_the_error_shape_and_is_logged(apis, demo_fabric, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("planner fault")

    monkeypatch.setattr("api.batches.evacuation_plan", broken)
    host = Host.objects.order_by("fqdn").first()

    status, body = apis["operator"].get(f"/hosts/{host.fqdn}/evacuation-plan")

    assert status == 500
    assert body["code"] == "server_error" and "planner fault" not in body["message"]
    assert any(r.exc_info and "planner fault" in str(r.exc_info[1]) for r in caplog.records)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"vm": "app-s01", "storage_path": "D:\\VMs\\..\\..\\Windows\\System32"},
        {
            "vm": "app-s01",
            "storage_path": "D:\\x",
            "vhds": [{"source": "{disk}", "destination": "C:\\Windows\\{name}"}],
        },
    ],
    ids=["storage_path", "vhds"],
)
def test_a_destination_with_dot_dot_or_in_a_system_folder_is_refused_by_preflight(apis, demo_fabric, body):
    if body.get("vhds"):
        disk = VirtualMachine.objects.get(name=body["vm"]).disks.first().path
        body["vhds"][0] = {"source": disk, "destination": f"C:\\Windows\\{disk.rsplit(chr(92), 1)[-1]}"}
    status, answer = apis["operator"].post("/migrations", body)
    assert status == 409, answer
    assert answer["code"] == "refused" and "path-not-allowed" in answer["errors"], answer
    assert not MigrationJob.objects.exists()

    vm = VirtualMachine.objects.get(name="app-s01")
    if "vhds" not in body:
        status, result = apis["viewer"].get(
            "/preflight", vm=vm.name, to=vm.host.fqdn, storage_path=body["storage_path"]
        )
        assert status == 200 and not result["allowed"]
        assert "path-not-allowed" in {f["rule"] for f in result["findings"]}


@pytest.mark.django_db
def test_evacuating_an_unreachable_host_is_refused_with_why(apis, demo_fabric):
    host = Host.objects.filter(cluster=None).order_by("fqdn").first()
    Host.objects.filter(pk=host.pk).update(reachable=False)

    status, body = apis["operator"].post("/evacuations", {"host": host.fqdn})

    assert status == 409, body
    assert body["code"] == "refused" and "does not answer" in body["message"]
    host.refresh_from_db()
    assert not host.maintenance
    assert not AuditEvent.objects.filter(action="evacuation.started").exists()


@pytest.mark.django_db
def test_the_evacuation_plan_adds_the_links_that_are_the_bottleneck(apis, demo_fabric):
    # hv-s1 sends over 1 Gbit/s with plain TCP: one stream fills it, yet its limit allows four.
    Host.objects.filter(name="hv-s1").update(nic_gbps=1.0, performance_option="tcpip", max_live_migrations=4)

    status, body = apis["operator"].get("/hosts/hv-s1.contoso.test/evacuation-plan")

    assert status == 200, body
    assert {"host": "hv-s1.contoso.test", "limit": 4, "cap": 1, "nic_gbps": 1.0} in body["link_caps"]
    assert list(body) == ["host", "moves", "left", "makespan_s", "lower_bound_s", "link_caps"]  # only added


def test_a_drained_node_resumes_through_move_back_or_end_maintenance(apis, demo_fabric):
    from migrations_ui.jobs.drain import start_drain
    from migrations_ui.models import Batch
    from migrations_ui.planning.inventory import drain_plan

    node = Host.objects.get(name="hv-new1")
    plan, roles, _ = drain_plan(node)
    batch = start_drain(node, plan, clustered=roles)
    status, _ = apis["operator"].post(f"/batches/{batch.pk}/move-back")
    assert status == 409  # the drain has not ended
    batch.plan["drain"]["status"] = "completed"
    batch.save()
    assert apis["viewer"].post(f"/batches/{batch.pk}/move-back")[0] == 403

    status, body = apis["operator"].post(f"/hosts/{node.fqdn}/end-maintenance")
    assert status == 200 and "maintenance has ended" in body["message"]
    node.refresh_from_db()
    assert not node.maintenance
    assert Batch.objects.get(pk=batch.pk).plan["drain"]["resume"]["failback"] == "no_failback"
