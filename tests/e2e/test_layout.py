"""Layout in Chromium: readable from a 1280 px screen down to a 768 px tablet, table headers that stay."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shoot
from tests.e2e.test_accessibility import resolve
from tests.e2e.test_admin_defects import german

PAGES = [
    ("all-hosts", "/"),
    ("host-detail", "/hosts/hv-new1.contoso.test/"),
    ("vm-list", "/vms/"),
    ("vm-detail", "vm:sql-prod01"),
    ("wizard", "wizard:sql-prod01?to=hv-s1.contoso.test"),
    ("storage-wizard", "storage:file-s01"),
    ("jobs", "/jobs/"),
    ("evacuation-preview", "/hosts/hv-old1.contoso.test/evacuate/"),
    ("audit", "/audit/"),
    ("settings", "/settings/"),
]
# Elements reaching past the right edge of the window: what a horizontal scrollbar would be for.
OVERFLOWING = """() => {
  const limit = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')].filter(el => {
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.right > limit + 1 && getComputedStyle(el).position !== 'fixed';
  });
  // Report the outermost ones only.
  return wide.filter(el => !wide.includes(el.parentElement))
             .map(el => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${[...el.classList].join('.')}`
                        + ` right=${Math.round(el.getBoundingClientRect().right)}`);
}"""


@pytest.mark.parametrize(("width", "language"), [(1280, "en"), (1280, "de"), (768, "en")])
def test_the_main_pages_fit_the_width_without_horizontal_scrolling(signed_in, output_dir, width, language):
    admin = signed_in("admin", viewport=(width, 1000))
    page = admin.page
    if language == "de":  # German's longer words must fit too
        german(admin)
    overflow = {}
    for name, path in PAGES:
        admin.goto(resolve(admin, path))
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > width:
            overflow[name] = f"scrollWidth {scroll_width}: " + ", ".join(page.evaluate(OVERFLOWING))
        if width < 1280:
            shoot(page, output_dir, f"{width}px-{name}")
    assert not overflow, "\n".join(f"{width} px {language} {name}: {what}" for name, what in overflow.items())


def test_table_headers_stay_in_view_while_the_page_scrolls(signed_in):
    operator = signed_in("operator", viewport=(1280, 600))
    page = operator.page
    operator.goto("/vms/")
    header = page.locator("table.grid thead th").first
    assert header.evaluate("th => getComputedStyle(th).position") == "sticky"
    top_before = header.evaluate("th => th.getBoundingClientRect().top")
    last = page.locator("table.grid tbody tr").last
    last.scroll_into_view_if_needed()
    page.wait_for_function("window.scrollY >= 600")
    # The last rows are on screen and the header row is still at the top of the window.
    expect(last).to_be_in_viewport()
    top_after = header.evaluate("th => th.getBoundingClientRect().top")
    assert top_before > 100
    assert 0 <= top_after < 5, f"header scrolled away: top={top_after}"
    expect(header).to_be_in_viewport()
    positions = page.eval_on_selector_all(
        "table.grid thead th", "ths => [...new Set(ths.map(th => getComputedStyle(th).position))]"
    )
    assert positions == ["sticky"], positions
