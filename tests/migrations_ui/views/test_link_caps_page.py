"""The evacuation plan says where a host's link, not its live-migration limit, is the bottleneck
(issue 20, deliver 7): on the Evacuate page, in English and German (the API: tests/api/test_moves.py)."""

import pytest
from django.conf import settings
from django.urls import reverse

from fabric.models import Host

pytestmark = pytest.mark.django_db


@pytest.fixture
def slow_link(demo_fabric):
    """hv-s1 sends over 1 Gbit/s with plain TCP: one stream fills it, yet its limit allows four."""
    Host.objects.filter(name="hv-s1").update(nic_gbps=1.0, performance_option="tcpip", max_live_migrations=4)
    return Host.objects.get(name="hv-s1")


def page(client, host, language):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.get(reverse("migrations_ui:evacuate", args=[host.fqdn]))
    assert response.status_code == 200
    return response


def test_the_evacuate_page_says_the_link_is_the_bottleneck_in_english_and_german(operator_client, slow_link):
    response = page(operator_client, slow_link, "en")
    cap = {c.host: c for c in response.context["plan"].link_caps}[slow_link.fqdn]
    assert (cap.cap, cap.limit) == (1, 4)
    english = response.content.decode()
    assert (
        "hv-s1&#x27;s 1 Gbit/s link is the bottleneck: one move at a time ends no later than 4 at once; "
        "a higher live-migration limit would not help."
    ) in english

    german = page(operator_client, slow_link, "de").content.decode()
    assert (
        "Die 1-Gbit/s-Verbindung von hv-s1 ist der Engpass: eine Migration nach der anderen endet nicht später "
        "als 4 gleichzeitig; ein höheres Limit für Livemigrationen würde nicht helfen."
    ) in german
    assert "bottleneck" not in german


def test_a_host_whose_link_is_not_the_bottleneck_gets_no_note(operator_client, demo_fabric):
    host = Host.objects.get(name="hv-s1")  # 10 GbE with compression: four streams fill it, its limit is 2
    response = page(operator_client, host, "en")
    assert response.context["plan"].link_caps == ()
    assert "bottleneck" not in response.content.decode()
