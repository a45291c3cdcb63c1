"""The Clusters and Shares pages in Chromium, as a viewer and an operator, in English and German:
from the top bar to a cluster, its volumes and shares, and a share registered by its short name."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shoot
from tests.e2e.test_admin_defects import german

WORDS = {
    "en": {"clusters": "Clusters", "shares": "Shares", "volumes": "Cluster Shared Volumes", "short": "short name"},
    "de": {"clusters": "Cluster", "shares": "Freigaben", "volumes": "Freigegebene Clustervolumes", "short": "Kurzname"},
}


@pytest.mark.parametrize(("role", "language"), [("viewer", "en"), ("operator", "de")])
def test_clusters_and_shares_from_the_top_bar(signed_in, output_dir, role, language):
    session = signed_in(role)
    page = session.page
    if language == "de":
        german(session)
    words = WORDS[language]
    session.goto("/")
    page.get_by_role("navigation", name="Main" if language == "en" else "Hauptnavigation").get_by_role(
        "link", name=words["clusters"], exact=True
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(words["clusters"])
    expect(page.get_by_role("row", name="CL-NEW")).to_contain_text("18")
    shoot(page, output_dir, f"clusters-{language}")

    page.get_by_role("link", name="CL-NEW", exact=True).click()
    expect(page.get_by_role("heading", level=2, name=words["volumes"])).to_be_visible()
    expect(page.locator("#volumes")).to_contain_text("C:\\ClusterStorage\\Volume1")
    expect(page.get_by_role("link", name="hv-new1", exact=True)).to_be_visible()
    shoot(page, output_dir, f"cluster-CL-NEW-{language}")

    session.goto("/shares/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(words["shares"] if language == "de" else "SMB 3.0")
    short = page.get_by_role("row", name="\\\\fs01\\vmstore2")
    expect(short).to_contain_text(words["short"])
    short.get_by_role("link").click()
    expect(page.locator("#short-name")).to_contain_text("fs01.contoso.test")
    expect(page.get_by_role("main")).to_contain_text("app-s02")
    shoot(page, output_dir, f"share-short-name-{language}")
    assert session.errors == []


@pytest.mark.parametrize(("role", "language"), [("viewer", "de"), ("operator", "en")])
def test_slash_searches_from_any_page(signed_in, output_dir, role, language):
    session = signed_in(role)
    page = session.page
    if language == "de":
        german(session)
    session.goto("/jobs/")
    page.keyboard.press("/")
    search = page.get_by_role("search").get_by_role("searchbox")
    expect(search).to_be_focused()
    search.fill("hv-new")
    search.press("Enter")
    expect(page.get_by_role("main")).to_contain_text("hv-new3.contoso.test")
    expect(page.get_by_role("main")).to_contain_text("3 Treffer" if language == "de" else "3 matches")
    shoot(page, output_dir, f"search-{language}")
    page.keyboard.press("Escape")
    page.locator("main").click()
    page.keyboard.press("/")
    expect(search).to_be_focused()
    search.fill("dc01")
    search.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("dc01")
    assert session.errors == []


VM_WORDS = {
    "en": {
        "cpus": "Virtual processors",
        "fixed": "Fixed size",
        "dynamic": "Dynamically expanding",
        "history": "Migration history",
    },
    "de": {
        "cpus": "Virtuelle Prozessoren",
        "fixed": "Feste Größe",
        "dynamic": "Dynamisch erweiterbar",
        "history": "Migrationsverlauf",
    },
}


@pytest.mark.parametrize(("role", "language"), [("viewer", "en"), ("operator", "de")])
def test_the_vm_page_shows_processors_disk_types_and_sizes_and_its_history(signed_in, output_dir, role, language):
    session = signed_in(role)
    page = session.page
    if language == "de":
        german(session)
    words = VM_WORDS[language]
    session.goto("/vms/?q=sql-prod01")
    page.get_by_role("link", name="sql-prod01", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("sql-prod01")
    main = page.get_by_role("main")
    expect(main).to_contain_text(f"{words['cpus']}16")  # dt and dd side by side in the text
    expect(page.get_by_role("row", name="data.vhdx")).to_contain_text(words["fixed"])
    expect(page.get_by_role("row", name="sql-prod01.vhdx")).to_contain_text(words["dynamic"])
    expect(page.get_by_role("row", name="sql-prod01.vhdx")).to_contain_text("127")
    expect(page.get_by_role("heading", level=2, name=words["history"])).to_be_visible()
    shoot(page, output_dir, f"vm-sql-prod01-{language}")
    assert session.errors == []


READY_WORDS = {
    "en": {"way": "2 VMs in the way", "cannot": "Cannot be emptied now", "not_n1": "Not N+1"},
    "de": {"way": "2 VMs im Weg", "cannot": "Kann jetzt nicht geleert werden", "not_n1": "Nicht N+1"},
}


@pytest.mark.parametrize(("role", "language"), [("viewer", "en"), ("operator", "de")])
def test_readiness_shows_on_the_hosts_tree_host_and_cluster_pages(signed_in, output_dir, role, language):
    session = signed_in(role)
    page = session.page
    if language == "de":
        german(session)
    words = READY_WORDS[language]
    session.goto("/")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="hv-new1", exact=True))
    # The workers assess the hosts within a supervisor tick or two of the demo's sync: the tree is
    # no live page, so it is read again until they have.
    for _ in range(40):
        if row.get_by_text(words["way"]).count():
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(row.get_by_role("link", name=words["way"])).to_be_visible()
    expect(page.get_by_role("link", name=words["not_n1"])).to_be_visible()
    shoot(page, output_dir, f"readiness-hosts-{language}")
    row.get_by_role("link", name=words["way"]).click()
    readiness = page.locator("#readiness")
    expect(readiness).to_contain_text(words["cannot"])
    expect(readiness).to_contain_text("erp-app01")
    shoot(page, output_dir, f"readiness-host-{language}")
    session.goto("/clusters/CL-NEW/")
    expect(page.locator("#readiness")).to_contain_text("ckpt-new01")
    shoot(page, output_dir, f"readiness-cluster-{language}")
    assert session.errors == []
