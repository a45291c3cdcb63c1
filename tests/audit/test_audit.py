import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from audit.log import record, scrub
from audit.models import GENESIS, AppendOnly, AuditEvent
from audit.verify import verify_chain

pytestmark = pytest.mark.django_db


def make_events(n=5):
    return [record(f"test.action{i}", target_type="vm", target_name=f"vm{i}", details={"i": i}) for i in range(n)]


def test_it_chains_each_event_to_the_one_before():
    events = make_events(3)

    assert events[0].prev_hash == GENESIS
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert verify_chain().checked == 3 and verify_chain().broken_id is None


def test_verify_audit_passes_on_an_intact_trail(capsys, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # the committed events' checkpoint
        make_events(4)
    call_command("verify_audit")
    assert "intact: 4 events" in capsys.readouterr().out


def test_changing_a_row_in_the_database_makes_verify_audit_name_it():
    events = make_events(5)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET target_name = %s WHERE id = %s", ["vm-other", events[2].pk])

    with pytest.raises(CommandError, match=f"broken at event {events[2].pk}: its content") as raised:
        call_command("verify_audit")
    assert raised.value.returncode == 1


def test_deleting_a_row_breaks_the_chain_at_the_next_one():
    events = make_events(4)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])

    assert verify_chain().broken_id == events[2].pk


def test_rewriting_a_row_with_a_fresh_hash_still_breaks_the_chain():
    events = make_events(3)
    forged = AuditEvent.objects.get(pk=events[1].pk)
    forged.target_name = "forged"
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET target_name = %s, hash = %s WHERE id = %s",
            ["forged", forged.compute_hash(), forged.pk],
        )

    assert verify_chain().broken_id == events[2].pk


def test_events_cannot_be_changed_or_deleted_through_the_orm():
    event = make_events(1)[0]
    event.action = "changed"
    with pytest.raises(AppendOnly):
        event.save()
    with pytest.raises(AppendOnly):
        event.delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(AppendOnly):
        AuditEvent.objects.all().delete()


def test_the_admin_offers_no_add_change_or_delete(admin_client):
    event = make_events(1)[0]
    assert admin_client.get(reverse("admin:audit_auditevent_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    page = admin_client.get(reverse("admin:audit_auditevent_change", args=[event.pk]))
    assert b'name="_save"' not in page.content
    assert admin_client.post(reverse("admin:audit_auditevent_delete", args=[event.pk])).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_secrets_never_reach_the_details():
    details = scrub({"password": "p@ss", "nested": {"api_token": "t", "ok": 1}, "list": [{"secret": "s"}]})
    assert details == {
        "password": "[hidden]",
        "nested": {"api_token": "[hidden]", "ok": 1},
        "list": [{"secret": "[hidden]"}],
    }


def test_sign_in_sign_out_and_failed_sign_in_are_audited(client, operator_user):
    client.post(reverse("login"), {"username": "operator", "password": "wrong"})
    client.post(reverse("login"), {"username": "operator", "password": "operator-pass-123"})
    client.post(reverse("logout"))

    signs = AuditEvent.objects.filter(action__in=["login", "logout", "login_failed"]).order_by("id")
    rows = list(signs.values_list("action", "username", "outcome", "role"))
    assert rows == [
        ("login_failed", "operator", "failure", ""),
        ("login", "operator", "success", "operator"),
        ("logout", "operator", "success", "operator"),
    ]
    assert all(e.source_ip == "127.0.0.1" and e.request_id for e in signs)
    assert "wrong" not in str(list(AuditEvent.objects.values()))


def test_user_and_role_changes_are_audited_with_the_acting_admin(admin_client, django_user_model):
    from django.contrib.auth.models import Group

    url = reverse("admin:auth_user_add")
    admin_client.post(
        url, {"username": "newop", "password1": "Xy7!long-enough-pass", "password2": "Xy7!long-enough-pass"}
    )
    user = django_user_model.objects.get(username="newop")
    user.groups.add(Group.objects.get(name="Operator"))

    created = AuditEvent.objects.get(action="user.created", target_name="newop")
    assert created.username == "admin" and created.request_id  # the admin who did it, from the request
    roles = AuditEvent.objects.get(action="user.roles_changed", target_name="newop")
    assert roles.details["groups"] == ["Operator"] and roles.details["change"] == "add"
