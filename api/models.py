"""Personal API tokens: a user's scripts act with that user's role.

Only a SHA-256 hash of the token is kept (the token carries 256 random bits, so a plain hash is
enough: there is nothing to brute-force); the prefix finds the row without scanning hashes.
"""

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. the script's name")
    prefix = models.CharField(max_length=16, unique=True, help_text="The token's public part, shown in lists")
    digest = models.CharField(max_length=64, help_text="SHA-256 of the whole token")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.name} ({self.prefix})"

    @property
    def active(self) -> bool:
        return self.revoked_at is None
