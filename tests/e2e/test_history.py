"""What past moves teach, in Chromium (issue 20): a viewer goes from the Jobs page to the migration
history, filters it by host, sees the pair's chart with the planner's estimate beside the moves and
the CSV link carrying the filter; a date that is none is answered at its field."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from tests.e2e.conftest import shoot

VM = "web-new02"  # 4 GB on hv-new1; no other e2e test moves it


def moved(console, to: str) -> dict:
    out = console.manage("move_vm", VM, "--to", to, "--wait", "--json")
    job = json.loads(out[out.index("{") :])
    assert job["state"] == "succeeded", job
    return job


def test_a_viewer_reads_the_history_of_a_pair_of_hosts(signed_in, console, output_dir):
    there, back = moved(console, "hv-new3"), moved(console, "hv-new1")
    viewer = signed_in("viewer")
    page = viewer.page
    viewer.goto("/jobs/")
    page.get_by_role("link", name="Migration history").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Migration history")

    page.locator("select[name=source]").select_option(label="hv-new1")
    page.get_by_role("button", name="Filter").click()

    expect(page).to_have_url(re.compile(r"source=hv-new1\.contoso\.test"))
    table = page.locator("table.history")
    expect(table.locator(f"#job-{there['id']}")).to_contain_text(VM)
    expect(table.locator(f"#job-{there['id']}")).to_contain_text("4.0 GB")
    expect(table.locator(f"#job-{back['id']}")).to_have_count(0)  # it left hv-new3
    chart = page.locator("figure[data-pair='hv-new1-hv-new3']")
    expect(chart).to_be_visible()
    expect(chart.locator("circle.move")).to_have_count(1)
    expect(chart.locator("polyline.estimate")).to_have_count(1)
    expect(chart).to_contain_text("Estimate from the inventory's link speed")
    href = page.get_by_role("link", name="Export CSV").get_attribute("href")
    assert href.endswith("/jobs/history.csv?source=hv-new1.contoso.test"), href
    shoot(page, output_dir, "history-by-host")

    viewer.goto("/jobs/history/?since=2026-02-30")
    since = page.locator("input[name=since]")
    expect(since).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#since-error")).to_have_text("Ignored '2026-02-30': give a date as 2026-11-25.")
    expect(page.get_by_role("link", name="Export CSV")).to_have_count(0)
    shoot(page, output_dir, "history-bad-date")
    assert viewer.errors == []
