"""An operator lets the cluster drain a node in Chromium (issue 20, deliverable 4): the evacuate page
shows both estimates, the batch page follows each role's move live over the websocket until the
node's DrainStatus ends, a viewer sees the drain but no control, and Resume brings the roles back
(Resume-ClusterNode -Failback Immediate), leaving the shared demo as it was."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import serious_violations, shoot

DRAIN_TIMEOUT_MS = 240_000


def _node(console) -> str:
    """A node of CL-OLD (the cluster no other e2e test drains or evacuates) that holds roles now."""
    out = console.manage("shell", "-c", NODE_SCRIPT)
    return out.splitlines()[-1].strip()


NODE_SCRIPT = """
from fabric.models import Host, VirtualMachine
nodes = Host.objects.filter(cluster__name="CL-OLD", maintenance=False).order_by("name")
print(max(nodes, key=lambda h: VirtualMachine.objects.filter(host=h, is_clustered=True, removed=False).count()).name)
"""


def test_the_cluster_drains_a_node_and_the_batch_page_follows_each_role_live(signed_in, console, output_dir):
    node = _node(console)
    operator = signed_in("operator")
    page = operator.page
    operator.goto(f"/hosts/{node}.contoso.test/evacuate/")
    choice = page.locator("#drain-choice")
    expect(choice).to_be_visible()
    expect(choice.locator("#estimate-drain")).to_contain_text(" s")
    expect(choice.locator("#estimate-console")).to_contain_text(" s")
    expect(choice.get_by_text("faster by the estimate")).to_have_count(1)
    shoot(page, output_dir, "drain-choice")
    assert serious_violations(page) == []

    page.get_by_role("button", name=f"Drain: put {node} in maintenance and let the cluster move its roles").click()
    page.wait_for_url(re.compile(r"/batches/\d+/$"))
    batch_path = re.search(r"/batches/\d+/$", page.url).group(0)
    expect(page.locator(".jobs-live")).to_have_attribute("data-live", "on")
    page.evaluate("window.e2e = {stayed: true}")  # gone if the page were reloaded
    status = page.locator("#drain-status")

    # The cluster's moves appear as rows while they run, without a reload.
    expect(page.locator("#batch-outcomes tr[id^=batch-job-] .job-running").first).to_be_visible(
        timeout=DRAIN_TIMEOUT_MS
    )
    expect(status).to_have_attribute("data-drain", "in_progress")
    shoot(page, output_dir, "drain-running")
    expect(status).to_have_attribute("data-drain", re.compile("^(completed|failed)$"), timeout=DRAIN_TIMEOUT_MS)
    expect(page.locator("#batch-outcomes .job-succeeded").first).to_be_visible()
    expect(page.locator("#batch-outcomes .job-running")).to_have_count(0)
    assert page.evaluate("window.e2e && window.e2e.stayed"), "the batch page was reloaded"
    shoot(page, output_dir, "drain-finished")
    assert serious_violations(page) == []

    # A viewer sees the drain and its outcome, and no control to change it.
    viewer = signed_in("viewer")
    viewer.goto(batch_path)
    expect(viewer.page.locator("#drain-status")).to_be_visible()
    expect(viewer.page.get_by_role("button", name=f"Resume {node}: the cluster moves the roles back")).to_be_hidden()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Resume {node}: the cluster moves the roles back").click()
    expect(page.locator(".messages")).to_contain_text("the cluster moves its drained roles back")
    expect(page.locator("#drain-resume")).to_have_attribute("data-resume", "done", timeout=DRAIN_TIMEOUT_MS)
    expect(page.locator("#batch-progress")).not_to_contain_text("In maintenance")
    shoot(page, output_dir, "drain-resumed")
