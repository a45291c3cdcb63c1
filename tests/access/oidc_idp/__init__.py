"""A real OpenID Provider for the tests: idp.mjs beside this file (panva's oidc-provider on Node.js,
installed by `make test-deps` from package-lock.json), started on loopback.

    with Provider.start(tmp_dir, accounts) as idp:
        idp.issuer            # http://127.0.0.1:PORT
        idp.environment()     # the console's OIDC_* variables for it
        idp.set_groups("olga", ["console-viewers"])
        callback = idp.sign_in(authorization_url, "olga", PASSWORD)  # the browser's part of the flow
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import requests

from tests.served import free_port

HERE = Path(__file__).parent
CLIENT_ID = "hyperv-console"
CLIENT_SECRET = "client-secret-for-tests-0123456789"
CALLBACK = "http://testserver/oidc/callback/"  # Django's test client's host
PASSWORD = "idp-pass-123"
GROUPS = {"viewer": "console-viewers", "operator": "Console-Operators", "administrator": "console-admins"}


def missing() -> list[str]:
    absent = [] if shutil.which("node") else ["Node.js"]
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        absent.append("oidc-provider (make test-deps: npm ci in tests/access/oidc_idp)")
    return absent


def account(login: str, groups: list[str], **claims) -> dict:
    given = login.capitalize()
    return {
        "password": PASSWORD,
        "claims": {
            "preferred_username": login,
            "email": f"{login}@contoso.test",
            "email_verified": True,
            "given_name": given,
            "family_name": "Tester",
            "name": f"{given} Tester",
            "groups": groups,
            **claims,
        },
    }


@dataclass
class Provider:
    issuer: str
    accounts_file: Path
    process: subprocess.Popen

    @classmethod
    def start(cls, folder: Path, accounts: dict, callback: str = CALLBACK) -> Provider:
        port = free_port()
        accounts_file = folder / "accounts.json"
        accounts_file.write_text(json.dumps(accounts))
        config = folder / "idp.json"
        issuer = f"http://127.0.0.1:{port}"
        config.write_text(
            json.dumps(
                {
                    "port": port,
                    "issuer": issuer,
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uri": callback,
                    "accounts": str(accounts_file),
                }
            )
        )
        process = subprocess.Popen(
            ["node", str(HERE / "idp.mjs"), str(config)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        line = process.stdout.readline()  # "listening", or nothing if it died
        if "listening" not in line:
            process.kill()
            raise RuntimeError(f"the test OpenID provider did not start (exit {process.wait()})")
        return cls(issuer, accounts_file, process)

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def environment(self, **overrides: str) -> dict[str, str]:
        """The console's variables for this provider, as an operator copies them from its discovery
        document (/.well-known/openid-configuration)."""
        discovery = requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=5).json()
        return {
            "OIDC_RP_CLIENT_ID": CLIENT_ID,
            "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_OP_ISSUER": discovery["issuer"],
            "OIDC_OP_AUTHORIZATION_ENDPOINT": discovery["authorization_endpoint"],
            "OIDC_OP_TOKEN_ENDPOINT": discovery["token_endpoint"],
            "OIDC_OP_USER_ENDPOINT": discovery["userinfo_endpoint"],
            "OIDC_OP_JWKS_ENDPOINT": discovery["jwks_uri"],
            "OIDC_RP_SCOPES": "openid email profile groups",
            "OIDC_PROVIDER_NAME": "Contoso ID",
            "OIDC_VIEWER_GROUP": GROUPS["viewer"],
            "OIDC_OPERATOR_GROUP": GROUPS["operator"],
            "OIDC_ADMINISTRATOR_GROUP": GROUPS["administrator"],
            **overrides,
        }

    def set_groups(self, login: str, groups: list[str]) -> None:
        accounts = json.loads(self.accounts_file.read_text())
        accounts[login]["claims"]["groups"] = groups
        self.accounts_file.write_text(json.dumps(accounts))

    def sign_in(self, authorization_url: str, login: str, password: str = PASSWORD) -> str:
        """What the browser does at the provider: follow the authorization request to the sign-in form,
        post it, and follow the redirects until the one back to the console; returns that URL."""
        browser = requests.Session()
        url = authorization_url
        form_posted = False
        for _ in range(10):
            if url.startswith(CALLBACK):
                return url
            if "/interaction/" in url and not form_posted:
                response = browser.post(url, data={"login": login, "password": password}, allow_redirects=False)
                form_posted = True
            else:
                response = browser.get(url, allow_redirects=False)
            if response.status_code not in (302, 303):
                raise AssertionError(f"the provider answered {response.status_code}: {response.text[:300]}")
            url = urljoin(url, response.headers["location"])
        raise AssertionError("the provider never sent the browser back to the console")
