"""The trail cannot be cut or rewritten unseen: the signed checkpoint (audit/checkpoint.py) against
truncation and recomputed chains, the actor's copied id against user deletion."""

import json
import os
import time

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from audit import checkpoint
from audit.log import record
from audit.models import GENESIS, AuditEvent, chain_hash

pytestmark = pytest.mark.django_db


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Events as committed in production: their on-commit checkpoint writes run."""

    def make(n=5, **fields):
        with django_capture_on_commit_callbacks(execute=True):
            return [record(f"test.action{i}", target_type="vm", target_name=f"vm{i}", **fields) for i in range(n)]

    return make


def verify_audit():
    call_command("verify_audit", stdout=open(os.devnull, "w"))  # noqa: SIM115


def broken(match):
    with pytest.raises(CommandError, match=match) as raised:
        verify_audit()
    assert raised.value.returncode == 1


def sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_each_committed_event_advances_the_signed_checkpoint_in_a_private_file(committed, settings):
    events = committed(3)

    head = checkpoint.read()
    assert (head.id, head.hash) == (events[-1].pk, events[-1].hash)
    assert os.stat(settings.AUDIT_CHECKPOINT_FILE).st_mode & 0o777 == 0o600
    assert settings.AUDIT_KEY not in settings.AUDIT_CHECKPOINT_FILE.read_text()
    verify_audit()


def test_a_rolled_back_event_is_not_checkpointed(committed, django_capture_on_commit_callbacks):
    events = committed(2)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        record("test.rolled_back")
        raise RuntimeError("the change failed")

    assert checkpoint.read().id == events[-1].pk
    verify_audit()


def test_writing_the_checkpoint_is_one_cheap_file_write(committed):
    committed(1)
    started = time.perf_counter()
    for n in range(200):
        checkpoint.write(10_000 + n, "a" * 64)
    # Measured about 0.05 ms each here; a generous bound for a loaded CI machine.
    assert (time.perf_counter() - started) / 200 < 0.005


def test_an_edited_row_is_found(committed):
    events = committed(5)
    sql("UPDATE audit_auditevent SET target_name = 'vm-other' WHERE id = %s", [events[2].pk])
    broken(f"broken at event {events[2].pk}: its content does not match its hash")


def test_a_deleted_row_is_found(committed):
    events = committed(5)
    sql("DELETE FROM audit_auditevent WHERE id = %s", [events[2].pk])
    broken(f"broken at event {events[3].pk}: its previous-hash")


def test_deleted_last_rows_are_found(committed):
    events = committed(5)
    sql("DELETE FROM audit_auditevent WHERE id >= %s", [events[3].pk])

    broken(f"broken at event {events[4].pk}: the trail ends at event {events[2].pk}: the last rows were deleted")


def test_deleting_every_row_is_found(committed):
    events = committed(3)
    sql("DELETE FROM audit_auditevent")
    broken(f"broken at event {events[2].pk}: the trail ends at event none")


def test_a_rewritten_row_with_the_chain_recomputed_after_it_is_found(committed):
    events = committed(5)
    # What someone with write access to the database only can do: change a row and recompute every
    # hash after it, so that the chain alone verifies again.
    previous = events[1].hash
    for event in AuditEvent.objects.filter(pk__gte=events[2].pk).order_by("id"):
        if event.pk == events[2].pk:
            event.target_name = "forged"
        event.prev_hash = previous
        event.hash = chain_hash(previous, event.canonical())
        sql(
            "UPDATE audit_auditevent SET target_name = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [event.target_name, event.prev_hash, event.hash, event.pk],
        )
        previous = event.hash
    from audit.verify import verify_chain

    assert verify_chain().broken_id is None  # the chain alone is fooled

    broken(f"broken at event {events[4].pk}: its hash differs from the signed checkpoint's")


def test_a_forged_checkpoint_is_refused(committed, settings):
    events = committed(2)
    forged = {"id": events[0].pk, "hash": events[0].hash, "mac": "0" * 64}
    settings.AUDIT_CHECKPOINT_FILE.write_text(json.dumps(forged))
    broken("is not signed with AUDIT_KEY")


def test_a_trail_without_checkpoint_is_refused_until_anchored_and_anchoring_is_audited(committed, settings):
    committed(3)
    os.remove(settings.AUDIT_CHECKPOINT_FILE)
    broken("not anchored: no checkpoint")

    call_command("verify_audit", "--anchor", stdout=open(os.devnull, "w"))  # noqa: SIM115

    anchored = AuditEvent.objects.get(action="audit.anchored")
    assert checkpoint.read().id == anchored.pk and anchored.details["events"] == 3
    verify_audit()


def test_anchoring_refuses_a_broken_chain(committed):
    events = committed(3)
    sql("UPDATE audit_auditevent SET action = 'x' WHERE id = %s", [events[1].pk])
    with pytest.raises(CommandError, match=f"broken at event {events[1].pk}"):
        call_command("verify_audit", "--anchor")
    assert not AuditEvent.objects.filter(action="audit.anchored").exists()


def test_deleting_a_user_keeps_the_chain_valid_and_is_audited(committed, admin_client, django_user_model):
    user = django_user_model.objects.create_user("leaver", password="leaver-pass-123")
    acted = committed(2, actor=user)

    response = admin_client.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302

    row = AuditEvent.objects.get(pk=acted[0].pk)
    assert row.actor_id is None and (row.actor_pk, row.username) == (user.pk, "leaver")
    deleted = AuditEvent.objects.get(action="user.deleted")
    assert (deleted.username, deleted.target_name, deleted.target_id) == ("admin", "leaver", str(user.pk))
    from audit.verify import verify_chain

    assert verify_chain().broken_id is None


def test_the_hash_covers_the_actors_name_and_id(committed, django_user_model):
    user = django_user_model.objects.create_user("someone")
    event = committed(1, actor=user)[0]
    sql("UPDATE audit_auditevent SET username = 'someone-else' WHERE id = %s", [event.pk])
    broken(f"broken at event {event.pk}: its content")
    sql("UPDATE audit_auditevent SET username = 'someone', actor_pk = %s WHERE id = %s", [user.pk + 1, event.pk])
    broken(f"broken at event {event.pk}: its content")


def test_the_migration_keeps_existing_rows_verifiable_even_of_users_deleted_before(django_user_model):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("audit.migrations.0002_actor_pk")
    stays = django_user_model.objects.create_user("stays")
    left = django_user_model.objects.create_user("left")
    for actor in (stays, left, None):
        record("test.before_upgrade", actor=actor)
    # The rows as 0001 left them: no actor_pk; then the old SET_NULL of a deleted user.
    sql("UPDATE audit_auditevent SET actor_pk = NULL")
    sql("UPDATE audit_auditevent SET actor_id = NULL WHERE actor_id = %s", [left.pk])
    from audit.verify import verify_chain

    assert verify_chain().broken_id is not None  # the old false alarm

    migration.copy_actor_ids(apps, None)

    assert verify_chain().broken_id is None
    rows = AuditEvent.objects.filter(action="test.before_upgrade").order_by("id")
    assert [r.actor_pk for r in rows] == [stays.pk, left.pk, None]


def test_genesis_is_the_first_rows_previous_hash(committed):
    assert committed(1)[0].prev_hash == GENESIS
