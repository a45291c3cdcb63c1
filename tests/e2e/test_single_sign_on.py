"""Single sign-on in Chromium, as a user meets it: a console started with the OIDC_* variables of a
real OpenID provider on loopback (tests/access/oidc_idp), its sign-in page's button, the provider's
own sign-in form, and back in the console with the role of the user's group, in English and German.
The console is its own (the e2e one has no single sign-on), without job workers: nothing moves."""

from __future__ import annotations

import pytest

from tests.access import oidc_idp as idp
from tests.conftest import need
from tests.e2e.conftest import ANSWERED, serious_violations, shoot
from tests.served import Served, free_port

ACCOUNTS = {"olga": idp.account("olga", ["console-operators"]), "nobody": idp.account("nobody", ["hr-staff"])}


@pytest.fixture(scope="module")
def sso_console(tmp_path_factory):
    absent = idp.missing()
    need(not absent, "the test OpenID provider (" + ", ".join(absent) + ")")
    port = free_port()
    provider = idp.Provider.start(
        tmp_path_factory.mktemp("idp"), ACCOUNTS, callback=f"http://127.0.0.1:{port}/oidc/callback/"
    )
    served = Served(tmp_path_factory.mktemp("sso-console"), port=port, workers=0, env=provider.environment())
    try:
        served.wait_until_running()
        yield served
    finally:
        served.stop()
        provider.stop()


def open_console(browser, served: Served, locale: str = "en-US"):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=locale)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not ANSWERED.match(m.text) else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(served.url("/jobs/"))
    return context, page, errors


def test_an_operator_signs_in_with_the_provider_and_lands_where_they_were_going(browser, sso_console, output_dir):
    context, page, errors = open_console(browser, sso_console)
    try:
        assert "/accounts/login/" in page.url
        button = page.get_by_role("link", name="Sign in with Contoso ID")
        assert serious_violations(page) == []
        shoot(page, output_dir, "sign-in-single-sign-on")
        button.click()
        page.fill("input[name=login]", "olga")  # the provider's own form
        page.fill("input[name=password]", idp.PASSWORD)
        page.click("button")
        page.wait_for_url(sso_console.url("/jobs/"))
        assert page.get_by_role("heading", name="Jobs").is_visible()
        assert page.get_by_text("olga", exact=True).first.is_visible()  # signed in as the provider's user
        assert page.get_by_role("button", name="Cancel selected").count() == 1  # an operator's page
        assert errors == []
    finally:
        context.close()


def test_a_user_without_a_console_group_is_told_so_in_german(browser, sso_console):
    context, page, errors = open_console(browser, sso_console, locale="de-DE")
    try:
        page.get_by_role("link", name="Anmelden mit Contoso ID").click()
        page.fill("input[name=login]", "nobody")
        page.fill("input[name=password]", idp.PASSWORD)
        page.click("button")
        page.wait_for_url(lambda url: url.startswith(sso_console.url("/")) and "/accounts/login/" not in url)
        assert page.get_by_text("keine Rolle").first.is_visible()  # signed in, no role: nothing shown
        assert page.get_by_role("link", name="Jobs").count() == 0
        assert errors == []
    finally:
        context.close()
