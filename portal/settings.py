"""Settings for the fix-my-device portal. Every value comes from the environment (.env.example)."""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from portal import config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(config.get_str("PORTAL_VAR_DIR") or BASE_DIR / "var")

if (BASE_DIR / ".env").exists():
    config.env.read_env(BASE_DIR / ".env")

# --- Core -------------------------------------------------------------------------------------
DEBUG = config.get_bool("DEBUG", False)
SECRET_KEY = config.get_secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off (or set SECRET_KEY_FILE).")
    SECRET_KEY = config.local_secret_key(VAR_DIR / "dev-secret-key")

ALLOWED_HOSTS = config.get_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = config.get_origins("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "actions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DATABASES = {"default": config.get_db("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # WAL and IMMEDIATE transactions let the web, worker and beat processes share one file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", config.get_int("DATABASE_CONN_MAX_AGE", 60, minimum=0))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "catalog"
LOGOUT_REDIRECT_URL = "login"

# --- I18N, static -----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = config.get_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security ---------------------------------------------------------------------------------
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
HTTPS = config.get_bool("HTTPS", not DEBUG)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and config.get_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = config.get_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if config.get_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Celery -----------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = config.get_url("CELERY_BROKER_URL", "filesystem://", ("filesystem", "redis", "rediss"))
if CELERY_BROKER_URL.startswith("filesystem"):
    # The embedded broker: a folder that every process of this checkout shares; no server.
    for sub in ("queue", "processed"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = False

# --- Nexthink ---------------------------------------------------------------------------------
# With no NEXTHINK_PORTAL_URL the portal talks to the built-in simulator (act_simulator).
SIMULATOR_URL = "http://127.0.0.1:8765"
SIMULATOR_USERNAME = "portal"
SIMULATOR_PASSWORD = "portal-demo"  # noqa: S105 - the simulator's public demo login, not a secret
NEXTHINK_USES_SIMULATOR = not config.is_set("NEXTHINK_PORTAL_URL")
NEXTHINK_PORTAL_URL = config.get_url("NEXTHINK_PORTAL_URL", SIMULATOR_URL).rstrip("/")
NEXTHINK_USERNAME = config.get_str("NEXTHINK_USERNAME", SIMULATOR_USERNAME if NEXTHINK_USES_SIMULATOR else "")
NEXTHINK_PASSWORD = config.get_secret("NEXTHINK_PASSWORD", SIMULATOR_PASSWORD if NEXTHINK_USES_SIMULATOR else "")
if not NEXTHINK_USES_SIMULATOR and not (NEXTHINK_USERNAME and NEXTHINK_PASSWORD):
    raise ImproperlyConfigured(
        "NEXTHINK_USERNAME and NEXTHINK_PASSWORD (or NEXTHINK_PASSWORD_FILE) are required with NEXTHINK_PORTAL_URL."
    )
NEXTHINK_VERIFY_TLS = config.get_bool("NEXTHINK_VERIFY_TLS", True)
NEXTHINK_CA_BUNDLE = config.get_str("NEXTHINK_CA_BUNDLE")
if NEXTHINK_CA_BUNDLE and not Path(NEXTHINK_CA_BUNDLE).is_file():
    raise ImproperlyConfigured(f"NEXTHINK_CA_BUNDLE: no such file {NEXTHINK_CA_BUNDLE!r}.")
NEXTHINK_DEFAULT_TIMEOUT_SECONDS = config.get_int("NEXTHINK_DEFAULT_TIMEOUT_SECONDS", 60, minimum=1, maximum=3600)
NEXTHINK_CONNECT_TIMEOUT_SECONDS = config.get_int("NEXTHINK_CONNECT_TIMEOUT_SECONDS", 5, minimum=1, maximum=120)
# The portal waits this much longer than Nexthink's own timeout, so it never gives up first.
NEXTHINK_READ_MARGIN_SECONDS = config.get_int("NEXTHINK_READ_MARGIN_SECONDS", 15, minimum=1, maximum=600)

# --- Logging ----------------------------------------------------------------------------------
LOG_LEVEL = config.get_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "actions": {"level": LOG_LEVEL},
        "portal": {"level": LOG_LEVEL},
        # urllib3 logs request lines at DEBUG; headers are never logged by it.
        "urllib3": {"level": "WARNING"},
    },
}
