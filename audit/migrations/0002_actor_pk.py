"""The hash covers actor_pk, a copy of the actor's id that deleting the user leaves alone, instead
of the actor foreign key that SET_NULL empties. Existing rows keep their hashes: actor_pk gets the
id they were hashed with. Rows whose user was deleted before (actor NULL, and a hash that no
longer matches) get the id back by search: their hash covers it, so the one id that makes the hash
match again is the one that was there, and nothing is rewritten but actor_pk."""

import hashlib
import json

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import migrations, models
from django.db.models import F, Max


def _hash(row, actor):
    # The canonical form as of 0001 (frozen here: the model's may change later).
    content = {
        "time": row.time.isoformat(timespec="microseconds"),
        "actor": actor,
        "username": row.username,
        "role": row.role,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "target_name": row.target_name,
        "details": row.details,
        "outcome": row.outcome,
        "source_ip": row.source_ip,
        "request_id": row.request_id,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(f"{row.prev_hash}\n{canonical}".encode()).hexdigest()


def copy_actor_ids(apps, schema_editor):
    event_model = apps.get_model("audit", "AuditEvent")
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    events = event_model._base_manager
    events.exclude(actor=None).update(actor_pk=F("actor_id"))
    # A deleted user's id lies below the highest id given out; the margin covers deleted newest users.
    highest = max(user_model._base_manager.aggregate(m=Max("pk"))["m"] or 0, 0) + 1000
    for row in events.filter(actor=None).exclude(username="").iterator():
        if _hash(row, None) == row.hash:
            continue  # a failed sign-in or the shell: there never was an actor id
        found = next((pk for pk in range(1, highest + 1) if _hash(row, pk) == row.hash), None)
        if found is not None:
            events.filter(pk=row.pk).update(actor_pk=found)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="actor_pk",
            field=models.PositiveIntegerField(blank=True, help_text="Copied: stays when the user is gone", null=True),
        ),
        migrations.RunPython(copy_actor_ids, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["action", "time"], name="audit_action_time"),
        ),
    ]
