"""The job pages as a newcomer read them in Chromium (issue 19): a storage move shows its own figures
and steps, a cancelled move says where the VM is and drops the Cancel answer, and a live move's pass
count reads the same in the summary, the status and the table."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from tests.e2e.conftest import shoot

TIMEOUT_MS = 90_000


def queue(console, *argv: str) -> int:
    out = console.manage(*argv, "--json")
    job = json.loads(out[out.index("{") :])
    assert job["state"] in ("queued", "admitted", "running"), job
    return job["id"]


def test_a_storage_move_shows_the_files_copied_and_its_own_steps(signed_in, console, output_dir):
    # Signed in first: the move takes seconds, and its running texts must still be there to read.
    viewer = signed_in("viewer")
    job_id = queue(console, "move_storage", "backup01", "--to-path", "E:\\Fast")  # on hv-s3
    page = viewer.page
    viewer.goto(f"/jobs/{job_id}/")
    status, steps = page.locator("#job-status"), page.locator("#job-steps")

    expect(status).to_contain_text("Copied")
    expect(status).to_contain_text("to move; the host switches")
    expect(steps).to_contain_text("Move the files (Move-VMStorage)")
    expect(status.locator(".job-succeeded")).to_be_visible(timeout=TIMEOUT_MS)
    expect(status).to_contain_text(re.compile(r"Copied\s*about (\S+)\s*GB of \1\s*GB"))
    expect(status).to_contain_text(re.compile(r"[1-9]\d* MB/s on average"))
    expect(status).to_contain_text(re.compile(r"(\d+) of \1 moved"))
    for live_only in ("Sent", "Dirty rate", "Pass", "Blackout"):
        expect(status.locator("dt", has_text=re.compile(f"^{live_only}$"))).to_have_count(0)
    expect(steps).not_to_contain_text("Compare-VM")
    log = page.locator("table.events")
    expect(log).to_contain_text("Done: Move the files (Move-VMStorage)")
    expect(log).not_to_contain_text("Compare-VM")
    expect(log).not_to_contain_text("pass 0")
    move = page.locator("section.card", has=page.get_by_role("heading", name="Move", exact=True))
    expect(move.locator("dt", has_text=re.compile("^(From|To)$"))).to_have_count(0)
    expect(move).to_contain_text("hv-s3")
    shoot(page, output_dir, "job-storage-succeeded")

    viewer.goto("/jobs/?vm=backup01")
    expect(page.locator(f"#jobs-finished #job-{job_id}")).to_contain_text("hv-s3")
    expect(page.locator(f"#jobs-finished #job-{job_id}")).not_to_contain_text("→")


def test_a_cancelled_move_says_the_vm_stayed_on_its_source(signed_in, console, output_dir):
    out = console.manage("preflight", "erp-db01", "--to", "hv-old2", "--json")
    assert json.loads(out[out.index("{") :])["allowed"], out
    job_id = queue(console, "move_vm", "erp-db01", "--to", "hv-old2")
    operator = signed_in("operator")
    page = operator.page
    operator.goto(f"/jobs/{job_id}/")
    status, notice = page.locator("#job-status"), page.locator("#job-notice")
    expect(status.locator(".job-running")).to_be_visible(timeout=TIMEOUT_MS)

    page.once("dialog", lambda dialog: dialog.accept())
    status.get_by_role("button", name="Cancel").click()
    expect(notice).to_contain_text(f"Cancelling job {job_id}")
    expect(status.locator(".job-cancelled")).to_be_visible(timeout=TIMEOUT_MS)

    expect(status).to_contain_text("Cancelled: erp-db01 stayed on its source, hv-old1.")
    expect(notice).to_be_empty()  # the Cancel click's answer is over
    expect(status).not_to_contain_text("at the end of the move")
    expect(status).to_contain_text("none: the VM did not move")
    shoot(page, output_dir, "job-cancelled")


def test_a_live_moves_pass_count_agrees_everywhere(signed_in, console, output_dir):
    # sql-prod01 (64 GB, dirtying 250 MB/s) takes ten passes, several shorter than the one-second
    # sampling at this time scale: the walkthrough saw "Converged in 6 passes" beside "Pass 10".
    job_id = queue(console, "move_vm", "sql-prod01", "--to", "hv-new3")
    viewer = signed_in("viewer")
    page = viewer.page
    viewer.goto(f"/jobs/{job_id}/")
    status = page.locator("#job-status")
    expect(status.locator(".job-succeeded")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#job-chart .chart-summary")).to_contain_text("Converged")

    shown = status.locator("dt:text-is('Pass') + dd").inner_text()
    summary = page.locator("#job-chart .chart-summary").inner_text()
    rows = page.locator("#job-chart table.passes tbody tr td:first-child").all_inner_texts()
    assert re.search(rf"\b{shown} passes\b", summary), (shown, summary)
    assert rows == [str(n) for n in range(1, int(shown) + 1)], (shown, rows)
    shoot(page, output_dir, "job-pass-count")
