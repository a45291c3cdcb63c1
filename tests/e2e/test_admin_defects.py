"""Issue 19's defects on the settings, audit, token and not-found pages, in Chromium: what an
administrator, operator or viewer typed used to be cut, ignored without a word, or answered with
the host's raw error; now each is named at its field, in English and German."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.e2e.conftest import shoot


def german(session) -> None:
    """The language switch's cookie, as the switch in the top bar sets it."""
    session.page.context.add_cookies([{"name": "django_language", "value": "de", "url": session.console.url("/")}])


def test_a_limit_of_0_is_refused_at_its_field_before_any_host_is_asked(signed_in, output_dir):
    admin = signed_in("admin")
    page = admin.page
    admin.goto("/hosts/hv-s1.contoso.test/settings/")
    limit = page.get_by_label("Simultaneous live migrations")
    limit.fill("0")
    page.get_by_role("button", name="Apply").click()
    # min="1" on the field: the browser itself refuses 0 at the field and sends nothing.
    assert limit.evaluate("field => field.validity.rangeUnderflow") is True
    expect(page.get_by_text("Result, as read back")).to_have_count(0)

    # Sent anyway (a browser without the check): refused at the field, nothing asked of the host.
    page.locator("form.card").evaluate("form => form.setAttribute('novalidate', '')")
    page.get_by_role("button", name="Apply").click()
    field = page.locator("dd", has=page.get_by_label("Simultaneous live migrations"))
    expect(field).to_contain_text("At least 1: Hyper-V refuses 0")
    expect(page.get_by_role("alert").first).to_contain_text("Nothing was changed")
    expect(page.get_by_text("Result, as read back")).to_have_count(0)
    expect(page.get_by_text("Cannot validate argument")).to_have_count(0)  # the host's raw error
    shoot(page, output_dir, "settings-limit-0-refused")

    page.get_by_label("Simultaneous live migrations").fill("")
    page.get_by_label("Performance option").select_option("smb")
    page.get_by_role("button", name="Apply").click()
    result = page.locator("table", has=page.get_by_role("columnheader", name="Outcome"))
    expect(result).to_contain_text("SMB")
    expect(result).not_to_contain_text("smb")
    expect(result).not_to_contain_text("yes → yes")
    page.get_by_label("Performance option").select_option("compression")  # as it was, for the other tests
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("table", has=page.get_by_role("columnheader", name="Outcome"))).to_contain_text("Compression")


def test_an_audit_date_it_cannot_read_is_named_at_its_field(signed_in, output_dir):
    viewer = signed_in("viewer")
    page = viewer.page
    viewer.goto("/audit/")
    page.get_by_label("From").fill("notadate")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_label("From")).to_have_value("notadate")
    expect(page.get_by_label("From")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#since-error")).to_contain_text("Ignored 'notadate': give a date")

    viewer.goto("/audit/?from=notadate")
    expect(page.get_by_role("status")).to_contain_text("Ignored from='notadate': there is no such filter")
    german(viewer)
    viewer.goto("/audit/?since=notadate")
    expect(page.locator("#since-error")).to_contain_text("'notadate' ignoriert")
    shoot(page, output_dir, "audit-bad-date-de")
    assert viewer.errors == []


def test_a_missing_job_or_batch_says_which(signed_in, output_dir):
    operator = signed_in("operator")
    page = operator.page
    response = page.goto(operator.console.url("/jobs/98765/"))
    assert response.status == 404
    expect(page.get_by_role("main")).to_contain_text("There is no migration job 98765.")
    expect(page.get_by_role("main")).not_to_contain_text("renamed")
    page.goto(operator.console.url("/batches/98764/"))
    expect(page.get_by_role("main")).to_contain_text("There is no batch 98764.")
    german(operator)
    page.goto(operator.console.url("/jobs/98765/"))
    expect(page.get_by_role("main")).to_contain_text("Es gibt keinen Migrationsauftrag 98765.")
    shoot(page, output_dir, "not-found-job-de")


def test_a_token_name_over_the_limit_is_refused_not_cut(signed_in, output_dir):
    operator = signed_in("operator")
    page = operator.page
    operator.goto("/account/tokens/")
    name = "nightly-report-" + "x" * 100
    page.get_by_label("Name").fill(name)
    expect(page.get_by_label("Name")).to_have_value(name)  # no maxlength cutting it while typing
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("main")).to_contain_text("at most 100 characters; this one has 115: shorten it.")
    expect(page.get_by_role("main")).not_to_contain_text("Token “")
    shoot(page, output_dir, "token-name-too-long")


def test_an_address_is_no_fqdn_a_host_never_read_shows_no_figures_and_can_be_removed(signed_in, output_dir):
    admin = signed_in("admin")
    page = admin.page
    admin.goto("/")
    page.get_by_role("link", name="Add a host…").click()
    page.get_by_label("FQDN").fill("127.0.0.55")
    page.get_by_label("User name").fill("CONTOSO\\svc-hyperv")
    page.get_by_label("Password").fill("not-the-real-one-1")
    page.get_by_role("button", name="Add host").click()
    expect(page.get_by_text("127.0.0.55 is an IP address, not a host name")).to_be_visible()

    # A name, with the loopback address WinRM should use: nothing answers there, so it is never read.
    page.get_by_label("FQDN").fill("hv-gone.contoso.test")
    page.get_by_label("Address").fill("127.0.0.55")
    page.get_by_label("Password").fill("not-the-real-one-1")
    page.get_by_role("button", name="Add host").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("hv-gone")
    expect(page.locator("#not-read")).to_contain_text("has not read hv-gone yet")
    expect(page.get_by_role("main")).not_to_contain_text("CPU load")
    expect(page.get_by_role("main")).to_contain_text("connection refused")
    expect(page.get_by_role("main")).not_to_contain_text("HTTPSConnectionPool")
    expect(page.get_by_role("link", name="Live-migration settings…")).to_have_count(0)
    shoot(page, output_dir, "host-never-read")

    admin.goto("/settings/")
    expect(page.get_by_role("checkbox", name="hv-gone")).to_have_count(0)
    admin.goto("/hosts/hv-gone.contoso.test/")
    page.get_by_role("link", name="Edit connection…").click()
    page.get_by_role("button", name="Remove host").click()
    expect(page.get_by_role("main")).to_contain_text("Tick the box to confirm")
    page.get_by_label("Remove hv-gone").check()
    page.get_by_role("button", name="Remove host").click()
    expect(page.get_by_role("main")).to_contain_text("hv-gone was removed from the console; nothing changed on it.")
    expect(page.get_by_role("link", name="hv-gone", exact=True)).to_have_count(0)
    assert admin.errors == []


def test_typing_in_the_vm_filter_leaves_the_console_clean(signed_in):
    # Each keystroke used to abort the request before it (hx-sync replace): htmx logs sendAbort as an
    # error. The answers are slowed down here, as a large inventory's are, so that requests overlap.
    operator = signed_in("operator")
    page = operator.page
    operator.goto("/vms/")

    def slowly(route):
        time.sleep(0.6)
        route.continue_()

    page.route("**/vms/?*", slowly)
    page.get_by_label("Name", exact=True).press_sequentially("web-dm", delay=450)
    expect(page.locator("#vm-results")).to_contain_text("web-dmz01")
    expect(page.locator("#vm-results")).not_to_contain_text("dc01")
    page.wait_for_timeout(1500)
    page.unroute("**/vms/?*")
    assert operator.errors == []
