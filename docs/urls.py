from __future__ import annotations

from django.urls import path, re_path

from docs import views

app_name = "docs"

urlpatterns = [
    path("docs/", views.page, name="index"),
    re_path(r"^docs/(?P<slug>[a-z-]+(?:/[a-z-]+)?)/$", views.page, name="page"),
]
