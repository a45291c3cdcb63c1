"""A signed-in user's own preferences, kept across browsers (the language so far)."""

from django.conf import settings
from django.db import models


class Preference(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference")
    language = models.CharField(max_length=8, blank=True, help_text="Chosen with the language switch")

    def __str__(self):
        return f"{self.user} ({self.language or 'browser language'})"
