from __future__ import annotations

from django.urls import path

from studio import views

app_name = "studio"

urlpatterns = [
    path("studio/", views.studio, name="studio"),
    path("jobs/", views.jobs, name="jobs"),
]
