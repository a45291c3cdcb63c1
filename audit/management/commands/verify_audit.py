"""manage.py verify_audit: recompute the audit trail's hash chain; name the first broken row."""

from django.core.management.base import BaseCommand, CommandError

from audit.verify import verify_chain


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain. Exit 0 when intact, 1 naming the first broken row."

    def handle(self, *args, **options):
        result = verify_chain()
        if result.broken_id is not None:
            raise CommandError(f"audit trail broken at event {result.broken_id}: {result.reason}", returncode=1)
        self.stdout.write(f"audit trail intact: {result.checked} events, last hash {result.last_hash[:16]}…")
