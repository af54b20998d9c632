import os

from celery import Celery

from portal import filesystem_transport

# filesystem:// (the embedded broker) is kombu's transport with atomic writes, in every process.
filesystem_transport.use_for_filesystem_urls()

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from portal.heartbeat import WorkerHeartbeat  # noqa: E402 - after the app, whose config it needs

app.steps["worker"].add(WorkerHeartbeat)

from portal import logcontext  # noqa: E402

logcontext.connect_celery()  # the request's and the run's ids on the lines of each task
