import pytest
from django.test import Client

from api.tokens import create_token

PERSONAS = ("admin", "operator", "viewer", "outsider", "anonymous")


class Api:
    """A client of /api/v1/ with a bearer token (or none): api.get("/hosts") -> (status, json)."""

    def __init__(self, token: str | None):
        self.client = Client(enforce_csrf_checks=True)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, data=None, **params):
        url = "/api/v1" + path
        if method == "get":
            response = self.client.get(url, params, headers=self.headers)
        else:
            response = getattr(self.client, method)(
                url, data if data is not None else {}, content_type="application/json", headers=self.headers
            )
        payload = response.json() if response.get("Content-Type", "").startswith("application/json") else None
        return response.status_code, payload

    def get(self, path, **params):
        return self.call("get", path, **params)

    def post(self, path, data=None):
        return self.call("post", path, data)


@pytest.fixture
def persona_users(admin_user, operator_user, viewer_user, outsider_user):
    return {"admin": admin_user, "operator": operator_user, "viewer": viewer_user, "outsider": outsider_user}


@pytest.fixture
def apis(persona_users):
    """An Api per persona: a token of each user, and none for anonymous."""
    clients = {name: Api(create_token(user, f"{name} script")[1]) for name, user in persona_users.items()}
    clients["anonymous"] = Api(None)
    return clients
