"""Bench-only settings: the production settings, plus a bare signed-in "hello" view (bench/urls.py).

Everything else comes from the environment exactly as in production (bench/harness.py sets it).
"""

import os

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# BENCH_COLD_CARDS=1: the caches keep nothing, so every view reads the first page's rows and renders
# its cards: the catalog with a cold cache.
if os.environ.get("BENCH_COLD_CARDS") == "1":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}

# BENCH_KOMBU_FILESYSTEM=1 (bench/broker_soak.py --kombu): filesystem:// is kombu's own transport
# again, which portal/celery.py replaced with portal/filesystem_transport.py: the "before" figures.
if os.environ.get("BENCH_KOMBU_FILESYSTEM") == "1":
    from kombu import transport as _kombu_transport

    _kombu_transport.TRANSPORT_ALIASES["filesystem"] = "kombu.transport.filesystem:Transport"
    _kombu_transport._transport_cache.pop("filesystem", None)

# The harness needs to know when a Celery worker is ready without raising its log level (the
# production command logs at WARNING, which prints nothing at start-up): the worker touches a file.
if os.environ.get("BENCH_READY_FILE"):
    from pathlib import Path

    from celery.signals import worker_ready

    @worker_ready.connect(weak=False)
    def _touch_ready_file(**_kwargs):
        Path(os.environ["BENCH_READY_FILE"]).touch()
