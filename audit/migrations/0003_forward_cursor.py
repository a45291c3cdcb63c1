"""Forwarding the audit trail to syslog (audit/forward.py): how far each receiver got, and the lease
that lets one forwarder send at a time."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0002_actor_pk'),
    ]

    operations = [
        migrations.CreateModel(
            name='ForwardCursor',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('destination', models.CharField(max_length=255, unique=True)),
                ('last_sequence', models.BigIntegerField(default=0)),
                ('lease_owner', models.CharField(blank=True, max_length=255)),
                ('lease_until', models.DateTimeField(blank=True, null=True)),
                ('forwarded_at', models.DateTimeField(blank=True, null=True)),
                ('last_error', models.TextField(blank=True)),
                ('failed_since', models.DateTimeField(blank=True, null=True)),
            ],
        ),
    ]
