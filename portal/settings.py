"""Settings for the fix-my-device portal. Every value comes from the environment (.env.example)."""

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from kombu import Queue

from portal import __version__, config

PORTAL_VERSION = __version__  # in the User-Agent of every call to Nexthink
BASE_DIR = Path(__file__).resolve().parent.parent
if (BASE_DIR / ".env").exists():  # first, so that every variable below may come from it
    config.env.read_env(BASE_DIR / ".env", parse_comments=True)
_VAR_DIR = config.get_str(
    "PORTAL_VAR_DIR",
    doc="SQLite file, embedded broker, dev key, demo mail",
    shown="`./var` (the Infinity demo: `./var/infinity`)",
)

# --- Core -------------------------------------------------------------------------------------
DEBUG = config.get_bool("DEBUG", False, doc="`bin/demo` sets `true`; never in production")
# Unset: var/, or var/infinity/ for the demo on Nexthink Infinity (each platform's demo its own data).
VAR_DIR = Path(_VAR_DIR) if _VAR_DIR else config.default_var_dir(BASE_DIR, debug=DEBUG)
SECRET_KEY = config.get_secret(
    "SECRET_KEY", doc="Django's signing key", shown="none (DEBUG: a random key in `var/`)", must="when `DEBUG` is off"
)
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off (or set SECRET_KEY_FILE).")
    SECRET_KEY = config.local_secret_key(VAR_DIR / "dev-secret-key")

ALLOWED_HOSTS = config.get_list(
    "ALLOWED_HOSTS",
    ["localhost", "127.0.0.1", "[::1]"],
    doc="comma-separated host names the portal answers to",
    must="in production",
)
CSRF_TRUSTED_ORIGINS = config.get_origins(
    "CSRF_TRUSTED_ORIGINS", doc="comma-separated origins with scheme", must="behind a proxy"
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "auditlog",  # the audit trail (actions/audit.py): who changed what, before/after, from where
    "ninja",  # the API's reference page (its templates and Swagger UI's static files, served locally)
    "actions",
]

MIDDLEWARE = [
    "portal.logcontext.RequestIdMiddleware",
    "portal.middleware.HealthzMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A run page's poll for a run that has not changed: 304 before any session or database read.
    "actions.views.watch.RunStatusNotModifiedMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the employee's choice on Preferences, else the browser's (after the session, before
    # anything that renders; README "Languages").
    "portal.middleware.PreferredLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "portal.middleware.NoStoreForSignedInMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

# Each process's own memory: the catalog's first-page rows and cards and the action page's action
# (keyed by the catalog's version or by what they hold, so never stale), Engine names (5 min), when
# an action's runs usually end (1 min: the run page's first poll), the NXQL rest of a failing
# Engine. Room for a few thousand combinations of groups before the oldest entries are dropped
# (Django's default keeps 300).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": {"MAX_ENTRIES": 5000}},
}

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
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.site",
                "actions.views.nav.approvals_nav",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
config.section("Database")
DATABASES = {
    "default": config.get_db(
        "DATABASE_URL",
        f"sqlite:///{VAR_DIR / 'portal.sqlite3'}",
        doc="PostgreSQL: `postgres://user:pass@host:5432/db`",
        shown="`sqlite:///var/portal.sqlite3`",
        must="in production",
    )
}
DATABASE_POOL_MAX_SIZE = config.get_int(
    "DATABASE_POOL_MAX_SIZE",
    10,
    minimum=0,
    maximum=1000,
    doc="PostgreSQL: connections per process, pooled (web requests and runs borrow one and give it back; queries bound on the server and prepared on them); `0`: no pool and nothing prepared, for a transaction-mode pooler such as PgBouncer in between",
)
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
    # PostgreSQL: a connection pool per process (psycopg_pool). A thread borrows a connection for a
    # web request, or for each database step of a run, and gives it back: a worker whose 100 threads
    # wait on Nexthink needs a few connections, not 100, and none is opened per task. Connections per
    # process never exceed DATABASE_POOL_MAX_SIZE. 0 turns the pool off: then each thread keeps its
    # own connection for DATABASE_CONN_MAX_AGE seconds.
    if DATABASE_POOL_MAX_SIZE:
        from psycopg_pool import ConnectionPool

        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them; Django must not
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(2, DATABASE_POOL_MAX_SIZE),
            "max_size": DATABASE_POOL_MAX_SIZE,
            "timeout": 30,  # seconds a thread waits for a free connection before the request or task fails
            "check": ConnectionPool.check_connection,  # a connection the server dropped is replaced, not used
        }
        # Pooled connections go straight to PostgreSQL, so prepared statements may be kept on them:
        # with parameters bound on the server, psycopg prepares a query once it ran 5 times on a
        # connection, and PostgreSQL then skips parsing and planning it (bench/README.md, figure 0).
        # The compiled hot reads (actions/compiled.py) send the same SQL every time, so they are
        # prepared this way too. None, Django's default, would forbid it.
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 5)
        DATABASES["default"]["OPTIONS"].setdefault("server_side_binding", True)
    else:
        DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
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

# --- Languages, static ------------------------------------------------------------------------
config.section("Core")
# The language an employee reads: their choice on the Preferences page, else their browser's
# (Accept-Language), else English. README "Languages"; translations in locale/.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = config.get_str("TIME_ZONE", "UTC", doc="the time zone of dates shown to employees")
PORTAL_NAME = config.get_str(
    "PORTAL_NAME", "Fix my device", doc="the site's name: the same in the tab title, the header, e-mails and tickets"
)
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
config.section("Security")
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
HTTPS = config.get_bool("HTTPS", not DEBUG, doc="secure cookies, HSTS, redirect to https", shown="`true` unless DEBUG")
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = (
    config.get_bool("SECURE_SSL_REDIRECT", True, doc="with HTTPS: redirect http to https (off if the proxy does it)")
    and HTTPS
)
SECURE_HSTS_SECONDS = config.get_int(
    "SECURE_HSTS_SECONDS",
    31536000 if HTTPS else 0,
    minimum=0,
    doc="HSTS max-age, with HTTPS",
    shown="`31536000` with HTTPS",
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
BEHIND_TLS_PROXY = config.get_bool(
    "BEHIND_TLS_PROXY",
    False,
    doc="trust `X-Forwarded-Proto` from the one proxy in front, and take the client address for security events from the last `X-Forwarded-For` entry",
)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Celery -----------------------------------------------------------------------------------
config.section("Broker and workers")
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = config.get_url(
    "CELERY_BROKER_URL",
    "filesystem://",
    ("filesystem", "redis", "rediss"),
    doc="Redis: `redis://host:6379/0` (`rediss://` for TLS)",
    shown="`filesystem://` (embedded, `var/broker/`; atomic writes, safe with several processes)",
    must="in production",
)
if CELERY_BROKER_URL.startswith("filesystem"):
    # The embedded broker: a folder that every process of this checkout shares; no server. In this
    # project filesystem:// is portal/filesystem_transport.py (registered in portal/celery.py): kombu's
    # transport with messages written aside and renamed into place, so no process reads half a one.
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.2,  # seconds between looks at the folder: the demo's pickup latency
    }
CELERY_TASK_ALWAYS_EAGER = False
# Runs are stored in the database; the broker only carries ids, as JSON.
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# At-least-once delivery: a task is acknowledged when done, and given back if its worker dies.
# The run's atomic claim makes a second delivery a no-op (actions.runs.lifecycle.claim).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Threads per worker process. Each waits on Nexthink most of the time (bench/README.md, figure 3):
# 100 keep 50 calls/s in flight at 2 s per call, in about 140 MiB, with a few pooled DB connections.
CELERY_WORKER_CONCURRENCY = config.get_int(
    "CELERY_WORKER_CONCURRENCY",
    8 if DEBUG else 100,
    minimum=1,
    maximum=1000,
    doc="threads per worker process: calls to Nexthink in flight",
    shown="`100` (`8` with DEBUG)",
)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CONSUMER = "portal.reconnect:Consumer"  # back within 2 s of the broker's return
CELERY_BROKER_CONNECTION_TIMEOUT = 3
# A broker that is down at submit time must not hold the employee's request for long: the run is
# stored as queued and the reaper sends it.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
NEXTHINK_MAX_TIMEOUT_SECONDS = 3600
# Prefork only: no call outlives the Act API's own timeout plus our margin.
CELERY_TASK_TIME_LIMIT = NEXTHINK_MAX_TIMEOUT_SECONDS + 120
REDIS_VISIBILITY_TIMEOUT_SECONDS = config.get_int(
    "REDIS_VISIBILITY_TIMEOUT_SECONDS",
    CELERY_TASK_TIME_LIMIT + 600,
    minimum=1,
    doc="Redis gives an unacknowledged task back after this long; keep it above the longest call (no need to change)",
    shown="`4320`",
)
if CELERY_BROKER_URL.startswith("redis"):
    # kombu's Redis transport with a fix for a crash when Redis restarts (see the module).
    CELERY_BROKER_TRANSPORT = "portal.redis_transport:Transport"
    if CELERY_BROKER_URL.startswith("rediss"):
        import ssl

        # TLS to Redis, with the server's certificate verified (kombu alone would not verify it).
        CELERY_BROKER_USE_SSL = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than any task and any retry countdown, so Redis does not redeliver a task that runs.
        "visibility_timeout": REDIS_VISIBILITY_TIMEOUT_SECONDS,
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
        "retry_on_timeout": True,
    }
# What every web and worker process must see alike (actions/runs/watch.py: which version of a run
# the run page already shows). Redis: the broker's by default; else a folder under var/, which the
# processes of one host share (the embedded set-up).
SHARED_CACHE_URL = config.get_url(
    "SHARED_CACHE_URL",
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else "file://",
    ("redis", "rediss", "file"),
    doc="a cache every web and worker process shares: `redis://host:6379/1`",
    shown="the broker's Redis (`file://`: a folder in `var/`, one host only)",
)
if SHARED_CACHE_URL.startswith("redis"):
    CACHES["shared"] = {
        "BACKEND": "portal.cache.SharedClientRedisCache",  # one Redis client per pool (portal/cache.py)
        "LOCATION": SHARED_CACHE_URL,
        "KEY_PREFIX": "portal-shared",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
else:
    CACHES["shared"] = {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "shared-cache"),
    }

# --- Runs -------------------------------------------------------------------------------------
config.section("Runs")
RUN_MAX_ATTEMPTS = config.get_int(
    "RUN_MAX_ATTEMPTS", 5, minimum=1, maximum=20, doc="attempts when nothing can have been accepted"
)
# Fair use, for every employee and every action: runs waiting or being sent at once, and runs
# started per window. One employee's burst then cannot delay everyone else's runs.
RUN_MAX_IN_FLIGHT_PER_USER = config.get_int(
    "RUN_MAX_IN_FLIGHT_PER_USER", 3, minimum=1, doc="fair use: an employee's runs waiting or being sent at once"
)
RUN_RATE_LIMIT_COUNT = config.get_int(
    "RUN_RATE_LIMIT_COUNT", 10, minimum=1, doc="fair use: runs an employee may start per window, all actions"
)
RUN_RATE_LIMIT_WINDOW_SECONDS = config.get_int(
    "RUN_RATE_LIMIT_WINDOW_SECONDS", 600, minimum=1, maximum=86400, doc="fair use: the window of `RUN_RATE_LIMIT_COUNT`"
)
RUN_RETRY_BASE_SECONDS = 2
# The integration API (actions/api/): each client's calls per minute, all endpoints; more get 429 and Retry-After.
API_RATE_LIMIT_PER_MINUTE = config.get_int(
    "API_RATE_LIMIT_PER_MINUTE", 120, minimum=1, maximum=100_000, doc="API: calls one client may make per minute"
)
# ...and its call log (ApiCall) keeps this many days; an hourly beat pass deletes older rows.
API_CALL_LOG_DAYS = config.get_int(
    "API_CALL_LOG_DAYS", 90, minimum=1, maximum=3650, doc="API: days the log of API calls is kept, then deleted"
)
RUN_RETRY_MAX_SECONDS = 60
# The reaper re-enqueues runs handed to the broker this long ago and still not claimed (overdue for
# a retry), unless the broker holds as many waiting messages: the broker lost them.
RUN_REQUEUE_AFTER_SECONDS = 10
# ...and marks runs still sending after their timeout + margins + this grace as outcome unknown.
RUN_SENDING_GRACE_SECONDS = 30
# ...and fails runs that could not be sent for this long, rather than send them hours late.
RUN_QUEUE_MAX_AGE_SECONDS = config.get_int(
    "RUN_QUEUE_MAX_AGE_SECONDS",
    3600,
    minimum=60,
    doc='reaper: fail runs that could not be sent for this long ("nothing was sent")',
)
# Every pass reads in-flight runs only (a few indexed queries): often enough that a run the broker
# could not take goes out within seconds of its return.
REAPER_INTERVAL_SECONDS = 5
# Infinity: how often beat looks for runs whose device result is due to be read again.
FOLLOW_UP_INTERVAL_SECONDS = 10
ENGINE_SYNC_INTERVAL_SECONDS = config.get_int(
    "ENGINE_SYNC_INTERVAL_SECONDS", 3600, minimum=60, doc="how often beat refreshes Engines from the List Engines API"
)
# The ticket sweep: how often beat looks for tickets whose task the broker never took or lost, and
# how long a due ticket waits for its task before the sweep hands it to the broker again.
TICKETING_SWEEP_INTERVAL_SECONDS = 60
TICKETING_SWEEP_AFTER_SECONDS = 60
# Runs on the default queue; the reaper and the Engine sync on their own, and a copy that waited
# longer than its period is dropped: a backlog of runs can neither delay them nor pile them up.
CELERY_TASK_DEFAULT_QUEUE = "celery"
MAINTENANCE_QUEUE = "maintenance"
CELERY_TASK_QUEUES = [Queue(CELERY_TASK_DEFAULT_QUEUE), Queue(MAINTENANCE_QUEUE)]
CELERY_TASK_ROUTES = {
    "actions.tasks.reap_runs": {"queue": MAINTENANCE_QUEUE},
    "actions.tasks.sync_engines_task": {"queue": MAINTENANCE_QUEUE},
    "actions.tasks.follow_up_runs": {"queue": MAINTENANCE_QUEUE},
    "actions.tasks.sweep_tickets": {"queue": MAINTENANCE_QUEUE},
    "actions.tasks.prune_api_calls": {"queue": MAINTENANCE_QUEUE},
}
CELERY_BEAT_SCHEDULE = {
    "reap-runs": {
        "task": "actions.tasks.reap_runs",
        "schedule": REAPER_INTERVAL_SECONDS,
        "options": {"expires": REAPER_INTERVAL_SECONDS},
    },
    "sync-engines": {
        "task": "actions.tasks.sync_engines_task",
        "schedule": ENGINE_SYNC_INTERVAL_SECONDS,
        "options": {"expires": ENGINE_SYNC_INTERVAL_SECONDS},
    },
    "sweep-tickets": {
        "task": "actions.tasks.sweep_tickets",
        "schedule": TICKETING_SWEEP_INTERVAL_SECONDS,
        "options": {"expires": TICKETING_SWEEP_INTERVAL_SECONDS},
    },
    "prune-api-calls": {
        "task": "actions.tasks.prune_api_calls",
        "schedule": 3600,  # hourly: each pass deletes little, whatever the traffic
        "options": {"expires": 3600},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULER = "portal.heartbeat:HeartbeatScheduler"  # leader lock; writes beat's heartbeat for /healthz
# Several beats may run (one per machine); only the holder of a lock in Redis schedules. It renews
# the lock every third of this (at most 5 s apart); when it dies, another takes over within this + 5 s.
BEAT_LEADER_SECONDS = config.get_int(
    "BEAT_LEADER_SECONDS",
    30,
    minimum=2,
    maximum=300,
    doc="with several beats (one schedules): a dead leader's lock expires after this long; another beat takes over within 5 s more",
)
# A periodic pass (reaper, follow-up, ticket sweep, Engine sync) runs under a lock of its own, renewed
# while it runs; a worker that dies mid-pass frees it after this long.
PERIODIC_LOCK_SECONDS = 60
# The worker and beat each write a heartbeat this often; /healthz calls one dead after three missed.
HEARTBEAT_SECONDS = 30
HEARTBEAT_STALE_SECONDS = 3 * HEARTBEAT_SECONDS

# --- E-mail and links to the portal -----------------------------------------------------------------
config.section("E-mail and links")
# Where links in e-mails and tickets point: the address employees open the portal at.
PORTAL_BASE_URL = config.get_url(
    "PORTAL_BASE_URL",
    "http://127.0.0.1:8000",
    doc="the address employees open the portal at: links in e-mails and tickets",
    must="with `EMAIL_URL` or `TICKETING`",
).rstrip("/")
if config.is_set("EMAIL_URL") and not DEBUG and not config.is_set("PORTAL_BASE_URL"):
    raise ImproperlyConfigured("PORTAL_BASE_URL is required with EMAIL_URL: e-mails link to the portal.")
# EMAIL_URL: smtp://user:password@host:587 (django-environ's schemes). Without it nothing is mailed
# (no mailer at all, so nothing can fall back to a local SMTP server); with DEBUG on, mails are
# written as files under var/mail (the demo).
config.describe(
    "EMAIL_URL",
    doc="`smtp+tls://user:password@host:587`; without it no e-mail is sent",
    shown="none (DEBUG: files in `var/mail/`)",
)
MAILERS = {}
if config.is_set("EMAIL_URL") or DEBUG:
    MAILERS["default"] = config.get_mailer("EMAIL_URL", f"filemail://{VAR_DIR / 'mail'}")
else:
    SILENCED_SYSTEM_CHECKS = ["mail.W001"]  # no mailer on purpose; the code checks before sending
DEFAULT_FROM_EMAIL = config.get_str(
    "DEFAULT_FROM_EMAIL",
    f"{PORTAL_NAME} <fix-my-device@localhost>",
    doc="sender of the portal's e-mails",
    shown="`PORTAL_NAME <fix-my-device@localhost>`",
)
# "Did this fix it?" can be answered, and changed, for this long after a run ends.
RUN_FEEDBACK_DAYS = 7
# A run that ends is mailed about only if its page has not shown the end this long afterwards (an open
# page looks at least every 15 s), by the reaper's pass; runs ending closer together share one e-mail.
RUN_NOTIFY_DELAY_SECONDS = 20

# --- Nexthink ---------------------------------------------------------------------------------
config.section("Nexthink")
SIMULATOR_URL = "http://127.0.0.1:8765"
SIMULATOR_USERNAME = "portal"
SIMULATOR_PASSWORD = "portal-demo"  # noqa: S105 - the simulator's public demo login, not a secret
# Which Nexthink API the portal speaks: "classic" (Act API v2, Basic auth) or "infinity" (OAuth2,
# Remote Actions API and NQL API). The other platform's settings are read but not used.
NEXTHINK_PLATFORM = config.get_choice(
    "NEXTHINK_PLATFORM", "classic", ("classic", "infinity"), doc='Act API v2, or Infinity (see "Nexthink Infinity")'
)
_CLASSIC_SIMULATED = not config.is_set("NEXTHINK_PORTAL_URL")
_INFINITY_SIMULATED = not config.is_set("NEXTHINK_API_URL")
NEXTHINK_USES_SIMULATOR = _INFINITY_SIMULATED if NEXTHINK_PLATFORM == "infinity" else _CLASSIC_SIMULATED
NEXTHINK_SIMULATOR = config.get_bool(
    "NEXTHINK_SIMULATOR", False, doc="`true` allows the simulators with `DEBUG` off (benchmarks, tests)"
)
if DEBUG or NEXTHINK_SIMULATOR:
    INSTALLED_APPS.append("simulators")  # their commands (act_simulator, ...): never in production
if NEXTHINK_USES_SIMULATOR and not DEBUG and not NEXTHINK_SIMULATOR:
    # A production set-up that forgot the Nexthink address must not quietly talk to the demo simulator.
    _address = "NEXTHINK_API_URL" if NEXTHINK_PLATFORM == "infinity" else "NEXTHINK_PORTAL_URL"
    raise ImproperlyConfigured(f"{_address} is required when DEBUG is off (or set NEXTHINK_SIMULATOR=true).")
NEXTHINK_PORTAL_URL = config.get_url(
    "NEXTHINK_PORTAL_URL",
    SIMULATOR_URL,
    doc="classic: base URL of the Nexthink web interface",
    shown="the simulator, `http://127.0.0.1:8765`",
    must="on classic",
).rstrip("/")
NEXTHINK_USERNAME = config.get_str(
    "NEXTHINK_USERNAME",
    SIMULATOR_USERNAME if _CLASSIC_SIMULATED else "",
    doc="classic: the Act API user",
    shown="simulator's `portal`",
    must="with `NEXTHINK_PORTAL_URL`",
)
NEXTHINK_PASSWORD = config.get_secret(
    "NEXTHINK_PASSWORD",
    SIMULATOR_PASSWORD if _CLASSIC_SIMULATED else "",
    doc="classic: its password",
    shown="simulator's",
    must="with `NEXTHINK_PORTAL_URL`",
)
if NEXTHINK_PLATFORM == "classic" and not _CLASSIC_SIMULATED and not (NEXTHINK_USERNAME and NEXTHINK_PASSWORD):
    raise ImproperlyConfigured(
        "NEXTHINK_USERNAME and NEXTHINK_PASSWORD (or NEXTHINK_PASSWORD_FILE) are required with NEXTHINK_PORTAL_URL."
    )
NEXTHINK_VERIFY_TLS = config.get_bool("NEXTHINK_VERIFY_TLS", True, doc="never `false` in production")
NEXTHINK_CA_BUNDLE = config.get_str(
    "NEXTHINK_CA_BUNDLE", doc="PEM file of the CA that signed Nexthink's certificate (both platforms)"
)
if NEXTHINK_CA_BUNDLE and not Path(NEXTHINK_CA_BUNDLE).is_file():
    raise ImproperlyConfigured(f"NEXTHINK_CA_BUNDLE: no such file {NEXTHINK_CA_BUNDLE!r}.")
NEXTHINK_DEFAULT_TIMEOUT_SECONDS = config.get_int(
    "NEXTHINK_DEFAULT_TIMEOUT_SECONDS",
    60,
    minimum=1,
    maximum=NEXTHINK_MAX_TIMEOUT_SECONDS,
    doc="`timeoutSeconds` when an action sets none (1 to 3600)",
)
NEXTHINK_CONNECT_TIMEOUT_SECONDS = 5
# The portal waits this much longer than Nexthink's own timeout, so it never gives up first.
NEXTHINK_READ_MARGIN_SECONDS = 15

# --- Nexthink Infinity (NEXTHINK_PLATFORM=infinity; see README "Nexthink Infinity") ----------------
config.section("Nexthink Infinity")
# With no NEXTHINK_API_URL the portal talks to the built-in simulator, which serves Infinity too.
SIMULATOR_TOKEN_PATH = "/oauth2/default/v1/token"  # noqa: S105 - a URL path, not a secret
SIMULATOR_NQL_DEVICES_QUERY = "#portal_devices_of_user"
SIMULATOR_NQL_EXECUTIONS_QUERY = "#portal_remote_action_executions"
SIMULATOR_NQL_WORKFLOW_EXECUTIONS_QUERY = "#portal_workflow_executions"
NEXTHINK_API_URL = config.get_url(
    "NEXTHINK_API_URL",
    SIMULATOR_URL,
    doc="Infinity: `https://<instance>.api.<region>.nexthink.cloud`",
    shown="the simulator, `http://127.0.0.1:8765`",
    must="on Infinity",
).rstrip("/")
NEXTHINK_TOKEN_URL = config.get_str(
    "NEXTHINK_TOKEN_URL",
    SIMULATOR_URL + SIMULATOR_TOKEN_PATH if _INFINITY_SIMULATED else "",
    doc="Infinity: `https://<instance>-login.<region>.nexthink.cloud/oauth2/default/v1/token`",
    shown="the simulator's",
    must="with `NEXTHINK_API_URL`",
)
if NEXTHINK_TOKEN_URL:
    config.check_url("NEXTHINK_TOKEN_URL", NEXTHINK_TOKEN_URL, ("http", "https"))
NEXTHINK_CLIENT_ID = config.get_str(
    "NEXTHINK_CLIENT_ID",
    SIMULATOR_USERNAME if _INFINITY_SIMULATED else "",
    doc="Infinity API credentials: the client id",
    shown="simulator's",
    must="with `NEXTHINK_API_URL`",
)
NEXTHINK_CLIENT_SECRET = config.get_secret(
    "NEXTHINK_CLIENT_SECRET",
    SIMULATOR_PASSWORD if _INFINITY_SIMULATED else "",
    doc="Infinity API credentials: the client secret",
    shown="simulator's",
    must="with `NEXTHINK_API_URL`",
)
NEXTHINK_NQL_DEVICES_QUERY = config.get_str(
    "NEXTHINK_NQL_DEVICES_QUERY",
    SIMULATOR_NQL_DEVICES_QUERY if _INFINITY_SIMULATED else "",
    doc="id of the saved NQL query that finds a user's devices",
    shown="simulator: `#portal_devices_of_user`",
)
NEXTHINK_NQL_EXECUTIONS_QUERY = config.get_str(
    "NEXTHINK_NQL_EXECUTIONS_QUERY",
    SIMULATOR_NQL_EXECUTIONS_QUERY if _INFINITY_SIMULATED else "",
    doc="id of the saved NQL query that follows a request up",
    shown="simulator: `#portal_remote_action_executions`",
    must="with `NEXTHINK_API_URL`",
)
NEXTHINK_NQL_WORKFLOW_EXECUTIONS_QUERY = config.get_str(
    "NEXTHINK_NQL_WORKFLOW_EXECUTIONS_QUERY",
    SIMULATOR_NQL_WORKFLOW_EXECUTIONS_QUERY if _INFINITY_SIMULATED else "",
    doc="id of the saved NQL query that follows a workflow request up (`$request_id`); empty: no workflows",
    shown="simulator: `#portal_workflow_executions`",
)
for _name, _query in (
    ("NEXTHINK_NQL_DEVICES_QUERY", NEXTHINK_NQL_DEVICES_QUERY),
    ("NEXTHINK_NQL_EXECUTIONS_QUERY", NEXTHINK_NQL_EXECUTIONS_QUERY),
    ("NEXTHINK_NQL_WORKFLOW_EXECUTIONS_QUERY", NEXTHINK_NQL_WORKFLOW_EXECUTIONS_QUERY),
):
    if _query and not re.fullmatch(r"#[a-z0-9_]{2,255}", _query):
        raise ImproperlyConfigured(f"{_name} must be an NQL query id like #my_query (#[a-z0-9_]), got {_query!r}.")
if NEXTHINK_PLATFORM == "infinity" and not _INFINITY_SIMULATED:
    _missing = [
        name
        for name, value in (
            ("NEXTHINK_TOKEN_URL", NEXTHINK_TOKEN_URL),
            ("NEXTHINK_CLIENT_ID", NEXTHINK_CLIENT_ID),
            ("NEXTHINK_CLIENT_SECRET (or NEXTHINK_CLIENT_SECRET_FILE)", NEXTHINK_CLIENT_SECRET),
            ("NEXTHINK_NQL_EXECUTIONS_QUERY", NEXTHINK_NQL_EXECUTIONS_QUERY),
        )
        if not value
    ]
    if _missing:
        raise ImproperlyConfigured(f"With NEXTHINK_PLATFORM=infinity and NEXTHINK_API_URL, set {', '.join(_missing)}.")
# How long Nexthink keeps a request for a device that is offline (expiresInMinutes, 60 to 10,080).
NEXTHINK_EXPIRES_MINUTES = config.get_int(
    "NEXTHINK_EXPIRES_MINUTES",
    60,
    minimum=60,
    maximum=10080,
    doc="Infinity `expiresInMinutes`: how long Nexthink waits for an offline device (60 to 10080)",
)
# One Infinity API call (token, execute, NQL) is given up after connect + this many seconds.
NEXTHINK_API_TIMEOUT_SECONDS = config.get_int(
    "NEXTHINK_API_TIMEOUT_SECONDS",
    30,
    minimum=1,
    maximum=300,
    doc="Infinity: one call (token, execute, NQL) is given up after connect + this",
)
# An NQL read answered 429 waits its Retry-After and asks once more when it is at most this long.
NEXTHINK_NQL_RETRY_WAIT_SECONDS = config.get_int(
    "NEXTHINK_NQL_RETRY_WAIT_SECONDS",
    5,
    minimum=0,
    maximum=60,
    doc="Infinity: an NQL read answered 429 waits `Retry-After` and asks once more when that is at most this long (`0`: never); an execute is never resent",
)
if NEXTHINK_PLATFORM == "infinity":  # only Infinity reports the device's result, to be read back
    CELERY_BEAT_SCHEDULE["follow-up-runs"] = {
        "task": "actions.tasks.follow_up_runs",
        "schedule": FOLLOW_UP_INTERVAL_SECONDS,
        "options": {"expires": FOLLOW_UP_INTERVAL_SECONDS},
    }

# --- Logging ----------------------------------------------------------------------------------
config.section("Core")
LOG_LEVEL = config.get_choice(
    "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), upper=True, doc="the portal's own log lines"
)
LOG_FORMAT = config.get_choice(
    "LOG_FORMAT",
    "plain",
    ("plain", "json"),
    doc="`json`: one JSON object per line, with the request's and the run's ids (`request_id`, `run_id`)",
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Every line gets request_id and run_id ("-" when none): portal/logcontext.py.
    "filters": {"context": {"()": "portal.logcontext.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "portal.logcontext.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "actions": {"level": LOG_LEVEL},
        "portal": {"level": LOG_LEVEL},
        # urllib3 logs request lines at DEBUG; headers are never logged by it.
        "urllib3": {"level": "WARNING"},
    },
}

# --- Device resolution ------------------------------------------------------------------------
config.section("Devices")
# Which resolvers find an employee's devices, in order of precedence (actions/devices/resolution.py):
# "directory" (devices assigned in the admin or imported with import_devices) and "nxql" (asked
# of each connected Engine, cached in Device rows for NXQL_CACHE_TTL_SECONDS).
# On Infinity, "nql" asks the saved NEXTHINK_NQL_DEVICES_QUERY instead of each Engine's NXQL.
DEVICE_RESOLVER_NAMES = ("directory", "nxql", "nql")
DEVICE_RESOLVERS = config.get_list(
    "DEVICE_RESOLVERS",
    ["directory", "nql"] if NEXTHINK_PLATFORM == "infinity" else ["directory", "nxql"],
    doc="how an employee's devices are found, in order of precedence: some of `directory`, `nxql`, `nql`",
    shown="`directory,nxql` (Infinity: `directory,nql`)",
)
if (
    not DEVICE_RESOLVERS
    or len(set(DEVICE_RESOLVERS)) != len(DEVICE_RESOLVERS)
    or not set(DEVICE_RESOLVERS) <= set(DEVICE_RESOLVER_NAMES)
):
    raise ImproperlyConfigured(
        f"DEVICE_RESOLVERS must list some of directory, nxql, nql once each, got {DEVICE_RESOLVERS!r}."
    )


# The Nexthink user name of a Django user, as last_logged_on_user shows it: a template over the
# user's attributes (username, email, first_name, last_name, ...) plus email_local (email before @).
# Examples: CORP\{username}   {username}@corp.example   {email}
NXQL_USER_NAME_TEMPLATE = config.get_template(
    "NXQL_USER_NAME_TEMPLATE",
    "CORP\\{username}" if NEXTHINK_USES_SIMULATOR else "{username}",
    doc="the Nexthink user name (`last_logged_on_user`) of a Django user; fields are user attributes plus `email_local`",
    shown="`{username}` (simulator: `CORP\\{username}`)",
)
# Where each Engine's NXQL API is; fields: address, nxql_port, port, name, database_uid (from the
# Engine rows that sync_engines keeps). With the simulator, one process stands for every Engine.
NXQL_URL_TEMPLATE = config.get_template(
    "NXQL_URL_TEMPLATE",
    NEXTHINK_PORTAL_URL + "/_sim/engines/{database_uid}"
    if NEXTHINK_USES_SIMULATOR
    else "https://{address}:{nxql_port}",
    allowed={"address", "nxql_port", "port", "name", "database_uid"},
    doc="each Engine's NXQL base URL; fields `address`, `nxql_port`, `port`, `name`, `database_uid`",
    shown="`https://{address}:{nxql_port}`",
)
config.check_url(
    "NXQL_URL_TEMPLATE",
    NXQL_URL_TEMPLATE.format(address="engine", nxql_port=1671, port=443, name="engine", database_uid="0" * 32),
    ("http", "https"),
)
NXQL_USERNAME = config.get_str(
    "NXQL_USERNAME", NEXTHINK_USERNAME, doc="NXQL Basic auth user", shown="`NEXTHINK_USERNAME`"
)
NXQL_PASSWORD = config.get_secret(
    "NXQL_PASSWORD", NEXTHINK_PASSWORD, doc="NXQL Basic auth password", shown="`NEXTHINK_PASSWORD`"
)
NXQL_PLATFORMS = config.get_list("NXQL_PLATFORMS", ["windows"], doc="some of `windows`, `mac_os`, `mobile`")
if not NXQL_PLATFORMS or not set(NXQL_PLATFORMS) <= {"windows", "mac_os", "mobile"}:
    raise ImproperlyConfigured(f"NXQL_PLATFORMS must list some of windows, mac_os, mobile, got {NXQL_PLATFORMS!r}.")
NXQL_TIMEOUT_SECONDS = config.get_int("NXQL_TIMEOUT_SECONDS", 10, minimum=1, maximum=300, doc="per NXQL request")
NXQL_CACHE_TTL_SECONDS = config.get_int(
    "NXQL_CACHE_TTL_SECONDS",
    900,
    minimum=0,
    maximum=7 * 24 * 3600,
    doc="how long an NXQL answer about a user's devices is trusted",
)
# After every Engine answered about a user, do not ask again for this long (per process), even when
# they found nothing: a user without NXQL devices would otherwise query every Engine on every page.
NXQL_RECHECK_SECONDS = 60
# One page waits at most this long for all Engines together; an Engine that failed or was late is
# not asked again for NXQL_ENGINE_REST_SECONDS (per process).
NXQL_PAGE_BUDGET_SECONDS = config.get_int(
    "NXQL_PAGE_BUDGET_SECONDS",
    2,
    minimum=1,
    maximum=30,
    doc="a page waits at most this long for all Engines together; the late ones are named on the page",
)
NXQL_ENGINE_REST_SECONDS = config.get_int(
    "NXQL_ENGINE_REST_SECONDS",
    60,
    minimum=0,
    maximum=3600,
    doc="an Engine that failed or was late is not asked again for this long (per process)",
)

# --- Sign-in ----------------------------------------------------------------------------------
config.section("Sign-in")
# The company account through OpenID Connect (mozilla-django-oidc, actions/accounts/); local
# passwords for the demo and break-glass admins, throttled by django-axes; optionally an SSO
# proxy's header. Sessions end after an idle time and an absolute lifetime. README "Sign-in".
INSTALLED_APPS.append("axes")
# The proxy header is read right after the session's user is known; the session limits are checked
# after the messages are set up; axes, last, turns a lock-out into its page.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "actions.accounts.middleware.ProxyHeaderMiddleware",
)
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.messages.middleware.MessageMiddleware") + 1,
    "actions.accounts.middleware.SessionLimitsMiddleware",
)
MIDDLEWARE.insert(
    MIDDLEWARE.index("actions.accounts.middleware.SessionLimitsMiddleware") + 1,
    # After sign-in and the session limits: the audit trail's actor and address for this request.
    "portal.middleware.AuditMiddleware",
)
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
AUTHENTICATION_BACKENDS = [
    "actions.accounts.backends.PasswordThrottleBackend",  # axes, first: refuses a locked-out password sign-in before any check
    "actions.accounts.backends.LocalLoginBackend",
    "actions.accounts.backends.PortalOIDCBackend",
    "actions.accounts.backends.ProxyHeaderBackend",
]

OIDC_ISSUER = config.get_str(
    "OIDC_ISSUER",
    doc="the provider's issuer URL (https; http only on loopback); discovery is read from `{OIDC_ISSUER}/.well-known/openid-configuration`",
    shown="empty: no company sign-in",
).rstrip("/")
OIDC_ENABLED = OIDC_ISSUER != ""
OIDC_RP_CLIENT_ID = config.get_str(
    "OIDC_CLIENT_ID", doc="the portal's registration at the provider", must="with `OIDC_ISSUER`"
)
OIDC_RP_CLIENT_SECRET = config.get_secret("OIDC_CLIENT_SECRET", doc="its secret", must="with `OIDC_ISSUER`")
if OIDC_ENABLED:
    config.check_url("OIDC_ISSUER", OIDC_ISSUER, ("http", "https"))
    if OIDC_ISSUER.startswith("http://") and urlsplit(OIDC_ISSUER).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ImproperlyConfigured(f"OIDC_ISSUER must use https:// (http:// only on loopback), got {OIDC_ISSUER!r}.")
    if not (OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET):
        raise ImproperlyConfigured(
            "OIDC_CLIENT_ID and OIDC_CLIENT_SECRET (or OIDC_CLIENT_SECRET_FILE) are required with OIDC_ISSUER."
        )
    # Sign-out posts a form that ends on the provider's end_session_endpoint: CSP must allow it.
    SECURE_CSP["form-action"].append("{0.scheme}://{0.netloc}".format(urlsplit(OIDC_ISSUER)))
OIDC_RP_SCOPES = config.get_str("OIDC_SCOPES", "openid email profile", doc="must include `openid`")
if "openid" not in OIDC_RP_SCOPES.split():
    raise ImproperlyConfigured(f"OIDC_SCOPES must include openid, got {OIDC_RP_SCOPES!r}.")
OIDC_RP_SIGN_ALGO = config.get_str(
    "OIDC_SIGN_ALGO",
    "RS256",
    doc="the ID token's signature algorithm (asymmetric only: keys come from the provider's JWKS)",
)
if OIDC_RP_SIGN_ALGO not in {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"}:
    raise ImproperlyConfigured(
        f"OIDC_SIGN_ALGO must be an asymmetric JWS algorithm such as RS256, got {OIDC_RP_SIGN_ALGO!r}."
    )
OIDC_USERNAME_CLAIM = config.get_str(
    "OIDC_USERNAME_CLAIM", "preferred_username", doc="the claim that becomes the Django user name (`upn`, `email`...)"
)
OIDC_EMAIL_CLAIM = config.get_str("OIDC_EMAIL_CLAIM", "email", doc="the claim that holds the e-mail address")
OIDC_NAME_CLAIM = config.get_str("OIDC_NAME_CLAIM", "name", doc="the claim that holds the full name")
OIDC_GROUPS_CLAIM = config.get_str("OIDC_GROUPS_CLAIM", "groups", doc="the claim that lists the directory groups")
# Which directory groups the portal manages: `claim value=Django group`, comma-separated ("Field
# staff" alone means the same name on both sides). Only these follow the directory at each sign-in.
OIDC_GROUP_MAP = config.get_map(
    "OIDC_GROUP_MAP",
    doc="the directory groups the portal manages: `claim value=Django group`, comma-separated; a bare `Field staff` maps to the same name",
)
OIDC_CURATOR_GROUP = config.get_str(
    "OIDC_CURATOR_GROUP", doc='the claim value that makes a user a curator (staff, "Portal curators")'
)  # claim value: staff + "Portal curators"
OIDC_ANY_DEVICE_GROUP = config.get_str(
    "OIDC_ANY_DEVICE_GROUP", doc='the claim value that grants "Can run an action on any device"'
)  # claim value: may run on any device
OIDC_TIMEOUT = config.get_int("OIDC_TIMEOUT_SECONDS", 10, minimum=1, maximum=120, doc="per request to the provider")
# mozilla-django-oidc: code flow with PKCE (S256), state and nonce; the ID token is kept in the
# session for RP-initiated logout. Discovery replaces its OIDC_OP_* endpoint settings.
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_STORE_ID_TOKEN = True
OIDC_CREATE_USER = True
OIDC_VERIFY_SSL = True
ALLOW_LOGOUT_GET_METHOD = False

# Password sign-in: on for the demo, off by default in production once the company account works.
LOCAL_LOGIN = config.get_bool(
    "LOCAL_LOGIN",
    DEBUG or not OIDC_ENABLED,
    doc="sign-in with a portal password (demo, break-glass admins)",
    shown="`false` with `OIDC_ISSUER` and DEBUG off, else `true`",
)
LOGIN_FAILURE_LIMIT = config.get_int(
    "LOGIN_FAILURE_LIMIT",
    5,
    minimum=1,
    maximum=100,
    doc="password failures per user name or per address before a lock-out",
)
LOGIN_LOCKOUT_SECONDS = config.get_int(
    "LOGIN_LOCKOUT_SECONDS",
    900,
    minimum=60,
    maximum=7 * 24 * 3600,
    doc="a lock-out's length (also the window failures are counted in)",
)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=LOGIN_LOCKOUT_SECONDS)
# The window: failures are forgotten LOGIN_LOCKOUT_SECONDS after the last one; a lock-out lasts as long.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one reaching the limit locks
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "actions.security.client_address"
AXES_WHITELIST_CALLABLE = "actions.accounts.throttle.is_not_a_password_attempt"
AXES_LOCKOUT_CALLABLE = "actions.accounts.throttle.lockout_response"
AXES_VERBOSE = False  # the lock-out is logged once, as a security event (actions.security)

# The audit trail (django-auditlog, actions/audit.py). The address comes from actions.security.client_address
# (portal.middleware.AuditMiddleware), never from a header the client may forge; so does no correlation id.
AUDITLOG_CID_HEADER = None
AUDITLOG_DISABLE_ON_RAW_SAVE = False  # loaddata's rows are changes too
AUDITLOG_USE_FK_STRING_REPRESENTATION = True  # "owner: alice → bob", not the users' ids

# Sessions: signed out after this long without activity, and this long after signing in at most.
SESSION_IDLE_TIMEOUT_SECONDS = config.get_int(
    "SESSION_IDLE_TIMEOUT_SECONDS", 3600, minimum=60, doc="signed out after this long without activity"
)
SESSION_MAX_AGE_SECONDS = config.get_int(
    "SESSION_MAX_AGE_SECONDS", 10 * 3600, minimum=300, doc="signed out this long after signing in"
)
SESSION_COOKIE_AGE = SESSION_MAX_AGE_SECONDS
# Django's database sessions, read with a query compiled once (every signed-in request reads one).
SESSION_ENGINE = "actions.accounts.sessions"

# An SSO proxy's header (e.g. X-Remote-User), trusted only behind the TLS proxy and from its addresses.
REMOTE_USER_HEADER = config.get_str(
    "REMOTE_USER_HEADER", doc="an SSO proxy's header naming the user (e.g. `X-Remote-User`)"
)
REMOTE_USER_PROXY_ADDRESSES = config.get_list(
    "REMOTE_USER_PROXY_ADDRESSES", [], doc="the proxy's addresses, comma-separated", must="with `REMOTE_USER_HEADER`"
)
if REMOTE_USER_HEADER and not REMOTE_USER_PROXY_ADDRESSES:
    raise ImproperlyConfigured("REMOTE_USER_HEADER needs REMOTE_USER_PROXY_ADDRESSES (the proxy's own addresses).")


# --- Service desk tickets ("Get help from IT", actions/ticketing/) -------------------------------
config.section("Service desk tickets")
# How a person reaches the service desk: every "Contact your IT service desk" says it (footer, run
# page, e-mails). Unset, the portal names no way it does not know.
SERVICE_DESK_PHONE = config.get_str(
    "SERVICE_DESK_PHONE", doc='the service desk\'s phone number, shown wherever the portal says "contact IT"'
)
SERVICE_DESK_CHAT_URL = config.get_optional_url(
    "SERVICE_DESK_CHAT_URL", doc="a link to the service desk's chat (Teams, ServiceNow Virtual Agent...)"
)
SERVICE_DESK_HOURS = config.get_str(
    "SERVICE_DESK_HOURS", doc="when the service desk answers, with the time zone: `Mon-Fri 8:00-18:00 CET`"
)
TICKETING_BACKENDS = ("none", "email", "servicenow", "webhook")
TICKETING = config.get_choice(
    "TICKETING", "none", TICKETING_BACKENDS, doc='where "Get help from IT" opens a ticket (see "Service desk tickets")'
)
# A ticket is tried this many times, for at most this long after the employee asked; then it fails
# with a message and a "Try again" button.
TICKETING_MAX_ATTEMPTS = config.get_int(
    "TICKETING_MAX_ATTEMPTS", 5, minimum=1, maximum=20, doc="attempts per request for help before it fails"
)
TICKETING_DEADLINE_MINUTES = config.get_int(
    "TICKETING_DEADLINE_MINUTES",
    15,
    minimum=1,
    maximum=24 * 60,
    doc="no attempt starts later than this after the employee asked",
)
TICKETING_RETRY_BASE_SECONDS = config.get_int(
    "TICKETING_RETRY_BASE_SECONDS", 5, minimum=1, maximum=600, doc="backoff between attempts: the first wait"
)
TICKETING_RETRY_MAX_SECONDS = config.get_int(
    "TICKETING_RETRY_MAX_SECONDS", 120, minimum=1, maximum=3600, doc="backoff between attempts: the longest wait"
)
TICKETING_CONNECT_TIMEOUT_SECONDS = config.get_int(
    "TICKETING_CONNECT_TIMEOUT_SECONDS",
    5,
    minimum=1,
    maximum=60,
    doc="per HTTP request to the service desk: connecting",
)
TICKETING_READ_TIMEOUT_SECONDS = config.get_int(
    "TICKETING_READ_TIMEOUT_SECONDS",
    30,
    minimum=1,
    maximum=300,
    doc="per HTTP request to the service desk: waiting for the answer",
)
TICKETING_DEFAULT_CATEGORY = config.get_str(
    "TICKETING_DEFAULT_CATEGORY", "software", doc="ServiceNow category when the action sets none"
)
# ServiceNow. Unset SERVICENOW_INSTANCE_URL with DEBUG: the ServiceNow-like simulator that the Act API
# simulator also serves (http://127.0.0.1:8765/api/now/..., Basic portal/portal-demo).
SERVICENOW_USES_SIMULATOR = TICKETING == "servicenow" and not config.is_set("SERVICENOW_INSTANCE_URL")
if SERVICENOW_USES_SIMULATOR and not DEBUG and not NEXTHINK_SIMULATOR:
    raise ImproperlyConfigured("SERVICENOW_INSTANCE_URL is required with TICKETING=servicenow when DEBUG is off.")
SERVICENOW_INSTANCE_URL = config.get_url(
    "SERVICENOW_INSTANCE_URL",
    SIMULATOR_URL,
    doc="`https://<instance>.service-now.com`",
    shown="DEBUG: the simulator, `http://127.0.0.1:8765`",
    must="with `TICKETING=servicenow`",
).rstrip("/")
SERVICENOW_AUTH = config.get_choice("SERVICENOW_AUTH", "basic", ("basic", "oauth"), doc="`oauth`: client credentials")
SERVICENOW_USERNAME = config.get_str(
    "SERVICENOW_USERNAME",
    SIMULATOR_USERNAME if SERVICENOW_USES_SIMULATOR else "",
    doc="for `basic`: an integration user with the `itil` role (creates and reads incidents)",
    shown="simulator's",
    must="for `basic`",
)
SERVICENOW_PASSWORD = config.get_secret(
    "SERVICENOW_PASSWORD",
    SIMULATOR_PASSWORD if SERVICENOW_USES_SIMULATOR else "",
    doc="for `basic`: its password",
    shown="simulator's",
    must="for `basic`",
)
SERVICENOW_TOKEN_URL = config.get_url(
    "SERVICENOW_TOKEN_URL",
    SERVICENOW_INSTANCE_URL + "/oauth_token.do",
    doc="for `oauth`",
    shown="`<instance>/oauth_token.do`",
)
SERVICENOW_CLIENT_ID = config.get_str(
    "SERVICENOW_CLIENT_ID", doc="for `oauth`: an Application Registry entry", must="for `oauth`"
)
SERVICENOW_CLIENT_SECRET = config.get_secret(
    "SERVICENOW_CLIENT_SECRET", doc="for `oauth`: its secret", must="for `oauth`"
)
# What caller_id carries: the employee's e-mail (or user name when they have none), or the user name.
SERVICENOW_CALLER_FIELD = config.get_choice(
    "SERVICENOW_CALLER_FIELD",
    "email",
    ("email", "username"),
    doc="what `caller_id` carries: the employee's e-mail (their user name if they have none), or the user name",
)
SERVICENOW_VERIFY_TLS = config.get_bool("SERVICENOW_VERIFY_TLS", True, doc="never `false` in production")
TICKETING_WEBHOOK_URL = config.get_str(
    "TICKETING_WEBHOOK_URL", doc="where the webhook posts", must="with `TICKETING=webhook`"
)
TICKETING_WEBHOOK_SECRET = config.get_secret(
    "TICKETING_WEBHOOK_SECRET", doc="the HMAC key", must="with `TICKETING=webhook`"
)
TICKETING_WEBHOOK_REFERENCE_FIELD = config.get_str(
    "TICKETING_WEBHOOK_REFERENCE_FIELD",
    "reference",
    doc="dotted path of the ticket reference in the webhook's JSON answer, e.g. `result.number`",
)
TICKETING_EMAIL_TO = config.get_list(
    "TICKETING_EMAIL_TO", [], doc="the service desk's address(es), comma-separated", must="with `TICKETING=email`"
)
if TICKETING == "servicenow" and not SERVICENOW_USES_SIMULATOR:
    if SERVICENOW_AUTH == "basic" and not (SERVICENOW_USERNAME and SERVICENOW_PASSWORD):
        raise ImproperlyConfigured("TICKETING=servicenow needs SERVICENOW_USERNAME and SERVICENOW_PASSWORD(_FILE).")
    if SERVICENOW_AUTH == "oauth" and not (SERVICENOW_CLIENT_ID and SERVICENOW_CLIENT_SECRET):
        raise ImproperlyConfigured(
            "SERVICENOW_AUTH=oauth needs SERVICENOW_CLIENT_ID and SERVICENOW_CLIENT_SECRET(_FILE)."
        )
if TICKETING == "webhook":
    config.check_url("TICKETING_WEBHOOK_URL", TICKETING_WEBHOOK_URL, ("http", "https"))
    if not TICKETING_WEBHOOK_SECRET:
        raise ImproperlyConfigured(
            "TICKETING=webhook needs TICKETING_WEBHOOK_SECRET (or TICKETING_WEBHOOK_SECRET_FILE)."
        )
if TICKETING == "email" and not TICKETING_EMAIL_TO:
    raise ImproperlyConfigured("TICKETING=email needs TICKETING_EMAIL_TO (the service desk's address).")
if TICKETING == "email" and "default" not in MAILERS:
    raise ImproperlyConfigured("TICKETING=email needs EMAIL_URL: without it the portal sends no e-mail.")
# A ticket links to the run at PORTAL_BASE_URL, never at the Host a request named.
if TICKETING != "none" and not DEBUG and not config.is_set("PORTAL_BASE_URL"):
    raise ImproperlyConfigured(f"PORTAL_BASE_URL is required with TICKETING={TICKETING}: tickets link to the run.")

# --- Monitoring (/metrics for Prometheus; README "Monitoring") ----------------------------------------
config.section("Monitoring")
METRICS_TOKEN = config.get_secret(
    "METRICS_TOKEN",
    doc="the bearer token Prometheus sends to read `/metrics`; unset: no `/metrics` (404)",
)
# Read by prometheus_client itself from the environment when it is imported (.env values are put in
# the environment above, before it): documented and checked here.
PROMETHEUS_MULTIPROC_DIR = config.get_str(
    "PROMETHEUS_MULTIPROC_DIR",
    doc="a folder shared by the web and worker processes of one host, emptied before they start: "
    "`/metrics` then adds up what all of them counted (else each process counts alone)",
)
if PROMETHEUS_MULTIPROC_DIR and not Path(PROMETHEUS_MULTIPROC_DIR).is_dir():
    raise ImproperlyConfigured(f"PROMETHEUS_MULTIPROC_DIR: {PROMETHEUS_MULTIPROC_DIR!r} is not a folder.")
