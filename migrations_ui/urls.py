from django.urls import path

from migrations_ui import batch_views, queue_views, views

app_name = "migrations_ui"

urlpatterns = [
    path("vms/<uuid:guid>/migrate/", views.migrate_vm, name="migrate_vm"),
    path("vms/<uuid:guid>/migrate-storage/", views.migrate_storage, name="migrate_storage"),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="cancel_job"),
    path("jobs/<int:pk>/ask-again/", views.job_ask_again, name="ask_hosts_again"),
    path("jobs/<int:pk>/decide/", views.job_decide, name="decide_job"),
    path("jobs/<int:pk>/move/", queue_views.job_move, name="move_job"),
    path("jobs/cancel/", queue_views.jobs_cancel, name="cancel_jobs"),
    path("hosts/<str:fqdn>/queue/", queue_views.host_queue, name="host_queue"),
    path("hosts/<str:fqdn>/evacuate/", batch_views.evacuate_host, name="evacuate"),
    path("hosts/<str:fqdn>/move-back/", batch_views.host_move_back, name="host_move_back"),
    path("hosts/<str:fqdn>/end-maintenance/", batch_views.host_end_maintenance, name="host_end_maintenance"),
    path("vms/migrate-selected/", batch_views.migrate_selected, name="migrate_selected"),
    path("batches/<int:pk>/", batch_views.batch_detail, name="batch"),
    path("batches/<int:pk>/move-back/", batch_views.batch_move_back, name="batch_move_back"),
]
