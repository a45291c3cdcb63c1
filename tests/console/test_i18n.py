"""German and English: every main page translated, the language switch remembered, German dates and numbers.

The walk renders each page twice, in English and in German, and reports any visible text (text nodes,
titles, labels, placeholders) that is the same in both and still holds an English word. Names from
the inventory (hosts, VMs, clusters, paths, operating systems), the audit's action codes, user names,
numbers and units, and a short list of terms German operators use as they are (Hyper-V, Live, SMB,
cmdlet names) are allowed.
"""

import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from audit.log import record
from audit.models import AuditEvent
from fabric.models import Host, SmbShare, VirtualMachine
from migrations_ui.jobs.operations import create_job
from migrations_ui.live.batch_page import plan_of
from migrations_ui.live.timeline import _legend
from migrations_ui.models import Batch, MigrationJob

pytestmark = pytest.mark.django_db

# Terms a German Hyper-V/VMM console shows as they are: product and protocol names, cmdlets and
# cluster properties, units, and words German shares with English.
SAME_IN_GERMAN = set(
    """
    hyper v vmm vsm smb tcp ip winrm https http kerberos credssp cifs ntlm negotiate basic fqdn vhd vhdx
    csv json api guid utc cpu numa dns microsoft windows server datacenter standard powershell bearer
    authorization virtual system migration service maximumparallelmigrations compare vm vms update
    vmversion enable vmmigration add vmmigrationnetwork set vmprocessor compatibilityformigrationenabled
    move get vmhost stop and copy dirty com
    s ms min h mb gb gib tb kb bytes gbit mbps
    name status host hosts cluster live audit token worker limit details english deutsch id hash start
    offline online export import admin operator administrator viewer pass ha port transport version position
    optional webhook webhooks url
    """.split()  # noqa: SIM905 - one string keeps a hundred short words readable
)
WORD = re.compile(r"[A-Za-zÄÖÜäöüß]+")
ATTRIBUTES = ("title", "aria-label", "placeholder", "alt")
SKIPPED = ("script", "style", "template", "code", "pre")  # code: paths, cmdlets, audit actions and details


class _Texts(HTMLParser):
    """Visible text of a page: text nodes and the attributes a user reads or hears."""

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in SKIPPED:
            self._skip += 1
        for name, value in attrs:
            if value and (name in ATTRIBUTES or (tag == "input" and name == "value" and ("type", "submit") in attrs)):
                self._add(value)

    def handle_endtag(self, tag):
        if tag in SKIPPED and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self._add(data)

    def _add(self, text):
        text = " ".join(text.split())
        if text:
            self.texts.append(text)


def visible_texts(html: str) -> list[str]:
    parser = _Texts()
    parser.feed(html)
    return parser.texts


def data_words() -> set[str]:
    """Every word of the inventory's and the audit trail's own values (names, paths, versions, codes)."""
    from django.apps import apps
    from django.db import models

    words = set()
    for app in ("fabric", "migrations_ui", "audit", "auth"):
        for model in apps.get_app_config(app).get_models():
            # JSON only for the inventory (switch names, networks): jobs' and batches' JSON holds texts
            kinds = models.CharField | models.TextField | (models.JSONField if app == "fabric" else models.CharField)
            fields = [f.name for f in model._meta.fields if isinstance(f, kinds)]
            fields = [f for f in fields if not model._meta.get_field(f).choices]  # choices are translated
            for row in model.objects.values_list(*fields) if fields else ():
                for value in row:
                    words.update(w.lower() for w in WORD.findall(str(value or "")))
    return words


def untranslated(english_html: str, german_html: str, allowed: set[str]) -> list[str]:
    english = set(visible_texts(english_html))
    return sorted({text for text in visible_texts(german_html) if text in english and _english_words(text, allowed)})


def _english_words(text: str, allowed: set[str]) -> list[str]:
    words = [w.lower() for w in WORD.findall(text) if len(w) > 1]
    if text.endswith("…") and words and any(a.startswith(words[-1]) for a in allowed):
        words.pop()  # a name cut short to fit (the timeline's lanes)
    return [w for w in words if w not in allowed]


def in_language(client, language: str):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


@pytest.fixture
def fabric_pages(demo_fabric, admin_user, operator_user):
    """One of each main page's objects: a host in a cluster, a running VM, a job (with its findings
    through the real create_job), an evacuation batch and its plan, an audit event."""
    node = Host.objects.select_related("cluster").filter(cluster__isnull=False).order_by("name").first()
    vm = VirtualMachine.objects.filter(host=node, state="running", removed=False).order_by("name").first()
    destination = Host.objects.filter(cluster=node.cluster).exclude(pk=node.pk).order_by("name").first()
    other = Host.objects.exclude(cluster=node.cluster).order_by("name").first()
    job = create_job(vm, destination, user=operator_user)
    return {"node": node, "vm": vm, "destination": destination, "other": other, "job": job}


def main_pages(objects, admin_client) -> list[str]:
    node, vm, destination, other, job = (objects[k] for k in ("node", "vm", "destination", "other", "job"))
    evacuate = reverse("migrations_ui:evacuate", args=[destination.fqdn])
    admin_client.post(evacuate)  # a batch, and its host in maintenance
    batch = Batch.objects.get()
    storage_vm = VirtualMachine.objects.filter(removed=False).exclude(pk=vm.pk).order_by("name").first()
    return [
        reverse("fabric:hosts"),
        reverse("fabric:hosts") + "?flagged=1",
        reverse("fabric:clusters"),
        reverse("fabric:cluster", args=[node.cluster.name]),
        reverse("fabric:shares"),
        reverse("search"),
        reverse("search") + "?q=hv-new",
        reverse("search") + "?q=zzz-none",
        *[share.get_absolute_url() for share in SmbShare.objects.order_by("pk")],
        reverse("fabric:host", args=[node.fqdn]),
        reverse("fabric:host", args=[destination.fqdn]),  # in maintenance, with Move back
        reverse("fabric_admin:host_add"),
        reverse("fabric_admin:host_edit", args=[node.fqdn]),
        reverse("fabric:vms"),
        reverse("fabric:vm", args=[vm.guid]),
        reverse("migrations_ui:migrate_selected") + f"?vm={vm.guid}&vm={storage_vm.guid}",
        reverse("migrations_ui:migrate_vm", args=[storage_vm.guid]),
        reverse("migrations_ui:migrate_vm", args=[storage_vm.guid]) + f"?to={other.fqdn}",
        reverse("migrations_ui:migrate_storage", args=[storage_vm.guid]),
        reverse("migrations_ui:migrate_storage", args=[storage_vm.guid]) + "?mode=whole&storage_path=%5C%5Cfs01%5Cvms",
        reverse("migrations_ui:jobs"),  # with the queue (its controls post to host_queue)
        reverse("migrations_ui:job", args=[job.pk]),
        reverse("migrations_ui:history") + "?state=all",
        reverse("migrations_ui:history") + "?since=2026-02-30&kind=teleport",  # the messages at the fields
        reverse("migrations_ui:evacuate", args=[node.fqdn]),
        reverse("migrations_ui:batch", args=[batch.pk]),
        reverse("fabric:settings"),
        reverse("fabric:host_settings", args=[node.fqdn]),
        reverse("fabric:host_timeouts", args=[node.fqdn]),
        reverse("fabric:cluster_timeouts", args=[node.cluster.name]),
        reverse("audit:list"),
        reverse("audit:detail", args=[AuditEvent.objects.order_by("-pk").values_list("pk", flat=True)[0]]),
        "/account/tokens/",
        reverse("account_notifications"),
        reverse("notifications:webhooks"),
        reverse("notifications:webhook_add"),
    ]


def test_it_shows_every_main_page_in_german_without_an_untranslated_string(fabric_pages, admin_client, client):
    pages = main_pages(fabric_pages, admin_client)
    allowed = SAME_IN_GERMAN | data_words()
    problems = {}
    for url in pages:
        english = in_language(admin_client, "en").get(url)
        german = in_language(admin_client, "de").get(url)
        assert english.status_code == german.status_code == 200, url
        assert '<html lang="de">' in german.content.decode()
        if found := untranslated(english.content.decode(), german.content.decode(), allowed):
            problems[url] = found
    admin_client.logout()
    login = reverse("login")
    english, german = in_language(client, "en").get(login), in_language(client, "de").get(login)
    if found := untranslated(english.content.decode(), german.content.decode(), allowed):
        problems[login] = found
    assert not problems, "untranslated on German pages:\n" + "\n".join(f"{u}: {t}" for u, t in problems.items())


def test_it_finds_an_untranslated_string():
    # The check itself: a German page that kept one English sentence is caught; names and units are not.
    english = "<p>All Hosts</p><p>hv-01</p><p>Storage is full</p><p>12 GiB</p>"
    german = "<p>Alle Hosts</p><p>hv-01</p><p>Storage is full</p><p>12 GiB</p>"
    assert untranslated(english, german, SAME_IN_GERMAN | {"hv"}) == ["Storage is full"]


def test_it_remembers_the_chosen_language_across_requests(admin_client):
    response = admin_client.post(reverse("set_language"), {"language": "de", "next": reverse("fabric:vms")})
    assert response.status_code == 302 and response["Location"] == reverse("fabric:vms")
    cookie = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "de" and int(cookie["max-age"]) >= 30 * 24 * 3600
    for url in (reverse("fabric:hosts"), reverse("migrations_ui:jobs")):
        page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert '<html lang="de">' in page and "Alle Hosts" in page and "Aufträge" in page
    admin_client.post(reverse("set_language"), {"language": "en", "next": "/"})
    page = admin_client.get(reverse("fabric:hosts"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert '<html lang="en">' in page and "All Hosts" in page


def test_it_offers_the_switch_without_script_and_before_signing_in(client):
    page = client.get(reverse("login")).content.decode()
    assert f'action="{reverse("set_language")}"' in page and 'name="language" value="de"' in page
    assert 'name="csrfmiddlewaretoken"' in page  # a plain POST form
    response = client.post(reverse("set_language"), {"language": "de", "next": reverse("login")})
    assert response.status_code == 302
    assert "Benutzername" in client.get(reverse("login")).content.decode()


def test_it_refuses_an_unknown_language_and_a_foreign_next(admin_client):
    response = admin_client.post(reverse("set_language"), {"language": "xx", "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


def test_it_writes_dates_and_numbers_the_german_way(fabric_pages, admin_client):
    record("test.i18n", target_type="host", target_name="hv-format")
    event = AuditEvent.objects.get(action="test.i18n")
    local = timezone.localtime(event.time)
    german = in_language(admin_client, "de").get(reverse("audit:list")).content.decode()
    assert local.strftime("%d.%m.%Y %H:%M:%S") in german
    english = in_language(admin_client, "en").get(reverse("audit:list")).content.decode()
    assert local.strftime("%Y-%m-%d %H:%M:%S") in english
    # A finding's figures: the memory a VM needs, with a decimal comma in German.
    vm = fabric_pages["vm"]
    VirtualMachine.objects.filter(pk=vm.pk).update(memory_assigned_bytes=1234 * 2**30 + 2**29)
    url = reverse("migrations_ui:migrate_vm", args=[vm.guid]) + f"?to={fabric_pages['other'].fqdn}"
    german = in_language(admin_client, "de").get(url).content.decode()
    english = in_language(admin_client, "en").get(url).content.decode()
    assert "benötigt 1234,5 GiB" in german and "needs 1234.5 GiB" in english


def test_it_keeps_findings_english_where_they_are_recorded(fabric_pages, admin_client):
    job = MigrationJob.objects.get(pk=fabric_pages["job"].pk)
    for finding in job.findings:
        assert set(finding) <= {"rule", "severity", "message", "remedy", "i18n"}
        assert isinstance(finding["message"], str)
    limit = next(f for f in job.findings if f["rule"] == "cluster-parallel-limit")
    assert limit["message"].startswith("Cluster CL-NEW allows 1 parallel live migration(s)")  # English, as recorded
    assert limit["i18n"]["message"]["params"]["cluster"] == "CL-NEW"
    german = in_language(admin_client, "de").get(job.get_absolute_url()).content.decode()
    assert "Cluster CL-NEW erlaubt 1 gleichzeitige Livemigration(en)" in german
    assert "Ergebnisse der Vorabprüfung beim Absenden" in german
    assert "Cluster CL-NEW allows" in in_language(admin_client, "en").get(job.get_absolute_url()).content.decode()


def test_it_keeps_a_msg_english_and_translates_it_on_demand():
    from django.utils import translation

    from utilities.texts import Msg, localized, without_period

    inner = Msg("uses the short name '%(server)s'", server="fs01")
    text = Msg(
        "The SMB path %(path)s %(problem)s; Hyper-V needs SMB 3.0 share paths with the file server's FQDN.%(fix)s",
        path="\\\\fs01\\vms",
        problem=inner,
        fix=Msg(" Use %(path)s.", path="\\\\fs01.contoso.com\\vms"),
    )
    assert text.startswith("The SMB path \\\\fs01\\vms uses the short name 'fs01';")  # a str, in English
    with translation.override("de"):
        german = localized(text)
        assert german.startswith("Der SMB-Pfad \\\\fs01\\vms verwendet den Kurznamen 'fs01';")
        assert german.endswith("Verwenden Sie \\\\fs01.contoso.com\\vms.")
        stored = Msg.from_stored(text.as_stored())  # as a job keeps its findings (JSON)
        assert localized(stored) == german and stored == text
        assert localized(without_period(Msg("The VM is no longer in the inventory."))) == (
            "Die VM ist nicht mehr im Inventar"
        )
        assert localized(Msg("%(free)s GiB", free=7.5)) == "7,5 GiB"
        assert localized("plain text") == "plain text"  # not a Msg: as it is


def test_it_answers_a_broken_translation_with_the_english_text():
    from django.utils import translation

    from utilities.texts import Msg, localized

    text = Msg("Live migration is disabled on %(host)s.", host="hv-01")
    text.params = {}  # a value the template needs is gone: the English text, never an exception
    with translation.override("de"):
        assert localized(text) == "Live migration is disabled on hv-01."


@pytest.mark.django_db(transaction=True)
def test_it_streams_live_pages_in_the_language_of_the_page(settings, operator_user):
    import asyncio

    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    from console.asgi import build_application
    from migrations_ui.jobs.events import change_state, record
    from migrations_ui.models import JobState
    from tests.fabric.factories import make_host, make_vm
    from tests.migrations_ui.views.test_jobs_pages import make_job

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.ANNOUNCE_IN_BACKGROUND = False
    source, destination = make_host("hv-s1"), make_host("hv-s2")
    job = make_job(source, destination, JobState.RUNNING, vm=make_vm("web01", host=source), step="move")
    browser = Client()
    browser.force_login(operator_user)
    session = browser.cookies[settings.SESSION_COOKIE_NAME].value

    async def page(language: str):
        cookie = f"{settings.SESSION_COOKIE_NAME}={session}; {settings.LANGUAGE_COOKIE_NAME}={language}"
        headers = [(b"origin", b"http://testserver"), (b"host", b"testserver"), (b"cookie", cookie.encode())]
        communicator = WebsocketCommunicator(build_application(), f"/ws/jobs/{job.pk}/", headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        replay = await communicator.receive_from(timeout=10) + await communicator.receive_from(timeout=10)
        return communicator, replay

    async def run():
        german, german_replay = await page("de")
        english, english_replay = await page("en")
        assert "Migrieren" in german_replay and "Migrieren" not in english_replay
        await database_sync_to_async(lambda: record(job, "step", {"step": "verify", "host": "hv-s2"}))()
        await database_sync_to_async(lambda: change_state(job, JobState.SUCCEEDED))()
        german_update = english_update = ""
        for _ in range(6):
            german_update += await german.receive_from(timeout=10)
            english_update += await english.receive_from(timeout=10)
            if "Erfolgreich" in german_update and "Succeeded" in english_update:
                break
        assert "Erfolgreich" in german_update and "Erfolgreich" not in english_update
        assert "Succeeded" in english_update
        await german.disconnect()
        await english.disconnect()

    asyncio.run(run())


def test_it_keeps_a_signed_in_users_language_for_the_next_browser(client, operator_user):
    from console.models import Preference

    client.force_login(operator_user)
    client.post(reverse("set_language"), {"language": "de", "next": "/"})
    assert Preference.objects.get(user=operator_user).language == "de"
    # Another workstation: no language cookie, an English browser; signing in brings German back.
    other = Client()
    other.post(reverse("login"), {"username": "operator", "password": "operator-pass-123"}, HTTP_ACCEPT_LANGUAGE="en")
    response = other.get(reverse("fabric:hosts"), HTTP_ACCEPT_LANGUAGE="en")
    assert '<html lang="de">' in response.content.decode() and "Alle Hosts" in response.content.decode()
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "de"  # the browser keeps it from now on
    other.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert Preference.objects.get(user=operator_user).language == "en"
    assert '<html lang="en">' in other.get(reverse("fabric:hosts")).content.decode()


def test_it_explains_refusals_in_german(viewer_client):
    missing = in_language(viewer_client, "de").get("/hosts/no-such-host.contoso.test/")
    assert missing.status_code == 404 and "Nicht gefunden" in missing.content.decode()
    refused = in_language(viewer_client, "de").post(reverse("migrations_ui:cancel_jobs"), {"job": "1"})
    assert refused.status_code == 403 and "Ihre Rolle erlaubt das nicht" in refused.content.decode()


def test_it_closes_the_german_gaps_a_walkthrough_found(fabric_pages, admin_client):
    # issue 19 defect 10: batch titles, the chart legend, audit roles and target kinds, percentages.
    pages = main_pages(fabric_pages, admin_client)
    batch = Batch.objects.get()
    german = in_language(admin_client, "de")
    page = german.get(batch.get_absolute_url()).content.decode()
    assert f"<h1>{batch.host.name} evakuieren</h1>" in page and "Evacuate" not in page
    assert re.search(r"\d %</span>", page) and not re.search(r"\d%</span>", page)  # "35 %", not "35%"
    audit = german.get(reverse("audit:list")).content.decode()
    assert "virtueller Computer" in audit and ">Operator<" in audit
    assert ">virtualmachine<" not in audit and "<td>operator</td>\n        <td>Operator</td>" in audit
    assert pages  # the walk above made the batch
    with translation.override("de"):
        legend = "".join(_legend(plan_of(batch.plan), 0, with_actual=True))
    assert "tatsächlich" in legend and ">actual<" not in legend
