"""The 404 page says what is missing: a job, a batch, something of the inventory, or no page at all
(it used to tell of renamed hosts and VMs for a job number that does not exist)."""

import uuid

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "says", "not_said"),
    [
        (reverse("migrations_ui:job", args=[999]), "There is no migration job 999.", "renamed"),
        (reverse("migrations_ui:batch", args=[998]), "There is no batch 998.", "renamed"),
        (reverse("fabric:vm", args=[uuid.UUID(int=404)]), "may have been renamed, removed from Hyper-V", "job"),
        ("/no/such/page/", "There is no page at <code>/no/such/page/</code>.", "renamed"),
    ],
)
def test_the_404_page_names_what_is_missing(viewer_client, url, says, not_said):
    response = viewer_client.get(url)
    assert response.status_code == 404
    body = response.content.decode()
    assert says in body
    assert not_said not in body.split("<main", 1)[-1]


def test_the_404_page_speaks_german(viewer_client):
    viewer_client.cookies["django_language"] = "de"
    response = viewer_client.get(reverse("migrations_ui:job", args=[999]))
    assert "Es gibt keinen Migrationsauftrag 999." in response.content.decode()


def test_the_icon_browsers_ask_for_is_there_for_anyone(client):
    # Every page's /favicon.ico used to be a 404: an error in every browser's console.
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("/img/favicon.svg")
    assert 'rel="icon" href="/static/img/favicon.svg"' in client.get("/accounts/login/").content.decode()
