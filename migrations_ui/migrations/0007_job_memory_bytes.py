# The VM's memory when a job was created: the history page and the planner's measured rates read it.
# Jobs recorded before get their VM's memory as the inventory has it now: the best the console knows.

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def backfill(apps, schema_editor):
    job = apps.get_model("migrations_ui", "MigrationJob")
    vm = apps.get_model("fabric", "VirtualMachine")
    job.objects.filter(memory_bytes=0).update(
        memory_bytes=Subquery(vm.objects.filter(pk=OuterRef("vm_id")).values("memory_assigned_bytes")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [
        ("fabric", "0001_initial"),
        ("migrations_ui", "0006_batch_plan_help_text"),
    ]

    operations = [
        migrations.AddField(
            model_name="migrationjob",
            name="memory_bytes",
            field=models.BigIntegerField(default=0, help_text="The VM's assigned memory when the job was created"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
