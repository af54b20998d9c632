#!/bin/sh
# The one entry point of the portal's image (deploy/Dockerfile), of deploy/compose.yaml and of
# tests/test_several_machines.py. Every setting comes from the environment (.env.example).
#
#   entrypoint.sh web       gunicorn on 0.0.0.0:$PORT (8000): $WEB_CONCURRENCY processes (4) x $WEB_THREADS threads (4)
#   entrypoint.sh worker    a Celery worker: threads pool, CELERY_WORKER_CONCURRENCY threads
#   entrypoint.sh beat      Celery beat; one per machine if you like: one leads, the others stand by
#   entrypoint.sh migrate   apply the migrations (once per upgrade, before the new code serves)
#   entrypoint.sh health [web|worker|beat]   the container's health check: exit 0 when healthy
#
# Arguments after the mode go to the program (`entrypoint.sh beat --schedule /tmp/schedule`).
# PYTHON names the interpreter (default: `python` on PATH, the image's virtualenv).
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
VAR="${PORTAL_VAR_DIR:-var}"
mode="${1:-}"
[ $# -gt 0 ] && shift

case "$mode" in
  web)
    exec "$PYTHON" -m gunicorn portal.wsgi --bind "0.0.0.0:${PORT:-8000}" \
      --workers "${WEB_CONCURRENCY:-4}" --threads "${WEB_THREADS:-4}" \
      --access-logfile - --graceful-timeout 30 --control-socket "$VAR/gunicorn.ctl" "$@"
    ;;
  worker)
    # A name of its own ($$ is the pid celery keeps through exec): several workers may share a host.
    exec "$PYTHON" -m celery -A portal worker --pool threads --without-gossip --without-mingle \
      --hostname "worker$$@%h" --loglevel "${LOG_LEVEL:-INFO}" "$@"
    ;;
  beat)
    exec "$PYTHON" -m celery -A portal beat --loglevel "${LOG_LEVEL:-INFO}" "$@"
    ;;
  migrate)
    exec "$PYTHON" manage.py migrate --noinput "$@"
    ;;
  health)
    # web: /healthz answers 200 ("ok" or "degraded": this process serves). worker, beat: the process
    # touched its file in the var folder within the last 90 s (portal/heartbeat.py).
    exec "$PYTHON" - "${1:-web}" "${PORT:-8000}" "$VAR" <<'PY'
import os, sys, time, urllib.request
role, port, var = sys.argv[1:4]
try:
    if role == "web":
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            sys.exit(0 if answer.status == 200 else 1)
    sys.exit(0 if time.time() - os.path.getmtime(os.path.join(var, f"{role}.alive")) < 90 else 1)
except Exception as exc:
    print(f"{role} unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
PY
    ;;
  *)
    echo "usage: $0 web|worker|beat|migrate|health [web|worker|beat] [arguments]" >&2
    exit 64
    ;;
esac
