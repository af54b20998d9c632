import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from portal.heartbeat import WorkerHeartbeat  # noqa: E402 - after the app, whose config it needs

app.steps["worker"].add(WorkerHeartbeat)
