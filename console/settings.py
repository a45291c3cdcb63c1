"""Settings, all read from the environment (see README). A bad value stops start-up."""

import os
import sys
from pathlib import Path

from console import directory, env, oidc

BASE_DIR = Path(__file__).resolve().parent.parent
# Where the embedded default keeps its database, generated keys and the simulated fabric.
DATA_DIR = Path(os.environ.get("CONSOLE_DATA_DIR") or BASE_DIR / "var")
# Every process of the console (serve, its web server and workers, any manage.py command) loads these
# settings before it creates a file: from here on what it creates is 0600 (databases, keys).
env.private_files()

try:
    DEBUG = env.parse_bool("DEBUG", os.environ.get("DEBUG"), default=False)
    SECRET_KEY = env.secret_key("SECRET_KEY", os.environ.get("SECRET_KEY"), DATA_DIR / "secret_key")
    ALLOWED_HOSTS = env.parse_hosts(
        "ALLOWED_HOSTS", os.environ.get("ALLOWED_HOSTS"), default=["127.0.0.1", "localhost", "[::1]"]
    )
    DATABASES = {
        "default": env.parse_database_url("DATABASE_URL", os.environ.get("DATABASE_URL"), DATA_DIR / "db.sqlite3")
    }
    REDIS_URL = env.parse_redis_url("REDIS_URL", os.environ.get("REDIS_URL"))
    # One subscription per process and group, fanned out to its pages in memory (console/fanout.py);
    # off only to measure the plain layer (bench/run_all.py). Every process must agree.
    CHANNEL_FANOUT = env.parse_bool("CHANNEL_FANOUT", os.environ.get("CHANNEL_FANOUT"), default=True)
    # psrp: WinRM / PowerShell Remoting (production, and the embedded default through the host emulator);
    # sim: the simulator in process, for fast unit tests.
    HYPERV_DRIVER = env.parse_choice("HYPERV_DRIVER", os.environ.get("HYPERV_DRIVER"), ("psrp", "sim"), "psrp")
    # serve runs the Hyper-V host emulator (the simulated fabric over WinRM); false with real hosts.
    HYPERV_EMULATOR = env.parse_bool("HYPERV_EMULATOR", os.environ.get("HYPERV_EMULATOR"), default=True)
    HYPERV_EMULATOR_HTTPS = env.parse_bool("HYPERV_EMULATOR_HTTPS", os.environ.get("HYPERV_EMULATOR_HTTPS"), False)
    HYPERV_EMULATOR_USER = os.environ.get("HYPERV_EMULATOR_USER") or "hyperv-emulator"
    HYPERV_EMULATOR_PASSWORD = env.secret_key(
        "HYPERV_EMULATOR_PASSWORD", os.environ.get("HYPERV_EMULATOR_PASSWORD"), DATA_DIR / "emulator_password"
    )
    # Basic authentication over plain HTTP sends passwords readable on the wire: only the emulator's
    # loopback endpoints get it by default; real hosts use HTTPS 5986 and Kerberos/Negotiate/CredSSP.
    HYPERV_ALLOW_BASIC_HTTP = env.parse_bool(
        "HYPERV_ALLOW_BASIC_HTTP", os.environ.get("HYPERV_ALLOW_BASIC_HTTP"), default=HYPERV_EMULATOR
    )
    HYPERV_CA_BUNDLE = os.environ.get("HYPERV_CA_BUNDLE", "")  # CA file for the hosts' WinRM certificates
    HYPERV_CONNECT_TIMEOUT = env.parse_int("HYPERV_CONNECT_TIMEOUT", os.environ.get("HYPERV_CONNECT_TIMEOUT"), 10, 1)
    HYPERV_READ_TIMEOUT = env.parse_int("HYPERV_READ_TIMEOUT", os.environ.get("HYPERV_READ_TIMEOUT"), 30, 12)
    # Seconds between the workers' inventory syncs of every host; 0: only on demand (Refresh, sync_inventory).
    INVENTORY_SYNC_INTERVAL = env.parse_int("INVENTORY_SYNC_INTERVAL", os.environ.get("INVENTORY_SYNC_INTERVAL"), 300)
    # Processes reading a sync of many hosts: this one and helpers (fabric/hyperv/inventory_processes.py).
    INVENTORY_SYNC_PROCESSES = env.parse_int(
        "INVENTORY_SYNC_PROCESSES", os.environ.get("INVENTORY_SYNC_PROCESSES"), 2, 1
    )
    # HMAC key signing the audit trail's checkpoint: kept out of the database, so whoever can write
    # the database cannot forge the checkpoint; without it a key file is generated in DATA_DIR.
    AUDIT_KEY = env.secret_key("AUDIT_KEY", os.environ.get("AUDIT_KEY"), DATA_DIR / "audit_key")
    # The audit trail's signed head (audit/checkpoint.py): best on storage the database's users cannot write.
    AUDIT_CHECKPOINT_FILE = Path(os.environ.get("AUDIT_CHECKPOINT_FILE") or DATA_DIR / "audit_checkpoint")
    # Forwarding every audit event to syslog (audit/forward.py; README "Audit trail out"): off unless a
    # receiver is named. The job workers send; the database is the write-ahead log, so a receiver
    # that is down delays events and loses none.
    AUDIT_SYSLOG_URL = env.parse_syslog_url("AUDIT_SYSLOG_URL", os.environ.get("AUDIT_SYSLOG_URL"))
    # tls://: the receiver's certificate is checked against this CA file (else the system's CAs) and
    # its name; verification off only for a test receiver.
    AUDIT_SYSLOG_CA_FILE = env.parse_file("AUDIT_SYSLOG_CA_FILE", os.environ.get("AUDIT_SYSLOG_CA_FILE"))
    AUDIT_SYSLOG_TLS_VERIFY = env.parse_bool(
        "AUDIT_SYSLOG_TLS_VERIFY", os.environ.get("AUDIT_SYSLOG_TLS_VERIFY"), default=True
    )
    # A PEM file with the console's client certificate and its key, for receivers that ask for one.
    AUDIT_SYSLOG_CLIENT_CERT = env.parse_file("AUDIT_SYSLOG_CLIENT_CERT", os.environ.get("AUDIT_SYSLOG_CLIENT_CERT"))
    AUDIT_SYSLOG_FACILITY = env.parse_choice(
        "AUDIT_SYSLOG_FACILITY",
        os.environ.get("AUDIT_SYSLOG_FACILITY"),
        ("auth", "authpriv", "audit", "user", *(f"local{n}" for n in range(8))),
        "authpriv",
    )
    # The HOSTNAME of every message: the same on every machine of a scale-out, so the receiver sees
    # one source whichever worker sent an event.
    AUDIT_SYSLOG_HOSTNAME = env.parse_syslog_name("AUDIT_SYSLOG_HOSTNAME", os.environ.get("AUDIT_SYSLOG_HOSTNAME"))
    # Fernet key(s) for stored host credentials; without it a key file is generated in DATA_DIR.
    CREDENTIAL_KEY = os.environ.get("CREDENTIAL_KEY", "")
    # Served over HTTPS (directly or behind a TLS proxy): Secure cookies, HSTS, redirect to https.
    HTTPS = env.parse_bool("CONSOLE_HTTPS", os.environ.get("CONSOLE_HTTPS"), default=False)
    # Simulated seconds per wall-clock second for the fabric simulator (demo moves take 5-30 s).
    SIM_TIME_SCALE = env.parse_int("SIM_TIME_SCALE", os.environ.get("SIM_TIME_SCALE"), default=4, minimum=1)
    # Move timeouts (migrations_ui/jobs/timeouts.py; README "Move timeouts"), the default of every host
    # and cluster without its own: a move the host reports no progress of for this many seconds is
    # cancelled (150: KubeVirt's progressTimeout), and one that runs longer than this many seconds per
    # GiB it copies (800: Nova's live_migration_completion_timeout, KubeVirt's completionTimeoutPerGiB).
    # 0 turns a rule off.
    MOVE_STALL_TIMEOUT_S = env.parse_int("MOVE_STALL_TIMEOUT_S", os.environ.get("MOVE_STALL_TIMEOUT_S"), 150)
    MOVE_TIMEOUT_S_PER_GIB = env.parse_int("MOVE_TIMEOUT_S_PER_GIB", os.environ.get("MOVE_TIMEOUT_S_PER_GIB"), 800)
    # After a move timed out by its completion limit (a pre-copy that does not converge), start it once
    # more with Compression, which copies more memory per second on the same link. Off by default.
    MOVE_TIMEOUT_RETRY_COMPRESSION = env.parse_bool(
        "MOVE_TIMEOUT_RETRY_COMPRESSION", os.environ.get("MOVE_TIMEOUT_RETRY_COMPRESSION"), default=False
    )
    # Prometheus metrics at /metrics (console/metrics/; README "Metrics"): off unless a token or the
    # scrapers' networks are set; with both, a scrape needs both.
    METRICS_TOKEN = env.parse_token("METRICS_TOKEN", os.environ.get("METRICS_TOKEN"))
    METRICS_ALLOW = env.parse_networks("METRICS_ALLOW", os.environ.get("METRICS_ALLOW"))
    # Directory sign-in (LDAP, Active Directory; console/directory.py, README "Directory sign-in"): the
    # AUTH_LDAP_* settings of django-auth-ldap, none unless AUTH_LDAP_SERVER_URI is set.
    DIRECTORY = directory.ldap_settings(os.environ)
    # Single sign-on (OpenID Connect; console/oidc.py, README "Single sign-on"): mozilla-django-oidc's
    # OIDC_* settings, none unless OIDC_RP_CLIENT_ID is set.
    SINGLE_SIGN_ON = oidc.oidc_settings(os.environ)
    # Notifications (notifications/, README "Notifications"): webhooks need no setting but these two;
    # e-mail is off until EMAIL_HOST names an SMTP server (Django's EMAIL_* settings).
    NOTIFY_TIMEOUT = env.parse_int("NOTIFY_TIMEOUT", os.environ.get("NOTIFY_TIMEOUT"), 10, 1)
    NOTIFY_MAX_ATTEMPTS = env.parse_int("NOTIFY_MAX_ATTEMPTS", os.environ.get("NOTIFY_MAX_ATTEMPTS"), 6, 1)
    NOTIFY_KEEP_DAYS = env.parse_int("NOTIFY_KEEP_DAYS", os.environ.get("NOTIFY_KEEP_DAYS"), 30)
    EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
    EMAIL_PORT = env.parse_int("EMAIL_PORT", os.environ.get("EMAIL_PORT"), 25, 1)
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env.parse_bool("EMAIL_USE_TLS", os.environ.get("EMAIL_USE_TLS"), default=False)
    EMAIL_USE_SSL = env.parse_bool("EMAIL_USE_SSL", os.environ.get("EMAIL_USE_SSL"), default=False)
    if EMAIL_USE_TLS and EMAIL_USE_SSL:
        raise env.ConfigError("EMAIL_USE_TLS and EMAIL_USE_SSL: set one at most (StartTLS or TLS from the start)")
    EMAIL_TIMEOUT = NOTIFY_TIMEOUT
    DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "hyperv-console@localhost")
except env.ConfigError as exc:
    sys.stderr.write(f"Configuration error: {exc}\n")
    raise SystemExit(2) from None

SIM_FABRIC_PATH = DATA_DIR / "fabric.sqlite3"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "console",
    "fabric",
    "migrations_ui",
    "audit",
    "notifications",
    "ninja",  # its bundled Swagger UI files (no CDN) for /api/v1/docs
    "api",
]
if REDIS_URL is None:
    INSTALLED_APPS.append("channels_lite")

MIDDLEWARE = [
    "console.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language from the user's choice (set_language's cookie), else the browser's Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A signed-in user's saved language (console.language) wins over the browser's.
    "console.language.PreferredLanguageMiddleware",
    "console.middleware.TimeZoneMiddleware",  # the browser's time zone (the script's `tz` cookie)
    "console.middleware.AuditedLoginRequiredMiddleware",  # Django's, with anonymous refusals audited
    "console.middleware.RoleRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "console.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "console.urls"
ASGI_APPLICATION = "console.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.access",
            ],
            "builtins": ["django_htmx.templatetags.django_htmx"],
        },
    }
]

if REDIS_URL:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
else:
    # The ORM variant: the aiosqlite one kept the web server (daphne, then) from exiting on SIGTERM
    # (architecture.md).
    # Its own SQLite file, so websocket traffic never contends with the console's writes.
    DATABASES["channels"] = env.sqlite_database(DATA_DIR / "channels.sqlite3")
    DATABASE_ROUTERS = ["console.routers.ChannelsDatabaseRouter"]
    CHANNEL_LAYERS = {
        # capacity: messages waiting per channel before new ones are dropped; the layer counts them per
        # process, and one update fans out to every open page (bench/jobs.py).
        "default": {
            # channels_lite's layer, querying only once the file changed (console/sqlite_layer.py):
            # it stats the file every watch_interval (a fixed poll of 20 ms added 10 ms on average to
            # every update, and a query a poll); polling_interval bounds a change the stat missed.
            "BACKEND": "console.sqlite_layer.SQLiteChannelLayer",
            "CONFIG": {"database": "channels", "capacity": 1000, "watch_interval": 0.005, "polling_interval": 0.05},
        }
    }
if CHANNEL_FANOUT:
    CHANNEL_LAYERS["default"] = {
        "BACKEND": "console.fanout.FanoutChannelLayer",
        "CONFIG": {"layer": CHANNEL_LAYERS["default"], "capacity": 1000},
    }

# Job updates are rendered and sent to browsers from a background thread (see migrations_ui.jobs.events).
ANNOUNCE_IN_BACKGROUND = True
# A web process writes its heartbeat and websocket clients for the metrics from a thread (migrations_ui.beats).
BEATS_IN_BACKGROUND = True

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

globals().update(DIRECTORY)
globals().update(SINGLE_SIGN_ON)
# The directory first; local accounts (the break-glass admin) through ModelBackend, whatever the
# directory's state: the directory backend passes them by (access/directory.py). Single sign-on's
# backend answers only its callback (access/oidc.py).
AUTHENTICATION_BACKENDS = [
    *([directory.BACKEND] if DIRECTORY else []),
    *([oidc.BACKEND] if SINGLE_SIGN_ON else []),
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "fabric:hosts"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["console.formats"]  # dates with seconds in both languages
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600  # the choice outlives the session
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # htmx takes the token from <body hx-headers>, never from the cookie
CSRF_COOKIE_SAMESITE = "Strict"
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 12 * 3600  # a shift
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# No inline script or style anywhere: htmx is configured (base.html) not to inject styles or eval.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
if HTTPS:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = LANGUAGE_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Sign-in lockout: this many failures for one user name within the window lock it for the window.
LOGIN_FAILURE_LIMIT = 5
# Refusals of anonymous, token and CSRF-less requests written per source address and action a
# minute; more are counted into the next row (audit/log.py record_refusal).
AUDIT_REFUSALS_PER_MINUTE = 20
CSRF_FAILURE_VIEW = "audit.views.csrf_failure"
LOGIN_LOCKOUT_MINUTES = 15

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
