"""manage.py host_settings HOST|--cluster NAME [--set key=value ...] --json: live-migration settings.

Without --set it prints the values read back from the host(s) now. With --set it changes them
through the driver (as the Settings page does: audited per host, before and after) and prints what
the hosts read back afterwards. Every value is checked before any host is asked: a bad one exits 2
and changes nothing. A host that refuses (Hyper-V's message) makes the exit code 1.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from access import Perm
from fabric.driver import get_driver
from fabric.host_settings import FIELDS, apply_cluster_cap, apply_settings, read_back
from fabric.hyperv.api import HostSettings, HyperVError
from fabric.models import AuthType, Cluster, PerformanceOption
from migrations_ui.cli import acting_user, add_user_argument
from migrations_ui.lookup import NotFound, find_host
from utilities.commands import NoSystemChecks

BOOLEANS = {"true": True, "false": False}
KEYS = {
    "live_migrations": "max_live_migrations",
    "storage_migrations": "max_storage_migrations",
    "performance": "performance_option",
    "auth": "auth_type",
    "enabled": "migration_enabled",
}
CLUSTER_KEY = "cluster_parallel"  # --cluster only: the cluster's MaximumParallelMigrations


def usage(message: str) -> CommandError:
    return CommandError(message, returncode=2)


def parse_sets(pairs: list[str], cluster: bool) -> tuple[HostSettings, int | None]:
    """--set pairs as the settings to apply and the cluster cap; a usage error names the bad pair."""
    values: dict = {}
    cap = None
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key, raw = key.strip().lower(), raw.strip()
        if not sep or not raw:
            raise usage(f"--set {pair!r}: write key=value, e.g. live_migrations=2")
        if key == CLUSTER_KEY:
            if not cluster:
                raise usage(f"--set {CLUSTER_KEY}=N needs --cluster NAME")
            cap = _count(key, raw)
            continue
        if key not in KEYS:
            raise usage(f"--set {key}: unknown setting; use {', '.join([*KEYS, CLUSTER_KEY])}")
        if KEYS[key] in values:
            raise usage(f"--set {key} is given twice")
        values[KEYS[key]] = _value(key, raw)
    return HostSettings(**values), cap


def _count(key: str, raw: str) -> int:
    # 0 is a number the host itself refuses (with Hyper-V's message); words and negatives are usage errors.
    if not raw.isdigit():
        raise usage(f"--set {key}={raw}: expected a whole number of 1 or more")
    return int(raw)


def _value(key: str, raw: str):
    lowered = raw.lower()
    if key in ("live_migrations", "storage_migrations"):
        return _count(key, raw)
    if key == "performance":
        if lowered not in PerformanceOption.values:
            raise usage(f"--set performance={raw}: expected one of {'|'.join(PerformanceOption.values)}")
        return lowered
    if key == "auth":
        if lowered not in AuthType.values:
            raise usage(f"--set auth={raw}: expected one of {'|'.join(AuthType.values)}")
        return lowered
    if lowered not in BOOLEANS:
        raise usage(f"--set enabled={raw}: expected true or false")
    return BOOLEANS[lowered]


def host_json(host, values: dict, ok: bool = True, error: str = "") -> dict:
    cap = host.cluster.max_parallel_migrations if host.cluster_id else None
    live = values["max_live_migrations"]
    return {
        "host": host.fqdn,
        "cluster": host.cluster.name if host.cluster_id else None,
        "ok": ok,
        "error": error or None,
        "live_migrations": live,
        "storage_migrations": values["max_storage_migrations"],
        "performance": values["performance_option"],
        "auth": values["auth_type"],
        "enabled": values["migration_enabled"],
        "use_any_network": values["use_any_network"],
        "migration_networks": list(values["migration_networks"]),
        "vm_path": values["vm_path"],
        "vhd_path": values["vhd_path"],
        # On a cluster node the cluster's MaximumParallelMigrations wins (hyperv.md section 3).
        "effective_live_migrations": cap if cap is not None else live,
    }


class Command(NoSystemChecks, BaseCommand):
    help = "Show or change hosts' live-migration settings (one host, or every node of a cluster), read back."

    def add_arguments(self, parser):
        parser.add_argument("host", nargs="?", help="host FQDN or short name")
        parser.add_argument("--cluster", help="every node of this cluster (and the cluster's own cap)")
        parser.add_argument(
            "--set",
            nargs="+",
            default=[],
            dest="pairs",
            metavar="KEY=VALUE",
            help="live_migrations=N storage_migrations=N performance=tcpip|compression|smb auth=kerberos|credssp "
            "enabled=true|false, and with --cluster cluster_parallel=N",
        )
        parser.add_argument("--json", action="store_true", dest="as_json")
        add_user_argument(parser)

    def handle(self, *args, host, cluster, pairs, as_json, user, **options):
        if bool(host) == bool(cluster):
            raise usage("name one host, or a cluster with --cluster NAME (not both)")
        the_cluster, hosts = self._targets(host, cluster)
        wanted, cap = parse_sets(pairs, cluster=the_cluster is not None)
        driver = get_driver()
        data: dict = {}
        failed = False
        if pairs:
            actor = acting_user(user, Perm.HOST_SETTINGS)
            if cap is not None:
                result = apply_cluster_cap(driver, the_cluster, cap, user=actor)
                failed |= not result.ok
                data["cluster_change"] = {"ok": result.ok, "error": result.error or None}
                the_cluster.refresh_from_db()
                hosts = list(the_cluster.nodes.select_related("cluster").order_by("name"))
            if not wanted.is_empty():
                results = apply_settings(driver, hosts, wanted, user=actor)
                failed |= not all(r.ok for r in results)
                data["hosts"] = [host_json(r.host, r.after, r.ok, r.error) for r in results]
        if "hosts" not in data:
            data["hosts"] = [self._read(driver, h) for h in hosts]
            failed |= not all(row["ok"] for row in data["hosts"])
        if the_cluster is not None:
            data["cluster"] = {"name": the_cluster.name, "max_parallel_migrations": the_cluster.max_parallel_migrations}
        self.stdout.write(json.dumps(data, indent=2) if as_json else _describe(data))
        if failed:
            raise CommandError("a host refused or did not answer (see above)", returncode=1)

    @staticmethod
    def _targets(host, cluster):
        if cluster:
            found = Cluster.objects.filter(name__iexact=cluster).first()
            if found is None:
                raise usage(f"--cluster {cluster}: no cluster of that name in the inventory")
            return found, list(found.nodes.select_related("cluster").order_by("name"))
        try:
            return None, [find_host(host)]
        except NotFound as exc:
            raise usage(str(exc)) from None

    @staticmethod
    def _read(driver, host) -> dict:
        try:
            return host_json(host, read_back(driver, host))
        except HyperVError as exc:
            values = {name: getattr(host, name) for name in FIELDS}
            return host_json(host, values, ok=False, error=f"{exc.message} ({exc.code})")


def _describe(data: dict) -> str:
    lines = []
    if "cluster" in data:
        lines.append(
            f"cluster {data['cluster']['name']}: MaximumParallelMigrations {data['cluster']['max_parallel_migrations']}"
        )
    for row in data["hosts"]:
        if not row["ok"]:
            lines.append(f"{row['host']}: REFUSED {row['error']}")
            continue
        lines.append(
            f"{row['host']}: live {row['live_migrations']} (effective {row['effective_live_migrations']}), "
            f"storage {row['storage_migrations']}, {row['performance']}, {row['auth']}, "
            f"migration {'enabled' if row['enabled'] else 'disabled'}"
        )
    return "\n".join(lines)
