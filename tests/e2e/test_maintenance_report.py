"""The pre-maintenance report in Chromium: an operator chooses what happens to a VM that cannot move
live on the Evacuate page, and the plan follows the choice at once; a viewer reads the printable
report in German, without choices, and finds its CSV. Nothing is run: the other tests keep hv-new1."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import shoot

NODE = "hv-new1"


def test_an_operator_chooses_and_the_plan_follows(signed_in, output_dir):
    operator = signed_in("operator")
    page = operator.page
    operator.goto(f"/hosts/{NODE}.contoso.test/evacuate/")
    report = page.locator("#report")
    expect(report).to_contain_text("compat-vector-restart-required")
    expect(report).to_contain_text("Restart the VM")
    choice = page.get_by_label("What happens to erp-app01")
    expect(choice).to_have_value("leave_running")  # nothing is stopped unless chosen
    expect(
        page.get_by_role("button", name=re.compile(f"^Run: move \\d+ VMs? off {NODE}, without maintenance"))
    ).to_be_visible()

    choice.select_option("shut_down_move")  # console.js plans again
    page.wait_for_url(re.compile(r"choice-[0-9a-f-]+=shut_down_move"))
    expect(page.get_by_label("What happens to erp-app01")).to_have_value("shut_down_move")
    row = page.locator("table.plan tr").filter(has_text="erp-app01")
    expect(row).to_contain_text("Quick")
    expect(page.locator("form[method=post] input[value=shut_down_move]")).to_have_count(1)
    # ckpt-new01 can go nowhere offline: the report says why, and its choices do not offer it.
    ckpt = page.locator("table.maintenance-report tr").filter(has_text="ckpt-new01")
    expect(ckpt).to_contain_text("Hyper-V refuses an offline copy of the clustered VM ckpt-new01")
    expect(ckpt.locator("option[value=shut_down_move]")).to_have_count(0)
    shoot(page, output_dir, "maintenance-report-choices")
    assert operator.errors == []


def test_a_viewer_reads_the_printable_report_in_german(signed_in, output_dir):
    viewer = signed_in("viewer")
    page = viewer.page
    viewer.goto(f"/hosts/{NODE}.contoso.test/")
    page.get_by_role("link", name="Pre-maintenance report").click()
    page.get_by_role("button", name="Deutsch").click()
    try:
        expect(page.get_by_role("heading", level=1)).to_contain_text(f"Bericht vor der Wartung: {NODE}")
        expect(page.locator("table.maintenance-report")).to_contain_text("Weiterlaufen lassen (kein Wartungsmodus)")
        expect(page.locator("table.maintenance-report select")).to_have_count(0)
        expect(page.get_by_role("link", name="Als CSV exportieren")).to_have_attribute(
            "href", re.compile(r"report\.csv$")
        )
        expect(page.get_by_role("button", name="Drucken")).to_be_visible()
        expect(page.get_by_role("link", name="Evakuieren…")).to_have_count(0)
        shoot(page, output_dir, "maintenance-report-de")
    finally:
        page.get_by_role("button", name="English").click()
    assert viewer.errors == []
