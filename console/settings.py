"""Settings, all read from the environment (see README). A bad value stops start-up."""

import os
import sys
from pathlib import Path

from console import env

BASE_DIR = Path(__file__).resolve().parent.parent
# Where the embedded default keeps its database, generated keys and the simulated fabric.
DATA_DIR = Path(os.environ.get("CONSOLE_DATA_DIR") or BASE_DIR / "var")

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
    HYPERV_DRIVER = env.parse_choice("HYPERV_DRIVER", os.environ.get("HYPERV_DRIVER"), ("psrp", "sim"), "sim")
    # Simulated seconds per wall-clock second for the fabric simulator (demo moves take 5-30 s).
    SIM_TIME_SCALE = env.parse_int("SIM_TIME_SCALE", os.environ.get("SIM_TIME_SCALE"), default=4, minimum=1)
except env.ConfigError as exc:
    sys.stderr.write(f"Configuration error: {exc}\n")
    raise SystemExit(2) from None

SIM_FABRIC_PATH = DATA_DIR / "fabric.sqlite3"

INSTALLED_APPS = [
    "daphne",
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
]
if REDIS_URL is None:
    INSTALLED_APPS.append("channels_lite")

MIDDLEWARE = [
    "console.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "console.middleware.RoleRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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
    # The ORM variant: the aiosqlite one kept daphne from exiting on SIGTERM (architecture.md).
    # Its own SQLite file, so websocket traffic never contends with the console's writes.
    DATABASES["channels"] = env.sqlite_database(DATA_DIR / "channels.sqlite3")
    DATABASE_ROUTERS = ["console.routers.ChannelsDatabaseRouter"]
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_lite.layers.core.SQLiteChannelLayer", "CONFIG": {"database": "channels"}}
    }

# Job updates are rendered and sent to browsers from a background thread (see migrations_ui.events).
ANNOUNCE_IN_BACKGROUND = True

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "fabric:hosts"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Strict"
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
