"""/manage/webhooks/ (administrators) and /account/notifications/ (each user's own)."""

from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("webhooks/", views.webhooks, name="webhooks"),
    path("webhooks/add/", views.webhook_form, name="webhook_add"),
    path("webhooks/<int:pk>/edit/", views.webhook_form, name="webhook_edit"),
    path("webhooks/<int:pk>/delete/", views.webhook_delete, name="webhook_delete"),
    path("webhooks/<int:pk>/test/", views.webhook_test, name="webhook_test"),
]

account_urls = [path("notifications/", views.account, name="account_notifications")]
