"""Creating, finding and revoking API tokens. A token is shown once, when created; afterwards only
its prefix is known. Creation and revocation are audited (the name and prefix, never the secret)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from api.models import ApiToken
from utilities.texts import Msg

SCHEME = "hvmc"  # tokens look like hvmc_<prefix>_<secret>: greppable in leaked files
_HEX = re.compile(r"[0-9a-f]{10}")
LAST_USED_EVERY = timedelta(minutes=1)  # one write per minute at most, not one per request


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


NAME_MAX = ApiToken._meta.get_field("name").max_length


def name_problem(name: str) -> Msg | None:
    """Why `name` (stripped) cannot name a token, or None. Never cut: a name kept in part would not
    be the one its owner looks for in the list."""
    if not name or any(ord(c) < 32 for c in name):
        return Msg("Give a name without control characters.")
    if len(name) > NAME_MAX:
        return Msg(
            "A token's name has at most %(max)s characters; this one has %(n)s: shorten it.", max=NAME_MAX, n=len(name)
        )
    return None


def create_token(user, name: str, request=None) -> tuple[ApiToken, str]:
    """The new token row and the token itself (the only time it exists in clear). ValueError when
    the name cannot be one (name_problem)."""
    from audit.log import record

    name = name.strip()
    if problem := name_problem(name):
        raise ValueError(problem)

    prefix = secrets.token_hex(5)
    token = f"{SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        row = ApiToken.objects.create(user=user, name=name, prefix=prefix, digest=_digest(token))
        record("token.created", request=request, actor=user, target=row, target_type="api_token",
               target_name=row.name, details={"prefix": prefix})  # fmt: skip
    return row, token


def revoke_token(row: ApiToken, user, request=None) -> bool:
    """Revoke one of the user's tokens; False when it was revoked already."""
    from audit.log import record

    with transaction.atomic():
        if not ApiToken.objects.filter(pk=row.pk, revoked_at=None).update(revoked_at=timezone.now()):
            return False
        record("token.revoked", request=request, actor=user, target=row, target_type="api_token",
               target_name=row.name, details={"prefix": row.prefix})  # fmt: skip
    return True


def user_for(token: str):
    """The active user a presented token belongs to, or None (unknown, revoked, malformed)."""
    parts = token.split("_", 2)  # the secret part may hold "_" itself
    if len(parts) != 3 or parts[0] != SCHEME or not _HEX.fullmatch(parts[1]):
        return None
    row = ApiToken.objects.select_related("user").filter(prefix=parts[1], revoked_at=None).first()
    if row is None or not hmac.compare_digest(row.digest, _digest(token)) or not row.user.is_active:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user
