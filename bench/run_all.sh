#!/usr/bin/env bash
# Every figure of bench/README.md, one after the other, then the results table (about 15 minutes on
# a 2-core machine; each script is also bounded by `timeout`). The growth benchmark is separate
# (bench/growth.py, about 6 minutes). Needs PostgreSQL on 127.0.0.1:5432 (trust or BENCH_DATABASE_URL)
# and Redis on 127.0.0.1:6379 (BENCH_REDIS_URL); installs wrk with apt-get when it is missing and this
# runs as root. Results: var/bench/*.json, logs: var/bench/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] && .venv/bin/python -c 'import psycopg_pool' 2>/dev/null || bin/venv
for script in run_cost request_cost catalog_load dispatch_latency burst scale_out; do
  echo
  echo "== bench/$script.py"
  timeout 900 .venv/bin/python "bench/$script.py"
done
echo
echo "== results"
.venv/bin/python bench/report.py
