from __future__ import annotations

from django.urls import path

from apikeys import views

app_name = "apikeys"

urlpatterns = [
    path("settings/api-keys/", views.key_list, name="list"),
    path("settings/api-keys/new/", views.key_create, name="create"),
    path("settings/api-keys/<int:key_id>/roll/", views.key_roll, name="roll"),
    path("settings/api-keys/<int:key_id>/rename/", views.key_rename, name="rename"),
    path("settings/api-keys/<int:key_id>/edit/", views.key_edit, name="edit"),
    path("settings/api-keys/<int:key_id>/toggle/", views.key_toggle, name="toggle"),
    path("settings/api-keys/<int:key_id>/revoke/", views.key_revoke, name="revoke"),
    path("settings/api-keys/<int:key_id>/narrow/", views.key_narrow, name="narrow"),
    path("settings/api-keys/<int:key_id>/end-grace/", views.key_end_grace, name="end_grace"),
]
