"""The stall policy in Chromium, against `serve` (the emulator behind the pypsrp driver): an
operator gives hv-s1 a 3 s stall limit, its migration network stops, and the job page shows the
move timed out with the figures, the chart's mark, and the VM still on its source."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import shoot

HOST = "hv-s1.contoso.test"
# The other e2e tests move VMs about: the smallest running VM on hv-s1 when this test starts that
# no rule keeps where it is (an ISO, a checkpoint... would block every destination).
ON_HOST = (
    "from fabric.models import VirtualMachine\n"
    "vms = VirtualMachine.objects.filter(host__fqdn={host!r}, state='running', removed=False, migrating=False,\n"
    "    dvd_isos=[], checkpoints=0, passthrough_disks=[], fc_sans=[], compat_vector_stale=False)\n"
    "print(vms.exclude(name__contains=\"'\").order_by('memory_assigned_bytes', 'name')[0].name)\n"
)
SET_LINK = (
    "from fabric.driver import sim_store\n"
    "with sim_store().session() as fabric:\n"
    "    print(fabric.hosts[{host!r}].nic_gbps)\n"
    "    fabric.set_link({host!r}, {gbps})\n"
)


def test_a_stalled_move_times_out_and_the_job_page_says_why(signed_in, console, output_dir):
    operator = signed_in("operator")
    page = operator.page
    operator.goto(f"/hosts/{HOST}/timeouts/")
    page.get_by_label("Without progress for (s)").fill("3")
    page.get_by_label("Longer than, per GiB copied (s)").fill("0")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("main")).to_contain_text("this host")
    vm = console.manage("shell", "-c", ON_HOST.format(host=HOST)).strip().splitlines()[-1]
    was = float(console.manage("shell", "-c", SET_LINK.format(host=HOST, gbps=0.0)).strip().splitlines()[-1])
    try:
        operator.goto(f"/vms/?q={vm}")
        page.get_by_role("link", name=vm, exact=True).click()
        page.get_by_role("link", name="Migrate…").click()
        page.locator("table.ranked tr:not(.blocked) input.host-choice").first.check()  # the best host allowed
        page.get_by_role("button", name="Move", exact=True).click()
        page.wait_for_url(re.compile(r"/jobs/\d+/$"))

        status = page.locator("#job-status")
        expect(status.locator(".job-failed")).to_be_visible(timeout=60_000)
        expect(status).to_contain_text("no progress")
        expect(page.locator(".policy-note")).to_be_visible()
        shoot(page, output_dir, "job-timed-out")
    finally:
        console.manage("shell", "-c", SET_LINK.format(host=HOST, gbps=was))
        operator.goto(f"/hosts/{HOST}/timeouts/")
        page.get_by_label("Without progress for (s)").fill("")
        page.get_by_label("Longer than, per GiB copied (s)").fill("")
        page.get_by_role("button", name="Save").click()
    operator.goto(f"/vms/?q={vm}")
    expect(page.locator("tr", has=page.get_by_role("link", name=vm, exact=True))).to_contain_text("hv-s1")
    assert operator.errors == []
