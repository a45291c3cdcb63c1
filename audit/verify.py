"""Recomputing the chain, row by row in id order, without loading the table into memory, and
holding it against the signed checkpoint (audit/checkpoint.py)."""

from dataclasses import dataclass

from audit import checkpoint as checkpoints
from audit.models import GENESIS, AuditEvent


@dataclass
class Verification:
    checked: int
    last_hash: str
    broken_id: int | None = None
    reason: str = ""


def verify_chain(chunk_size: int = 2000, checkpoint: checkpoints.Checkpoint | None = None) -> Verification:
    """The first broken row, if any. With a checkpoint, also the rows it proves were there: the
    trail must reach its event (else the last rows were deleted) with its hash (else the chain was
    rewritten and recomputed up to it)."""
    previous, checked, last_id = GENESIS, 0, None
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=chunk_size):
        if event.prev_hash != previous:
            return Verification(checked, previous, event.pk, "its previous-hash does not match the row before it")
        if event.compute_hash() != event.hash:
            return Verification(checked, previous, event.pk, "its content does not match its hash")
        if checkpoint is not None and last_id is not None and last_id < checkpoint.id < event.pk:
            return Verification(checked, previous, checkpoint.id, "the signed checkpoint's event is missing")
        if checkpoint is not None and event.pk == checkpoint.id and event.hash != checkpoint.hash:
            return Verification(
                checked, previous, event.pk, "its hash differs from the signed checkpoint's: the chain was recomputed"
            )
        previous, checked, last_id = event.hash, checked + 1, event.pk
    if checkpoint is not None and (last_id or 0) < checkpoint.id:
        return Verification(
            checked,
            previous,
            checkpoint.id,
            f"the trail ends at event {last_id or 'none'}: the last rows were deleted (the signed checkpoint is event "
            f"{checkpoint.id})",
        )
    return Verification(checked, previous)
