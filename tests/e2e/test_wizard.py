"""The Migrate wizard in Chromium, as issue 19's newcomer walked it: what each destination is rated
and flagged with, and a Summary that follows the storage path however it is entered."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import shoot
from tests.e2e.test_refusals import open_vm


def open_wizard(session, vm: str):
    open_vm(session, vm)
    session.page.get_by_role("link", name="Migrate…").click()
    expect(session.page.get_by_role("heading", name="1. Select host")).to_be_visible()
    return session.page


def host_row(page, host: str):
    return page.locator("table.ranked tbody tr", has=page.get_by_label(host, exact=True))


def test_the_host_of_the_other_guest_cluster_node_is_flagged_but_not_blocked(signed_in, output_dir):
    page = open_wizard(signed_in("operator"), "sql-fc1")

    # sql-fc2, the other node of sql-fc1's guest cluster, runs on hv-s2.
    row = host_row(page, "hv-s2")
    expect(row).to_contain_text("warning")
    expect(row).not_to_contain_text("ready")
    page.get_by_label("hv-s2", exact=True).check()
    finding = page.locator('#summary [data-rule="guest-cluster-same-host"]')
    expect(finding).to_contain_text("sql-fc2, the other node of sql-fc1's guest cluster")
    expect(finding).to_contain_text("Choose a host where no other node of the guest cluster runs")
    # Hyper-V takes the move: a warning, the Move button stays.
    expect(page.get_by_role("button", name="Move", exact=True)).to_be_visible()
    shoot(page, output_dir, "wizard-guest-cluster-partner")
