"""manage.py verify_audit: recompute the audit trail's hash chain and hold it against the signed
checkpoint; name the first broken row."""

from django.core.management.base import BaseCommand, CommandError

from audit import checkpoint
from audit.verify import verify_chain
from utilities.commands import NoSystemChecks


class Command(NoSystemChecks, BaseCommand):
    help = (
        "Verify the audit trail's hash chain and its signed checkpoint (AUDIT_CHECKPOINT_FILE). "
        "Exit 0 when intact, 1 naming the first broken row."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--anchor",
            action="store_true",
            help="When the chain itself is intact, sign its last row as the checkpoint: once after upgrading "
            "(no checkpoint yet) or after restoring the database from a backup. Audited.",
        )

    def handle(self, *args, **options):
        try:
            signed = None if options["anchor"] else checkpoint.read()
        except checkpoint.CheckpointError as exc:
            raise CommandError(f"audit trail not verifiable: {exc}", returncode=1) from None
        result = verify_chain(checkpoint=signed)
        if result.broken_id is not None:
            raise CommandError(f"audit trail broken at event {result.broken_id}: {result.reason}", returncode=1)
        if options["anchor"]:
            return self._anchor(result)
        if signed is None and result.checked:
            raise CommandError(
                f"audit trail not anchored: no checkpoint at {checkpoint.path()}, so deleted last rows or a "
                "recomputed chain would go unseen. If it was never written (first run after upgrading) or the "
                "database was restored, run manage.py verify_audit --anchor.",
                returncode=1,
            )
        self.stdout.write(f"audit trail intact: {result.checked} events, last hash {result.last_hash[:16]}…")

    def _anchor(self, result):
        from audit.log import record

        # Recorded first, so the checkpoint signs the row that says who anchored it and where it stood.
        previous = checkpoint.read_quietly()
        event = record(
            "audit.anchored",
            details={
                "events": result.checked,
                "previous_checkpoint": previous.id if previous else None,
            },
        )
        checkpoint.write(event.pk, event.hash, force=True)
        self.stdout.write(f"audit trail anchored at event {event.pk}: {result.checked + 1} events")
