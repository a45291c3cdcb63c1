"""End-to-end fixtures: Debian's chromium driven by Playwright against the real console.

pytest-django's live_server has no websockets, so the session starts the console as an operator does
(`manage.py serve`: uvicorn, job workers, the Hyper-V host emulator, the pypsrp driver) on temporary
files and a free port, creates one user per role, and hands each test fresh browser contexts.
Screenshots land in tests/e2e/output/ (git-ignored) for review.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import need
from tests.served import Served

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = Path(__file__).resolve().parent / "output"
AXE = "/static/vendor/axe-core/axe.min.js"
# Demo moves take a few seconds at this scale: long enough to watch the bar move, short for CI.
TIME_SCALE = 8
PASSWORDS = {"admin": "e2e-admin-pass-1", "operator": "e2e-operator-pass-1", "viewer": "e2e-viewer-pass-1"}
USERS_SCRIPT = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from access import ensure_roles
ensure_roles()
for name, group, password in {users!r}:
    user = get_user_model().objects.create_user(name, f"{{name}}@contoso.test", password)
    user.groups.set([Group.objects.get(name=group)])
"""


def _install_chromium() -> str:
    """apt-get install chromium (we are root in CI); an update first when the package lists are stale."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    attempts = (install, ["apt-get", "update"], install)
    environ = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    output = ""
    for argv in attempts:
        result = subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=900)
        output = result.stdout[-2000:] + result.stderr[-2000:]
        if argv[1] == "install" and result.returncode == 0 and CHROMIUM.exists():
            return ""
    return output


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        # One apt-get at a time on this machine: another xdist worker (or test run) may be installing.
        with open(Path(tempfile.gettempdir()) / "console-tests-chromium.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            problem = "" if CHROMIUM.exists() else _install_chromium()
        need(CHROMIUM.exists(), f"Chromium ({CHROMIUM}, `apt-get install chromium`: {problem.strip()[-500:]})")
    return CHROMIUM


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    for old in OUTPUT.glob("*.png"):
        old.unlink(missing_ok=True)  # the other xdist worker may have removed it first
    print(f"\ne2e screenshots: {OUTPUT}")
    return OUTPUT


# Package scope: the console, its workers and the browser stop when the last e2e test is done,
# not at the end of the whole run.
@pytest.fixture(scope="package")
def console(tmp_path_factory, chromium):
    served = _started_console(tmp_path_factory)
    try:
        users = [("operator", "Operator", PASSWORDS["operator"]), ("viewer", "Viewer", PASSWORDS["viewer"])]
        served.manage("shell", "--no-imports", "-c", USERS_SCRIPT.format(users=users))
        yield served
    finally:
        served.stop()


def _started_console(tmp_path_factory) -> Served:
    """The console, started once more (new port, new files) if the first did not come up.

    Session 15's CI run saw this console print "Console running at" and then not answer the sign-in
    page for 120 s, where every run on a session's machine, loaded or not, had it up in seconds; the
    message said nothing of the server's side. A failed start now leaves a warning with
    serve's output (the run's summary shows it), so its cause can be found without every browser test
    failing on it. Starting serve is tested without a second chance in tests/console/test_serve.py.
    """
    environ = {"SIM_TIME_SCALE": str(TIME_SCALE), "DJANGO_SUPERUSER_PASSWORD": PASSWORDS["admin"]}

    def up() -> Served:
        served = Served(tmp_path_factory.mktemp("e2e-console"), workers=3, env=environ, args=("--stop-timeout", "3"))
        try:
            served.wait_until_running()
        except AssertionError:
            served.stop()
            raise
        return served

    try:
        return up()
    except AssertionError as exc:
        warnings.warn(f"the e2e console did not come up; starting it again. {exc}", stacklevel=1)
    return up()


@pytest.fixture(scope="package")
def browser(chromium, console):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; no e2e test uses the ORM, but Django's
    # async-safety guard would refuse any call that did (architecture.md). Only while e2e runs.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium))
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


# Chromium logs every 4xx answer as an error, also those the console gives on purpose and shows (a
# form's 400 with its errors at the fields, the 404 page, a 409 refusal); those are the tests' to
# assert. A 5xx, a script error, a CSP refusal or a failed load is an error on every page.
ANSWERED = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d ")


@dataclass
class Session:
    """One signed-in browser context: its page, the console it talks to, and the errors the browser
    reported (script errors, anything the Content-Security-Policy blocked, failed loads)."""

    page: object
    console: Served
    errors: list[str] = field(default_factory=list)

    def watch_errors(self) -> None:
        def on_console(message) -> None:
            if message.type == "error" and not ANSWERED.match(message.text):
                self.errors.append(f"{self.page.url}: {message.text}")

        self.page.on("console", on_console)
        self.page.on("pageerror", lambda error: self.errors.append(f"{self.page.url}: {error}"))

    def goto(self, path: str):
        response = self.page.goto(self.console.url(path))
        assert response.status == 200, f"{path}: HTTP {response.status}"
        return response


def sign_in(browser, console: Served, username: str, viewport=(1280, 900), timezone_id: str | None = None) -> Session:
    size = {"width": viewport[0], "height": viewport[1]}
    context = browser.new_context(viewport=size, locale="en-US", timezone_id=timezone_id)
    context.set_default_timeout(15_000)
    session = Session(context.new_page(), console)
    session.watch_errors()
    page = session.page
    page.goto(console.url("/accounts/login/"))
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORDS[username])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    return session


@pytest.fixture
def signed_in(browser, console):
    """signed_in("operator") -> a Session in a fresh browser context; closed after the test."""
    contexts = []

    def open_session(username: str, viewport=(1280, 900), timezone_id: str | None = None) -> Session:
        session = sign_in(browser, console, username, viewport, timezone_id)
        session.page.context.console_errors = session.errors  # checked when the test ends
        contexts.append(session.page.context)
        return session

    yield open_session
    errors = [error for context in contexts for error in getattr(context, "console_errors", [])]
    for context in contexts:
        context.close()
    assert not errors, "the browser reported errors:\n" + "\n".join(errors)


def shoot(page, output_dir: Path, name: str) -> Path:
    path = output_dir / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def serious_violations(page) -> list[str]:
    """axe-core (vendored in static/, so the page's CSP allows it) run on the page as it stands:
    violations of impact serious or critical, one line each with the offending elements."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=AXE)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    lines = []
    for v in result["violations"]:
        if v["impact"] in ("serious", "critical"):
            targets = ", ".join(" ".join(n["target"]) for n in v["nodes"][:5])
            lines.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])} nodes): {v['help']} -> {targets}")
    return lines
