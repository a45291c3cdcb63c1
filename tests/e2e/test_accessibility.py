"""Accessibility in Chromium: the wizard with the keyboard alone, labelled fields, and axe-core (WCAG 2 AA,
contrast included) on every main page, each saved as a screenshot for review."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import serious_violations, shoot

MAX_TABS = 80
FOCUSED = """() => {
  const el = document.activeElement;
  return {tag: el.tagName, type: el.type || '', value: el.value || '', name: el.name || '',
          text: (el.innerText || '').trim(), outline: getComputedStyle(el).outlineStyle};
}"""
# Every visible form control and the name a screen reader announces for it (label, aria-label...).
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(el => el.type !== 'hidden' && el.offsetParent !== null)
  .filter(el => !(el.labels && el.labels.length))
  .filter(el => !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby') && !el.title)
  .map(el => el.outerHTML.slice(0, 120))"""


def tab_to(page, wanted, what: str) -> dict:
    """Press Tab until the focused element satisfies wanted(focused); fail after MAX_TABS presses."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if wanted(focused):
            return focused
    raise AssertionError(f"{what} was not reached with {MAX_TABS} presses of Tab")


@pytest.fixture(scope="module")
def cli_job(console) -> int:
    """A migration queued through the CLI (a worker runs it against the emulator): its page is reviewed."""
    out = console.manage("move_vm", "erp-web02", "--to", "hv-old2", "--json")
    job = json.loads(out[out.index("{") :])
    assert job["state"] in ("queued", "admitted", "starting", "running", "succeeded"), job
    return job["id"]


def test_the_wizard_works_with_the_keyboard_alone(signed_in, output_dir):
    operator = signed_in("operator")
    page = operator.page
    operator.goto("/vms/?q=web-dmz01")
    page.get_by_role("link", name="web-dmz01", exact=True).click()
    wizard_url = page.url + "migrate/"
    page.goto(wizard_url)

    tab_to(page, lambda f: f["name"] == "to", "The first host choice")
    # Tab lands on the group's first radio without choosing it: Space chooses, arrow keys move and
    # choose as they go (each change loads the details).
    for _ in range(10):
        if page.evaluate("document.activeElement.value") == "hv-s2.contoso.test":
            break
        page.keyboard.press("ArrowDown")
    if not page.evaluate("document.activeElement.checked"):
        page.keyboard.press("Space")
    assert page.evaluate("document.activeElement.checked && document.activeElement.value") == "hv-s2.contoso.test"
    expect(page.locator("#summary")).to_contain_text("hv-s2")

    button = tab_to(page, lambda f: f["tag"] == "BUTTON" and f["text"] == "Move", "The Move button")
    assert button["outline"] != "none", "the focused Move button shows no focus ring"
    shoot(page, output_dir, "wizard-keyboard-focus-on-move")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("web-dmz01")
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuemax", "100")


def main_pages(job_id: int) -> list[tuple[str, str]]:
    return [
        ("all-hosts", "/"),
        ("host-detail", "/hosts/hv-new1.contoso.test/"),
        ("vm-list", "/vms/"),
        ("vm-detail", "vm:dc01"),
        ("wizard-step-1", "wizard:dc01"),
        ("wizard-steps-2-4", "wizard:dc01?to=hv-s1.contoso.test"),
        ("storage-wizard-finding", "storage:app-s01?mode=whole&storage_path=%5C%5Cfs01%5Cvmstore2%5Capp"),
        ("job", f"/jobs/{job_id}/"),
        ("jobs", "/jobs/"),
        ("evacuation-preview", "/hosts/hv-s3.contoso.test/evacuate/"),
        ("audit", "/audit/"),
        ("settings", "/settings/"),
    ]


def resolve(session, path: str) -> str:
    """vm:NAME, wizard:NAME and storage:NAME stand for that VM's pages (their URLs carry its GUID)."""
    kind, _, rest = path.partition(":")
    if kind not in ("vm", "wizard", "storage"):
        return path
    name, _, query = rest.partition("?")
    session.goto(f"/vms/?q={name}")
    href = session.page.get_by_role("link", name=name, exact=True).get_attribute("href")
    suffix = {"vm": "", "wizard": "migrate/", "storage": "migrate-storage/"}[kind]
    return f"{href}{suffix}" + (f"?{query}" if query else "")


def test_the_main_pages_have_no_serious_accessibility_problems(signed_in, output_dir, cli_job):
    admin = signed_in("admin")
    page = admin.page
    problems = {}
    for name, path in main_pages(cli_job):
        admin.goto(resolve(admin, path))
        if page.locator("[hx-ext=ws]").count():
            expect(page.locator("[data-live]")).to_have_attribute("data-live", "on")
        shoot(page, output_dir, name)
        found = serious_violations(page) + [f"unlabelled field: {f}" for f in page.evaluate(UNLABELLED)]
        if found:
            problems[name] = found
    assert not problems, "\n".join(f"{page}: {line}" for page, lines in problems.items() for line in lines)
    assert admin.errors == []  # no script error and nothing the Content-Security-Policy blocked


def test_the_notification_pages_have_no_serious_accessibility_problems(signed_in, output_dir):
    """The webhook list, its form (empty, refused with errors at the fields, editing) and a user's own
    choices. One webhook is added (disabled: nothing is sent); no other e2e test counts webhooks."""
    admin = signed_in("admin")
    page = admin.page
    problems = {}

    def review(name: str) -> None:
        shoot(page, output_dir, name)
        found = serious_violations(page) + [f"unlabelled field: {f}" for f in page.evaluate(UNLABELLED)]
        if found:
            problems[name] = found

    admin.goto("/manage/webhooks/add/")
    review("webhook-add")
    # The event checkboxes are one named group; a field's hint is read with it.
    expect(page.get_by_role("group", name="Events").get_by_role("checkbox")).to_have_count(6)
    expect(page.get_by_label("URL")).to_have_accessible_description(re.compile("http:// or https://"))
    page.get_by_label("Name").fill("a11y-hook")
    page.get_by_label("URL").fill("ftp://hooks.contoso.test/console")  # refused: http(s) only, no secret
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator(".error-text").first).to_be_visible()
    review("webhook-add-refused")
    page.get_by_label("URL").fill("https://hooks.contoso.test/console")
    page.get_by_label("Secret").fill("a-secret-of-at-least-16-characters")
    page.get_by_label("A migration failed").check()
    page.get_by_label("Enabled").uncheck()
    page.get_by_role("button", name="Add webhook").click()
    page.wait_for_url(re.compile(r"/manage/webhooks/$"))
    expect(page.get_by_role("heading", name=re.compile("a11y-hook"))).to_be_visible()
    review("webhooks")
    page.locator("section", has=page.get_by_role("heading", name=re.compile("a11y-hook"))).get_by_role(
        "link", name="Edit"
    ).click()
    page.wait_for_url(re.compile(r"/manage/webhooks/\d+/edit/$"))
    review("webhook-edit")
    admin.goto("/account/notifications/")
    review("account-notifications")
    assert not problems, "\n".join(f"{page}: {line}" for page, lines in problems.items() for line in lines)
    assert admin.errors == []


def test_the_sign_in_page_has_no_serious_accessibility_problems(browser, console, output_dir):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(console.url("/accounts/login/"))
        expect(page.get_by_label("User name")).to_be_editable()
        expect(page.get_by_label("Password")).to_be_editable()
        shoot(page, output_dir, "sign-in")
        assert serious_violations(page) == []
    finally:
        context.close()
