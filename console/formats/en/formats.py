"""English dates as the console always wrote them (ISO 8601, 24 h): operators compare them with host logs.
Everything not set here comes from Django's own "en" formats."""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i:s"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
TIME_FORMAT = "H:i:s"
