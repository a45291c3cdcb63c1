"""The API says what the pages say of readiness: whether a host could be emptied now, and N+1."""

import pytest

from migrations_ui.planning.readiness import refresh_readiness

pytestmark = pytest.mark.django_db


def test_hosts_and_clusters_carry_their_readiness_without_the_pages_translation_data(apis, demo_fabric):
    status, body = apis["viewer"].get("/hosts/hv-new1.contoso.test")
    assert status == 200 and body["readiness"] is None  # not assessed yet
    refresh_readiness()

    status, body = apis["viewer"].get("/hosts/hv-new1.contoso.test")
    assert status == 200, body
    assert body["readiness"]["ready"] is False
    assert {b["vm"] for b in body["readiness"]["blockers"]} == {"erp-app01", "ckpt-new01"}
    assert "i18n" not in body["readiness"]["blockers"][0]
    status, body = apis["viewer"].get("/clusters/cl-old.contoso.test")
    assert status == 200, body
    assert body["readiness"]["n_plus_one"] is True
