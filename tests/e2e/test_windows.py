"""Maintenance windows in Chromium: an operator in Tokyo schedules an evacuation from its preview,
sees it on the list in Tokyo time, changes and cancels it; a viewer (German) sees the list only."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import shoot


def test_an_operator_schedules_changes_and_cancels_a_window_in_their_time_zone(signed_in, output_dir):
    operator = signed_in("operator", timezone_id="Asia/Tokyo")
    page = operator.page
    operator.goto("/hosts/hv-s4.contoso.test/evacuate/")
    operator.goto("/hosts/hv-s4.contoso.test/evacuate/")  # the script has set the zone's cookie by now
    page.get_by_role("link", name="Schedule it for a maintenance window…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Schedule a maintenance window")
    expect(page.locator("#window-form")).to_contain_text("Asia/Tokyo")
    page.get_by_label("Start at").fill("2031-05-04T23:30")
    page.get_by_label("Deadline").fill("2031-05-04T22:00")  # before the start: refused at the field
    page.get_by_role("button", name="Schedule").click()
    expect(page.locator("#window-form")).to_contain_text("The deadline must come after the start.")
    page.get_by_label("Deadline").fill("2031-05-05T03:00")
    page.get_by_role("button", name="Schedule").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Maintenance windows")
    coming = page.locator("#coming")
    expect(coming).to_contain_text("Evacuate hv-s4")
    expect(coming).to_contain_text("23:30")  # as entered, in Tokyo time
    expect(page.get_by_role("main")).to_contain_text("Times in Asia/Tokyo")
    shoot(page, output_dir, "maintenance-windows")

    coming.get_by_role("link", name="Change…").click()
    page.get_by_label("Start at").fill("2031-05-04T23:45")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#coming")).to_contain_text("23:45")
    page.locator("#coming").get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("main")).to_contain_text("Cancelled: Evacuate hv-s4. Nothing was started.")
    expect(page.locator("#past")).to_contain_text("Cancelled")
    assert operator.errors == []


def test_a_viewer_sees_the_windows_in_german_without_controls(signed_in, output_dir):
    viewer = signed_in("viewer")
    page = viewer.page
    viewer.goto("/maintenance/")
    # The top bar's switch: it also saves the viewer's choice, which wins over a cookie (console.language).
    page.get_by_role("button", name="Deutsch").click()
    try:
        expect(page.get_by_role("heading", level=1)).to_have_text("Wartungsfenster")
        expect(page.get_by_role("link", name="Ändern…")).to_have_count(0)
        shoot(page, output_dir, "maintenance-windows-de")
    finally:
        page.get_by_role("button", name="English").click()  # the other tests' viewer reads English
    expect(page.get_by_role("heading", level=1)).to_have_text("Maintenance windows")
    assert viewer.errors == []
