from django.urls import path

from migrations_ui.views import batches, history, jobs, queue, report, windows

app_name = "migrations_ui"

urlpatterns = [
    path("vms/<uuid:guid>/migrate/", jobs.migrate_vm, name="migrate_vm"),
    path("vms/<uuid:guid>/migrate-storage/", jobs.migrate_storage, name="migrate_storage"),
    path("jobs/", jobs.job_list, name="jobs"),
    path("jobs/<int:pk>/", jobs.job_detail, name="job"),
    path("jobs/history/", history.history, name="history"),
    path("jobs/history.csv", history.history_csv, name="history_csv"),
    path("jobs/<int:pk>/cancel/", jobs.job_cancel, name="cancel_job"),
    path("jobs/<int:pk>/ask-again/", jobs.job_ask_again, name="ask_hosts_again"),
    path("jobs/<int:pk>/decide/", jobs.job_decide, name="decide_job"),
    path("jobs/<int:pk>/move/", queue.job_move, name="move_job"),
    path("jobs/cancel/", queue.jobs_cancel, name="cancel_jobs"),
    path("hosts/<str:fqdn>/queue/", queue.host_queue, name="host_queue"),
    path("hosts/<str:fqdn>/evacuate/", batches.evacuate_host, name="evacuate"),
    path("hosts/<str:fqdn>/maintenance-report/", report.maintenance_report, name="maintenance_report"),
    path("hosts/<str:fqdn>/maintenance-report.csv", report.maintenance_report_csv, name="maintenance_report_csv"),
    path("hosts/<str:fqdn>/move-back/", batches.host_move_back, name="host_move_back"),
    path("hosts/<str:fqdn>/end-maintenance/", batches.host_end_maintenance, name="host_end_maintenance"),
    path("vms/migrate-selected/", batches.migrate_selected, name="migrate_selected"),
    path("batches/<int:pk>/", batches.batch_detail, name="batch"),
    path("batches/<int:pk>/move-back/", batches.batch_move_back, name="batch_move_back"),
    path("maintenance/", windows.window_list, name="windows"),
    path("maintenance/schedule/", windows.schedule, name="schedule_window"),
    path("maintenance/<int:pk>/", windows.window_edit, name="window"),
    path("maintenance/<int:pk>/cancel/", windows.window_cancel, name="cancel_window"),
]
