from __future__ import annotations

from django.urls import path

from webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("settings/webhooks/", views.endpoint_list, name="list"),
    path("settings/webhooks/<uuid:endpoint_id>/", views.endpoint_detail, name="endpoint"),
    path(
        "settings/webhooks/<uuid:endpoint_id>/<slug:action>/",
        views.endpoint_action,
        name="action",
    ),
    path(
        "settings/webhooks/<uuid:endpoint_id>/deliveries/<uuid:delivery_id>/resend/",
        views.delivery_resend,
        name="resend",
    ),
    path("settings/notifications/", views.notifications, name="notifications"),
]
