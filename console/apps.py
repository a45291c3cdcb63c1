from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"

    def ready(self):
        from console import language  # noqa: F401 - connects the sign-in receiver
