from django.urls import path

from migrations_ui import views

app_name = "migrations_ui"

urlpatterns = [
    path("vms/<uuid:guid>/migrate/", views.migrate_vm, name="migrate_vm"),
    path("vms/<uuid:guid>/migrate-storage/", views.migrate_storage, name="migrate_storage"),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="cancel_job"),
]
