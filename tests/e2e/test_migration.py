"""An operator migrates a VM through the wizard in Chromium and watches it happen over the websocket;
a second browser context (a viewer on the Jobs page) sees the same job at the same time."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import shoot

MIGRATION_TIMEOUT_MS = 60_000
# Records every value the job's progress bar shows, and whether the page was ever reloaded (a reload
# would drop window.e2e): the websocket must carry the progress, not a refresh.
WATCH_BAR = """selector => {
  window.e2e = {values: []};
  const read = () => {
    const bar = document.querySelector(selector);
    if (!bar) return;
    const now = Number(bar.getAttribute('aria-valuenow'));
    if (window.e2e.values.at(-1) !== now) window.e2e.values.push(now);
  };
  read();
  new MutationObserver(read).observe(document.body, {subtree: true, childList: true, attributes: true});
}"""


def test_it_migrates_a_vm_through_the_wizard_with_live_progress(signed_in, output_dir):
    watcher = signed_in("viewer")
    watcher.goto("/jobs/")
    expect(watcher.page.locator(".jobs-live")).to_have_attribute("data-live", "on")
    watcher.page.evaluate("window.e2e = {jobsPage: true}")
    shoot(watcher.page, output_dir, "jobs-before")

    operator = signed_in("operator")
    page = operator.page
    operator.goto("/vms/")
    page.get_by_role("link", name="hr-app01", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("hr-app01")
    shoot(page, output_dir, "vm-detail")

    page.get_by_role("link", name="Migrate…").click()
    expect(page.get_by_role("heading", name="1. Select host")).to_be_visible()
    shoot(page, output_dir, "wizard-1-select-host")
    page.get_by_label("hv-old1", exact=True).check()
    summary = page.locator("#summary")
    expect(summary).to_contain_text("hv-old1")
    expect(summary).to_contain_text("Live")
    assert "to=hv-old1.contoso.test" in page.url  # the choice is in the address: reload or share it
    shoot(page, output_dir, "wizard-2-storage-performance-summary")

    page.get_by_role("button", name="Move", exact=True).click()
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    job_id = re.search(r"/jobs/(\d+)/$", page.url).group(1)
    page.evaluate(WATCH_BAR, "#job-status [role=progressbar]")
    bar = page.locator("#job-status [role=progressbar]")
    expect(bar).to_have_attribute("aria-valuemin", "0")
    expect(bar).to_have_attribute("aria-valuemax", "100")
    expect(bar).to_have_accessible_name(f"Progress of job {job_id}")

    # The second context's Jobs page lists the job while it runs, without a reload.
    row = watcher.page.locator(f"#jobs-running #job-{job_id}")
    expect(row).to_contain_text("hr-app01", timeout=MIGRATION_TIMEOUT_MS)
    expect(row.get_by_role("progressbar")).to_have_accessible_name(f"Progress of job {job_id}")
    # The row pushed to every watcher carries the Cancel form; a viewer's page hides it.
    expect(row.locator("form.cancel")).to_have_count(1)
    expect(row.get_by_role("button", name="Cancel")).to_be_hidden()
    expect(page.locator("#job-status .job-running")).to_be_visible(timeout=MIGRATION_TIMEOUT_MS)
    expect(page.locator("#job-status").get_by_role("button", name="Cancel")).to_be_visible()  # the operator's
    expect(bar).not_to_have_attribute("aria-valuenow", "0", timeout=MIGRATION_TIMEOUT_MS)
    shoot(page, output_dir, "job-running")
    shoot(watcher.page, output_dir, "jobs-running")

    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=MIGRATION_TIMEOUT_MS)
    expect(page.locator("#job-status .job-succeeded")).to_be_visible()
    values = page.evaluate("window.e2e.values")
    assert values[-1] == 100
    assert any(0 < v < 100 for v in values), f"no progress between 0 and 100 was shown: {values}"
    assert values == sorted(values), f"progress went backwards: {values}"
    shoot(page, output_dir, "job-succeeded")

    # Meanwhile the Jobs page moved it to Finished, still the same document.
    finished = watcher.page.locator("#jobs-finished")
    expect(finished).to_contain_text("hr-app01", timeout=10_000)
    expect(watcher.page.locator("#jobs-running")).not_to_contain_text("hr-app01")
    assert watcher.page.evaluate("window.e2e && window.e2e.jobsPage") is True
    shoot(watcher.page, output_dir, "jobs-after")

    # The VM is on the destination now: its host page lists it.
    page.get_by_role("link", name="hv-old1", exact=True).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("hv-old1")
    expect(page.get_by_role("link", name="hr-app01", exact=True)).to_be_visible()
    shoot(page, output_dir, "host-destination")
    operator.goto("/vms/?q=hr-app01")
    vm_row = page.locator("tr", has=page.get_by_role("link", name="hr-app01", exact=True))
    expect(vm_row).to_contain_text("hv-old1")
