"""Migrate selected in Chromium (issue 19): an operator sends two VMs to a host without shared storage,
picks the folder one of them is copied to (the plan follows at once), starts the batch, and the job
says where its files go."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import shoot

# Standalone hosts of the demo: hv-s3's VMs are copied to hv-s4 (Live VSM).
SOURCE, DESTINATION = "hv-s3.contoso.test", "hv-s4"
FOLDER = "D:\\Hyper-V\\Virtual Hard Disks"  # one of hv-s4's storage locations; D:\Hyper-V is its default


def test_an_operator_picks_the_folder_of_one_vm_and_starts_the_batch(signed_in, output_dir):
    session = signed_in("operator")
    page = session.page
    session.goto(f"/vms/?host={SOURCE}")
    for vm in ("lab-01", "dc01"):
        page.get_by_label(f"Select {vm}", exact=True).check()
    page.get_by_role("button", name="Migrate selected…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Migrate selected VMs")
    page.get_by_label("Destination").select_option(label=DESTINATION)
    page.get_by_role("button", name="Plan again").click()
    page.wait_for_url(re.compile(rf"to={DESTINATION}\."))

    def row(vm):
        return page.locator("table.plan tbody tr", has=page.get_by_role("cell", name=vm, exact=True))

    expect(row("lab-01")).to_contain_text("files to D:\\Hyper-V")
    # The choice plans again by itself (console.js); the row then says where the files go.
    page.get_by_label("Storage folder for lab-01").select_option(FOLDER)
    page.wait_for_url(re.compile(r"path_[0-9a-f-]+=D%3A%5CHyper-V%5CVirtual"))
    expect(row("lab-01").locator(".files-to")).to_have_text(f"files to {FOLDER}")
    expect(row("dc01").locator(".files-to")).to_have_text("files to D:\\Hyper-V")
    expect(page.get_by_label("Storage folder for lab-01")).to_have_value(FOLDER)
    shoot(page, output_dir, "migrate-selected-folder")

    page.get_by_role("button", name="Start 2 moves").click()
    page.wait_for_url(re.compile(r"/batches/\d+/$"))
    page.locator("#batch-outcomes tr", has_text="lab-01").get_by_role("link", name=re.compile(r"^#\d+$")).click()
    files_to = page.locator("dt", has_text="Files to").locator("xpath=following-sibling::dd[1]")
    expect(files_to).to_have_text(FOLDER)
    shoot(page, output_dir, "migrate-selected-folder-job")
    assert session.errors == []
