from __future__ import annotations

from django.urls import path

from usage import views

app_name = "usage"

urlpatterns = [
    path("usage/", views.usage_page, name="usage"),
    path("usage/export.csv", views.usage_export, name="export"),
    path("usage/requests/", views.request_log, name="requests"),
    path("usage/requests/export.csv", views.request_log_export, name="requests_export"),
    path("usage/requests/<str:request_id>/", views.request_detail, name="request"),
]
