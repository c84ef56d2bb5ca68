from __future__ import annotations

from django.urls import path

from studio import views

app_name = "studio"

urlpatterns = [
    path("studio/", views.studio, name="studio"),
    path("studio/run/", views.run, name="run"),
    path("studio/templates/<int:template_id>/preview.png", views.template_preview, name="preview"),
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job"),
    path("jobs/<uuid:job_id>/cancel/", views.cancel, name="cancel"),
    path("jobs/<uuid:job_id>/<str:which>.png", views.job_file, name="file"),
]
