from django.apps import AppConfig


class MigrationsUiConfig(AppConfig):
    name = "migrations_ui"
    verbose_name = "Migrations"

    def ready(self) -> None:
        from migrations_ui.views.host_page import register

        register()  # the migration parts of the inventory's host and VM pages
