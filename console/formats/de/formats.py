"""German dates as German operators write them (25.11.2026 14:05:09), with seconds: moves take seconds.
Everything not set here (decimal comma, thousands point) comes from Django's own "de" formats."""

DATE_FORMAT = "d.m.Y"
DATETIME_FORMAT = "d.m.Y H:i:s"
SHORT_DATETIME_FORMAT = "d.m.Y H:i"
TIME_FORMAT = "H:i:s"
