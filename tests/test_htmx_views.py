"""Pages that answer htmx with a partial say so to caches (Vary: HX-Request) and take GET only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conftest import sample_b64
from studio import actions
from studio.models import Template


@pytest.mark.parametrize("name", ["apikeys:list", "billing:billing", "usage:usage", "studio:jobs"])
def test_partial_pages_vary_on_hx_request_and_refuse_post(alice_client, name):
    url = reverse(name)
    for headers in ({}, {"HX-Request": "true"}):
        response = alice_client.get(url, headers=headers)
        assert response.status_code == 200
        assert "HX-Request" in response["Vary"]
    assert alice_client.post(url).status_code == 405


def test_the_job_page_varies_on_hx_request(alice_client, alice):
    template = Template.objects.get(name="Sepia")
    job = actions.submit_generate(alice, None, image=sample_b64(), template=template, params={}).job
    url = reverse("studio:job", args=[job.pk])
    full = alice_client.get(url)
    partial = alice_client.get(url, headers={"HX-Request": "true"})
    assert "HX-Request" in full["Vary"] and "HX-Request" in partial["Vary"]
    assert len(partial.content) < len(full.content)
    assert alice_client.post(url).status_code == 405
