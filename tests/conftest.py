import os

import pytest

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"

# Kerberos in the tests talks only to the KDC tests/fabric/kdc.py starts on loopback: never to the
# realm a machine's /etc/krb5.conf names (Debian's default one would send a Negotiate logon's
# Kerberos requests to MIT's KDCs), and never with the developer's own tickets.
os.environ["KRB5_CONFIG"] = os.devnull
os.environ["KRB5CCNAME"] = "MEMORY:tests"


# The longest tests (minutes each: a console, job workers, PostgreSQL, a browser), started first under
# pytest-xdist so that they overlap the thousand short ones instead of running alone at the end (the
# 500-job scale test, last in file order, made the run's last 12 minutes single-worker). Only tests
# that never touch the Django test database move: they leave no state behind for the tests after them.
FIRST = (
    "tests/scale/test_postgres_workers.py",
    "tests/e2e/",
    "tests/migrations_ui/jobs/test_faults.py",
    "tests/api/test_live.py",
    "tests/migrations_ui/jobs/test_workers.py",
    "tests/fabric/hyperv/test_embedded_psrp.py",
    "tests/console/test_serve.py",
)
DATABASE_FIXTURES = {"db", "transactional_db", "live_server"}  # as pytest-django tells them


def _first(item) -> int:
    path = item.path.relative_to(item.config.rootpath).as_posix()
    uses_database = item.get_closest_marker("django_db") or DATABASE_FIXTURES & set(item.fixturenames)
    ranks = [rank for rank, prefix in enumerate(FIRST) if path.startswith(prefix)]
    return ranks[0] if ranks and not uses_database else len(FIRST)


@pytest.hookimpl(trylast=True)  # after pytest-django's sort, which puts the tests without a database last
def pytest_collection_modifyitems(config, items) -> None:
    """Under pytest-xdist, FIRST's tests first (a stable sort: the same order in every worker); a
    serial run keeps pytest-django's order."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=_first)


# Tests that share a server started once per module or folder (the console of test_live.py; the
# console and Chromium of tests/e2e/): `make test`'s --dist loadgroup runs each set on one worker.
TOGETHER = ("tests/e2e/", "tests/api/test_live.py")


def pytest_xdist_make_scheduler(config, log):
    """--dist loadgroup, grouped by TOGETHER rather than by xdist_group marks: pytest-xdist 3.8 marks a
    group by appending it to item._nodeid, which pytest 9 no longer reads, so the marks did nothing."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class Together(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return next((prefix for prefix in TOGETHER if nodeid.startswith(prefix)), nodeid)

    return Together(config, log)


def need(available: bool, what: str) -> None:
    """Skip when an outside service is absent, but fail in CI (REQUIRE_SERVICES=1)."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (REQUIRE_SERVICES=1) but not available")
    pytest.skip(f"{what} not available")


@pytest.fixture(autouse=True)
def test_settings(monkeypatch, tmp_path):
    """Unit tests drive the in-process simulator (HYPERV_DRIVER defaults to psrp, through the emulator);
    the variable reaches the processes tests start too; tests/fabric/hyperv/test_psrp_*.py use the real path.
    And they see a job's announcement as soon as its transaction commits, and each has its own audit
    checkpoint file and data directory. (Not through pytest-django's settings fixture: the pure test
    modules also run with -p no:django.)"""
    from django.conf import settings

    monkeypatch.setenv("HYPERV_DRIVER", "sim")
    if settings.configured:
        monkeypatch.setattr(settings, "HYPERV_DRIVER", "sim")
        monkeypatch.setattr(settings, "ANNOUNCE_IN_BACKGROUND", False)
        monkeypatch.setattr(settings, "BEATS_IN_BACKGROUND", False)
        # Each test its own audit checkpoint: one test's committed events are not another's trail.
        monkeypatch.setattr(settings, "AUDIT_CHECKPOINT_FILE", tmp_path / "audit_checkpoint")
        # And its own data directory (the credential key generated on first use, the simulated fabric's
        # default file), never the checkout's var/ that every pytest-xdist worker would share: two
        # workers creating var/credential_key at once can read it empty or fail on O_EXCL.
        monkeypatch.setattr(settings, "DATA_DIR", tmp_path / "data")
        monkeypatch.setattr(settings, "SIM_FABRIC_PATH", tmp_path / "data" / "fabric.sqlite3")


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashing():
    """Passwords hashed at one PBKDF2 iteration (tests/hashers.py) for the whole session."""
    from django.conf import settings

    if not settings.configured:  # the pure modules, run with -p no:django
        yield
        return
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["tests.hashers.QuickPBKDF2PasswordHasher"]):
        yield


@pytest.fixture(autouse=True)
def default_language():
    """Each test starts in the default language: a German request or websocket test activates German
    in the thread it ran in (sync_to_async runs thread-sensitive code in the test's own thread), and a
    later test rendering outside a request would get German texts."""
    yield
    from django.conf import settings

    if settings.configured:
        from django.utils import translation

        translation.deactivate()


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@contoso.test", "admin-pass-123")


def _with_role(user, group_name: str):
    from django.contrib.auth.models import Group

    from access import ensure_roles

    if not Group.objects.filter(name=group_name).exists():
        ensure_roles()  # flushed by an earlier transactional test
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def operator_user(django_user_model):
    user = django_user_model.objects.create_user("operator", "operator@contoso.test", "operator-pass-123")
    return _with_role(user, "Operator")


@pytest.fixture
def viewer_user(django_user_model):
    user = django_user_model.objects.create_user("viewer", "viewer@contoso.test", "viewer-pass-123")
    return _with_role(user, "Viewer")


@pytest.fixture
def outsider_user(django_user_model):
    """Signed in, but no role."""
    return django_user_model.objects.create_user("outsider", "outsider@contoso.test", "outsider-pass-123")


@pytest.fixture
def viewer_client(client, viewer_user):
    client.force_login(viewer_user)
    return client


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def operator_client(client, operator_user):
    client.force_login(operator_user)
    return client


@pytest.fixture
def sim_settings(settings, tmp_path):
    """A simulated fabric file of the test's own, on a manual clock (time moves only by advance())."""
    settings.SIM_FABRIC_PATH = tmp_path / "fabric.sqlite3"
    settings.SIM_TIME_SCALE = None
    return settings


@pytest.fixture
def demo_fabric(sim_settings, django_db_blocker):
    """The demo fabric seeded into the test database through the simulator driver."""
    from django.core.management import call_command

    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    from fabric.driver import sim_store

    return sim_store()
