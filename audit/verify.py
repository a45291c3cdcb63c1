"""Recomputing the chain, row by row in id order, without loading the table into memory."""

from dataclasses import dataclass

from audit.models import GENESIS, AuditEvent


@dataclass
class Verification:
    checked: int
    last_hash: str
    broken_id: int | None = None
    reason: str = ""


def verify_chain(chunk_size: int = 2000) -> Verification:
    previous, checked = GENESIS, 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=chunk_size):
        if event.prev_hash != previous:
            return Verification(checked, previous, event.pk, "its previous-hash does not match the row before it")
        if event.compute_hash() != event.hash:
            return Verification(checked, previous, event.pk, "its content does not match its hash")
        previous, checked = event.hash, checked + 1
    return Verification(checked, previous)
