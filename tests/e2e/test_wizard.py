"""The Migrate wizard in Chromium, as issue 19's newcomer walked it: what each destination is rated
and flagged with, and a Summary that follows the storage path however it is entered."""

from __future__ import annotations

import re

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


def test_a_bad_live_vsm_path_shows_its_error_at_the_field_and_keeps_the_summary(signed_in, output_dir):
    page = open_wizard(signed_in("operator"), "dc01")
    page.get_by_label("hv-s1", exact=True).check()
    summary = page.locator("#summary")
    expect(summary).to_contain_text("Live (VSM)")

    path = page.get_by_label("Destination path")
    path.fill("")
    path.press_sequentially("relative\\path")
    error = page.locator("#storage-path-error")
    expect(error).to_contain_text("Give a local path such as D:\\Hyper-V or a share such as")
    # The Summary card stays, says why nothing can start, and offers no Move.
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("4. Summary")
    expect(summary).to_contain_text("Correct the destination path")
    expect(page.get_by_role("button", name="Move", exact=True)).to_have_count(0)
    shoot(page, output_dir, "wizard-bad-path")

    # Corrected, the error goes and the Summary takes the path.
    path.fill("D:\\Hyper-V\\dc01")
    expect(summary).to_contain_text("D:\\Hyper-V\\dc01")
    expect(error).to_be_empty()
    expect(page.get_by_role("button", name="Move", exact=True)).to_be_visible()


def test_the_summary_follows_a_path_entered_without_typing(signed_in):
    page = open_wizard(signed_in("operator"), "dc02")
    page.get_by_label("hv-s1", exact=True).check()
    summary = page.locator("#summary")
    expect(summary).to_contain_text("Live (VSM)")

    # A paste with the mouse or a pick from the datalist sends "input", never a key.
    page.get_by_label("Destination path").fill("E:\\Pasted\\dc02")
    expect(summary).to_contain_text("E:\\Pasted\\dc02")
    assert "storage_path=E%3A%5CPasted%5Cdc02" in page.url  # what a reload shows and Move sends


def test_htmx_requests_of_the_wizards_never_carry_the_csrf_token_in_the_url(signed_in):
    session = signed_in("operator")
    page = session.page
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))

    open_wizard(session, "monitor01")
    page.get_by_label("hv-s1", exact=True).check()
    page.get_by_label("Destination path").press("End")
    page.get_by_label("Destination path").press_sequentially("\\monitor01")
    expect(page.locator("#summary")).to_contain_text("vms\\monitor01")
    assert "to=hv-s1.contoso.test" in page.url and "csrfmiddlewaretoken" not in page.url

    open_vm(session, "app-s01")
    page.get_by_role("link", name="Migrate storage…").click()
    page.get_by_label("Destination folder on hv-s1").press_sequentially("E:\\VMs\\app-s01")
    expect(page.locator("#summary")).to_contain_text("E:\\VMs\\app-s01")

    wizard_gets = [u for u in urls if "/migrate" in u and "?" in u]
    assert len(wizard_gets) >= 3, urls
    assert not [u for u in urls if "csrfmiddlewaretoken" in u], wizard_gets


def test_an_ha_vm_is_offered_the_nodes_of_its_cluster_before_standalone_hosts(signed_in, output_dir):
    page = open_wizard(signed_in("operator"), "mon-old01")  # HA in CL-OLD, on hv-old2

    rows = page.locator("table.ranked tbody tr:not(.blocked)")
    expect(rows.first).to_contain_text("hv-old1")
    expect(rows.first).to_contain_text("CL-OLD")
    stars = [float(label.split()[0]) for label in rows.locator("td.stars").evaluate_all("c => c.map(e => e.ariaLabel)")]
    clusters = rows.locator("td:nth-child(4)").all_inner_texts()
    standalone = [s for s, cluster in zip(stars, clusters, strict=True) if cluster == "Standalone"]
    assert standalone and max(standalone) <= 3.0 < stars[0], list(zip(clusters, stars, strict=True))
    expect(rows.filter(has_text="Standalone").first.locator("td.stars")).to_have_attribute(
        "title", re.compile("it leaves its cluster: at most 3 stars")
    )
    shoot(page, output_dir, "wizard-ha-vm-ranking")
