"""What the browser is not allowed to do: a storage move to a short-name share, and a viewer's actions."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import shoot

SHORT_NAME_TARGET = "\\\\fs01\\vmstore2\\app-s02-moved"


def open_vm(session, name: str):
    session.goto(f"/vms/?q={name}")
    session.page.get_by_role("link", name=name, exact=True).click()
    expect(session.page.get_by_role("heading", level=1)).to_have_text(name)


def csrf_token(page) -> str:
    """The token every page hands htmx (hx-headers on <body>): what a forged request would reuse."""
    return page.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken']")


def test_a_storage_move_to_a_short_name_share_shows_the_fqdn_finding_and_cannot_start(signed_in, output_dir):
    operator = signed_in("operator")
    page = operator.page
    open_vm(operator, "app-s02")
    page.get_by_role("link", name="Migrate storage…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Migrate storage")

    page.get_by_label("Destination folder on hv-s2").press_sequentially(SHORT_NAME_TARGET)
    finding = page.locator('#summary [data-rule="smb-path-not-fqdn"]')
    expect(finding).to_be_visible()
    expect(finding).to_contain_text("uses the short name 'fs01'")
    expect(finding).to_contain_text("\\\\fs01.contoso.test\\vmstore2\\app-s02-moved")
    expect(page.locator("#summary")).to_contain_text("This move is blocked")
    expect(page.get_by_role("button", name="Move storage")).to_have_count(0)
    shoot(page, output_dir, "storage-wizard-blocked")

    # Posting the form anyway (what the hidden button would send) is refused: nothing is created.
    answer = page.request.post(
        page.url.split("?")[0],
        form={"csrfmiddlewaretoken": csrf_token(page), "mode": "whole", "storage_path": SHORT_NAME_TARGET},
    )
    assert answer.status == 409
    assert "Nothing was moved" in answer.text()
    operator.goto("/jobs/?vm=app-s02")
    expect(page.locator("#jobs-finished")).to_contain_text("No finished job matches")
    expect(page.locator("#jobs-running")).not_to_contain_text("app-s02")
    expect(page.locator("#jobs-queued")).not_to_contain_text("app-s02")


def test_a_viewer_sees_no_action_controls_and_a_forged_post_is_refused(signed_in, output_dir):
    viewer = signed_in("viewer")
    page = viewer.page
    viewer.goto("/vms/")
    expect(page.get_by_role("link", name="file-s01", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Migrate", exact=True)).to_have_count(0)
    expect(page.get_by_role("checkbox", name="Select file-s01")).to_have_count(0)
    expect(page.get_by_role("button", name="Migrate selected…")).to_have_count(0)

    open_vm(viewer, "file-s01")
    expect(page.get_by_role("link", name="Migrate…")).to_have_count(0)
    expect(page.get_by_role("link", name="Migrate storage…")).to_have_count(0)
    migrate_url = viewer.console.url(f"{page.url.split(viewer.console.url(''))[1]}migrate/")

    # The wizard itself is readable (managers review moves) but offers no Move button.
    page.goto(f"{migrate_url}?to=hv-s2.contoso.test")
    expect(page.locator("#summary")).to_contain_text("Your role can review this move")
    expect(page.get_by_role("button", name="Move", exact=True)).to_have_count(0)
    shoot(page, output_dir, "wizard-viewer")

    viewer.goto("/hosts/hv-s1.contoso.test/")
    for control in ("Evacuate…", "Pause queue", "Live-migration settings…"):
        expect(page.get_by_text(control, exact=True)).to_have_count(0)
    viewer.goto("/jobs/")
    expect(page.locator("form.cancel button:visible")).to_have_count(0)

    # A forged POST with a valid token from the page: the token is good (set_language accepts it),
    # the role is not.
    token = csrf_token(page)
    accepted = page.request.post(
        viewer.console.url("/i18n/setlang/"), form={"csrfmiddlewaretoken": token, "language": "en", "next": "/"}
    )
    assert accepted.ok, f"the token itself was refused: {accepted.status}"
    forged = page.request.post(
        migrate_url, form={"csrfmiddlewaretoken": token, "to": "hv-s2.contoso.test"}, headers={"X-CSRFToken": token}
    )
    assert forged.status == 403
    assert "Your role does not allow this" in forged.text()
    assert "CSRF verification failed" not in forged.text()
    viewer.goto("/jobs/?vm=file-s01")
    expect(page.locator("#jobs-finished")).to_contain_text("No finished job matches")
    expect(page.locator("#jobs-running")).not_to_contain_text("file-s01")

    # The refusal is in the audit trail, with the viewer's name.
    viewer.goto("/audit/")
    denied = page.locator("tr", has_text="permission_denied").filter(has_text="viewer").first
    expect(denied).to_contain_text("/migrate/")
