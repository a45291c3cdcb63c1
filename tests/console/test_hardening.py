import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import RequestDataTooBig
from django.test import Client, RequestFactory
from django.urls import reverse

from audit.models import AuditEvent
from console.errors import bad_request
from tests.fabric.factories import make_host, make_vm

pytestmark = pytest.mark.django_db
MANAGE = str(Path(__file__).resolve().parents[2] / "manage.py")


def sign_in(client, password):
    return client.post(reverse("login"), {"username": "operator", "password": password})


def test_repeated_failed_sign_ins_lock_the_account(client, operator_user, settings):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        assert sign_in(client, "wrong").status_code == 200

    response = sign_in(client, "operator-pass-123")

    assert response.status_code == 200 and "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="login_locked", username="operator", outcome="denied").exists()


def test_a_few_failures_do_not_lock(client, operator_user, settings):
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        sign_in(client, "wrong")
    assert sign_in(client, "operator-pass-123").status_code == 302


def test_security_headers_on_every_page(admin_client):
    response = admin_client.get("/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp and "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Request-ID"]


def test_a_post_without_the_csrf_token_is_refused(operator_user):
    host = make_host("hv-a")
    vm = make_vm("web01", host=host)
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_user)

    response = client.post(reverse("migrations_ui:migrate_vm", args=[vm.guid]), {"to": "hv-b.contoso.test"})
    htmx = client.post(reverse("migrations_ui:migrate_vm", args=[vm.guid]), {"to": "x"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 403 and htmx.status_code == 403


def test_the_csrf_token_reaches_htmx_through_the_body(admin_client):
    body = admin_client.get("/").content.decode()
    assert re.search(r'<body hx-headers=\'\{"X-CSRFToken": "[^"]+"\}\'>', body)


INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+=|\shx-on|\sstyle=", re.IGNORECASE)


def test_pages_carry_no_inline_script_or_style(admin_client):
    host = make_host("hv-a")
    vm = make_vm("web01", host=host)
    for url in ["/", "/vms/", host.get_absolute_url(), vm.get_absolute_url(), "/jobs/", "/audit/", "/accounts/login/"]:
        body = admin_client.get(url).content.decode()
        assert not INLINE.search(body), (url, INLINE.search(body).group(0))


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "x7Yq9_production-grade-secret-key-with-enough-entropy-1234567890",
        "ALLOWED_HOSTS": "console.contoso.com",
        "CONSOLE_HTTPS": "1",
        "CONSOLE_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, MANAGE, "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_huge_user_name_is_a_failed_sign_in(client, operator_user):
    # The lockout check's iexact lookup is a LIKE on SQLite, whose patterns stop at 50,000
    # characters ("LIKE or GLOB pattern too complex"): a 50,001-character name was a 500. SQLite
    # evaluates the LIKE only against rows of failed sign-ins: make one first.
    assert sign_in(client, "wrong").status_code == 200
    for name in ("x" * 50_001, "operator" + " " * 50_001 + "x", "%" * 50_001):
        response = client.post(reverse("login"), {"username": name, "password": "operator-pass-123"})
        assert response.status_code == 200, name[:20]
        assert "_auth_user_id" not in client.session


def test_a_body_over_the_limit_is_413(client, settings, caplog):
    # Django answers RequestDataTooBig with its 400 page; the console says what went wrong: 413.
    big = {"username": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1), "password": "p"}
    # Read by the view (the test client skips the CSRF check)...
    assert client.post(reverse("login"), big).status_code == 413
    # ...and by CsrfViewMiddleware, as for a browser, before any view runs.
    browser = Client(enforce_csrf_checks=True)
    browser.get(reverse("login"))
    response = browser.post(reverse("login"), big)
    assert response.status_code == 413 and "too large" in response.content.decode()
    # Under /api/, should a middleware read the body before the API does, the same refusal comes
    # in the API's error shape.
    response = bad_request(RequestFactory().post("/api/v1/migrations"), RequestDataTooBig("too big"))
    assert response.status_code == 413 and json.loads(response.content)["code"] == "too_large"
    assert not [r for r in caplog.records if r.levelname == "ERROR" and r.name == "django.request"]


def test_the_413_page_is_german_for_a_german_browser(settings):
    big = {"username": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1), "password": "p"}
    response = Client(headers={"Accept-Language": "de"}).post(reverse("login"), big)
    assert response.status_code == 413 and "Anfrage zu groß" in response.content.decode()
