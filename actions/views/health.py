import logging

from celery import current_app
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from actions.models import Heartbeat

log = logging.getLogger(__name__)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        log.exception("healthz: database unreachable")
        return False


def _broker_ok() -> bool:
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        log.warning("healthz: broker unreachable", exc_info=True)
        return False


def _alive(names: tuple[str, ...]) -> dict[str, dict]:
    """Whether each background process wrote its heartbeat lately (portal/heartbeat.py)."""
    try:
        seen = dict(Heartbeat.objects.filter(name__in=names).values_list("name", "seen_at"))
    except Exception:
        log.exception("healthz: heartbeats unreadable")
        seen = {}
    now = timezone.now()
    report = {}
    for name in names:
        ago = (now - seen[name]).total_seconds() if name in seen else None
        report[name] = {
            "alive": ago is not None and ago <= settings.HEARTBEAT_STALE_SECONDS,
            "seen_seconds_ago": ago and round(ago),
        }
    return report


@login_not_required
@never_cache
@require_safe  # GET or HEAD: load balancers probe with either
def healthz(request):
    """For load balancers and operators. 200 when the web side can serve (database and broker
    answer), 503 otherwise; and whether a worker and beat were alive lately ("degraded" if not: runs
    wait, but pages still work). No secrets, no sign-in, whatever the Host header."""
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    processes = _alive(("worker", "beat")) if checks["database"] else {}
    serving = all(checks.values())
    running = serving and all(process["alive"] for process in processes.values())
    status = "ok" if running else "degraded" if serving else "unavailable"
    return JsonResponse({"status": status, "checks": checks, "processes": processes}, status=200 if serving else 503)
