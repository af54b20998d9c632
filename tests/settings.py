"""Test settings: the real settings, with a test key and a fast password hasher."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault("NEXTHINK_SIMULATOR", "true")
if "PORTAL_VAR_DIR" not in os.environ:
    # One folder per test session (SQLite test database, embedded broker), so that two sessions on
    # one machine never share them. Worker processes started by tests inherit it from the environment.
    os.environ["PORTAL_VAR_DIR"] = tempfile.mkdtemp(prefix="portal-tests-")
    atexit.register(shutil.rmtree, os.environ["PORTAL_VAR_DIR"], ignore_errors=True)

from portal.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Static files straight from static/, without collectstatic.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405

# A file, not memory, so that a Celery worker process started by a test sees the same test database.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}  # noqa: F405

# NXQL goes nowhere unless a test points it at a simulator (port 9 refuses at once).
NXQL_URL_TEMPLATE = "http://127.0.0.1:9/{database_uid}"

# Each test decides for itself whether NXQL answers are remembered between page views.
NXQL_RECHECK_SECONDS = 0
NXQL_ENGINE_REST_SECONDS = 0

# Tests make many runs for one employee; the fair-use tests set these limits themselves (a process a
# test starts may get them from its environment).
if "RUN_MAX_IN_FLIGHT_PER_USER" not in os.environ:
    RUN_MAX_IN_FLIGHT_PER_USER = 10_000
if "RUN_RATE_LIMIT_COUNT" not in os.environ:
    RUN_RATE_LIMIT_COUNT = 10_000

# A mailer, as with EMAIL_URL set; the test runner keeps the mails in memory (mailoutbox).
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}

# Worker processes started by tests wait less for Nexthink's answer than production does.
if os.environ.get("TEST_NEXTHINK_READ_MARGIN_SECONDS"):
    NEXTHINK_READ_MARGIN_SECONDS = int(os.environ["TEST_NEXTHINK_READ_MARGIN_SECONDS"])
