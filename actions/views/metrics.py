"""/metrics: what the portal did and what it holds now, for Prometheus, behind METRICS_TOKEN.

The counters and histograms come from actions/metrics.py (every process of this host with
PROMETHEUS_MULTIPROC_DIR); the states are read here, at each scrape: runs in flight by status and
the age of the oldest, the messages waiting in each broker queue, the age of the worker's and beat's
heartbeats. No token set: 404, as if there were no such page. A wrong or missing token: 401.
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from actions import broker, metrics
from actions.insights import runs_in_flight_now
from actions.models import Heartbeat

log = logging.getLogger(__name__)
PROCESSES = ("worker", "beat")


class PortalState(Collector):
    """The gauges read at scrape time: nothing to keep in step across processes."""

    def collect(self):
        now = timezone.now()
        in_flight = GaugeMetricFamily("portal_runs_in_flight", "Runs not final yet, by status.", labels=["status"])
        oldest = GaugeMetricFamily(
            "portal_runs_oldest_in_flight_seconds", "Age of the oldest run in each status in flight.", labels=["status"]
        )
        counts = {status: (n, at) for status, n, at in runs_in_flight_now()}
        for status in ("queued", "retrying", "sending", "following"):
            n, at = counts.get(status, (0, None))
            in_flight.add_metric([status], n)
            oldest.add_metric([status], max((now - at).total_seconds(), 0.0) if at is not None else 0.0)
        yield in_flight
        yield oldest

        waiting = GaugeMetricFamily(
            "portal_broker_waiting_messages",
            "Messages waiting in each broker queue (-1: the broker did not answer).",
            labels=["queue"],
        )
        for queue in (settings.CELERY_TASK_DEFAULT_QUEUE, settings.MAINTENANCE_QUEUE):
            count = broker.waiting(queue)
            waiting.add_metric([queue], -1 if count is None else count)
        yield waiting

        heartbeat = GaugeMetricFamily(
            "portal_heartbeat_age_seconds",
            "Seconds since each background process last wrote its heartbeat (absent: never).",
            labels=["process"],
        )
        for name, seen_at in Heartbeat.objects.filter(name__in=PROCESSES).values_list("name", "seen_at"):
            heartbeat.add_metric([name], max((now - seen_at).total_seconds(), 0.0))
        yield heartbeat


def _token_ok(request) -> bool:
    given = request.headers.get("Authorization", "")
    scheme, _, token = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode())


@login_not_required
@never_cache
@require_safe
def metrics_view(request):
    if not settings.METRICS_TOKEN:
        raise Http404
    if not _token_ok(request):
        response = HttpResponse("A valid bearer token is needed.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics.exposition([PortalState()])
    return HttpResponse(body, content_type=content_type)
