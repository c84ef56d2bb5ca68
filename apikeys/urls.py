from __future__ import annotations

from django.urls import path

from apikeys import views

app_name = "apikeys"

urlpatterns = [
    path("settings/api-keys/", views.key_list, name="list"),
]
