"""The OpenAPI 3 document and the docs page: served by the console itself (Swagger UI from ninja's
static files, no CDN), under the console's Content-Security-Policy (no inline script)."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from api.tokens import create_token
from tests.api.conftest import Api


@pytest.mark.django_db
def test_the_openapi_document_is_openapi_3_with_every_operation_and_the_error_shape(operator_user):
    status, schema = Api(create_token(operator_user, "docs")[1]).get("/openapi.json")
    assert status == 200
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in ["/api/v1/vms", "/api/v1/preflight", "/api/v1/migrations", "/api/v1/migrations/{job_id}/cancel",
                 "/api/v1/migrations/{job_id}/ask-again", "/api/v1/migrations/{job_id}/decide",
                 "/api/v1/evacuations", "/api/v1/hosts/{fqdn}/evacuation-plan", "/api/v1/batches/{batch_id}",
                 "/api/v1/events", "/api/v1/audit-events", "/api/v1/hosts/{fqdn}/maintenance-report",
                 "/api/v1/webhooks", "/api/v1/webhooks/{webhook_id}", "/api/v1/webhooks/{webhook_id}/deliveries",
                 "/api/v1/webhooks/{webhook_id}/test", "/api/v1/account/notifications"]:  # fmt: skip
        assert path in paths, path
    for operations in paths.values():
        for operation in operations.values():
            assert {"400", "401", "403", "404", "409"} <= set(operation["responses"])
    assert set(schema["components"]["schemas"]["ErrorOut"]["properties"]) == {"code", "message", "errors"}
    # A webhook's secret is write-only: in what a client sends, never in what it gets back.
    webhook_in = schema["components"]["schemas"]["WebhookIn"]["properties"]["secret"]
    assert webhook_in["writeOnly"] is True and webhook_in["format"] == "password"
    assert "secret" not in schema["components"]["schemas"]["WebhookOut"]["properties"]
    assert {"TokenAuth", "SessionAuth"} <= set(schema["components"]["securitySchemes"])
    # A job's state is documented with its values, unknown among them (the host stopped answering).
    state = schema["components"]["schemas"]["JobOut"]["properties"]["state"]
    states = (
        schema["components"]["schemas"][state["$ref"].rsplit("/", 1)[1]]["enum"] if "$ref" in state else state["enum"]
    )
    assert "unknown" in states


@pytest.mark.django_db
def test_the_openapi_document_needs_credentials(client, outsider_user):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"
    client.force_login(outsider_user)
    assert client.get("/api/v1/openapi.json").status_code == 403


@pytest.mark.django_db
def test_the_docs_page_uses_only_local_files_and_no_inline_script(viewer_client):
    response = viewer_client.get("/api/v1/docs")
    assert response.status_code == 200
    assert "script-src 'self'" in response["Content-Security-Policy"]
    page = response.content.decode()
    assert "cdn" not in page.lower() and "https://" not in page
    sources = re.findall(r'<script src="([^"]+)"', page)
    assert sources and all(s.startswith("/static/") for s in sources)
    for source in [*sources, *re.findall(r'href="(/static/[^"]+)"', page)]:
        assert finders.find(source.removeprefix("/static/")), source
    # The only inline <script> is JSON data (the settings), which a browser never runs.
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", page)
    assert inline == [' type="application/json" id="swagger-settings"']


@pytest.mark.django_db
def test_the_docs_page_sends_strangers_to_sign_in():
    response = Client().get("/api/v1/docs")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_every_operation_of_the_document_loads_in_schemathesis(operator_user):
    import schemathesis

    _, document = Api(create_token(operator_user, "docs")[1]).get("/openapi.json")
    operations = [result.ok() for result in schemathesis.openapi.from_dict(document).get_all_operations()]
    assert len(operations) == sum(len(methods) for methods in document["paths"].values()) == 36
