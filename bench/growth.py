"""Growth: how the pages and jobs an employee, a worker and IT touch behave as runs pile up.

    .venv/bin/python bench/growth.py [--max-runs 1000000] [--reps 15]

Seeds runs through SQL (each with one Engine result and one attempt; statuses, actions and dates
spread over a year; ~1,000 employees, the bench employee a heavy one with 5 % of all runs) in steps of
10^3, 10^4, 10^5, 10^6, and after each step measures in this process (Django's test client against
PostgreSQL, no web server) the median time of each page and job over `reps` calls. Reports each one's
time at every size and its growth factor (largest / smallest). Target: no growth beyond 2x.
The machine is shared, so each call is followed by one of the bare signed-in view (bench/urls.py),
whose cost does not depend on the runs: its growth over the same calls ("baseline's") is the load's.
Far from 1.00x, that row met a burst of other work and its growth says little; rerun it.
Bounded: seeding 10^6 runs and measuring take a few minutes on a 2-core machine.

On the connections and binding production uses: the pool (DATABASE_POOL_MAX_SIZE=1 here, so every
statement lands on the same connection, which is checked), parameters bound on the server and
statements prepared after `prepare_threshold` runs. PostgreSQL plans a prepared statement for its
values 5 times, then may switch to a generic plan, blind to the values: a statement whose generic plan
is slow shows only from its ~11th run on a connection. So each page or job first runs WARM_UP times
untimed, then `reps` (at least 12) timed times; the median and the slowest of those are reported.

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bench), BENCH_REDIS_URL
(flushed; default redis://127.0.0.1:6379/14), BENCH_SIM_PORT and BENCH_WEB_PORT (only checked to be
free here: 38765, 38000).
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import harness as h

EMPLOYEES = 1000
# psycopg prepares a statement on its 6th run (prepare_threshold 5); PostgreSQL then plans it for its
# values 5 times and from the 11th run may use a generic plan: the timed calls all come after that.
WARM_UP = 10
MIN_REPS = 12
HEAVY_SHARE = 0.05  # the bench employee's share of all runs


def seed_employees() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email,
                                   is_staff, is_active, date_joined)
            SELECT '!', false, 'bench-user-' || n, 'Employee', n::text, 'bench-user-' || n || '@corp.example',
                   false, true, now()
            FROM generate_series(1, %s) AS n
            ON CONFLICT (username) DO NOTHING
            """,
            [EMPLOYEES],
        )


def seed_runs(count: int, heavy_user_id: int, device_id: int) -> None:
    """`count` more runs, their Engine results and attempts, in one statement each."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE TEMP TABLE new_runs ON COMMIT DROP AS
            WITH a AS (SELECT array_agg(id) AS ids FROM actions_remoteaction)
            SELECT gen_random_uuid() AS id,
                   CASE WHEN random() < %(heavy)s THEN %(heavy_user)s
                        ELSE (SELECT min(id) FROM auth_user WHERE username LIKE 'bench-user-%%')
                             + floor(random() * %(employees)s)::int END AS user_id,
                   a.ids[1 + floor(random() * array_length(a.ids, 1))::int] AS action_id,
                   (ARRAY['sent','sent','sent','sent','partial','failed','unknown','done','expired'])
                       [1 + floor(random() * 9)::int] AS status,
                   now() - random() * interval '365 days' AS created_at
            FROM generate_series(1, %(count)s) CROSS JOIN a
            """,
            {"heavy": HEAVY_SHARE, "heavy_user": heavy_user_id, "employees": EMPLOYEES, "count": count},
        )
        cursor.execute(
            """
            INSERT INTO actions_run (id, user_id, action_id, device_id, idempotency_key, action_name, action_uid,
                action_nql_id, device_uid, device_name, timeout_seconds, engine_uids, params, status, attempts,
                max_attempts, error_code, error_kind, error_message, created_at, sending_at, finished_at,
                request_id, device_status, device_status_details, outputs, checks, feedback_comment, action_kind,
                reason, decision_comment)
            SELECT r.id, r.user_id, r.action_id, %(device)s, '', 'Bench action ' || left(r.id::text, 4),
                   gen_random_uuid(), '', md5(r.id::text), 'LAPTOP-' || upper(left(md5(r.user_id::text), 6)),
                   60, '[]'::jsonb, '{}'::jsonb, r.status, 1, 5, '', '', '', r.created_at,
                   r.created_at + interval '1 second', r.created_at + interval '3 seconds', '', '', '', '{}'::jsonb,
                   0, '', 'remote_action', '', ''
            FROM new_runs r
            """,
            {"device": device_id},
        )
        cursor.execute(
            """
            INSERT INTO actions_engineresult (run_id, database_uid, engine_name, code, message)
            SELECT id, '86acc8511251ec444d3a75bac33a23c7', 'engine-emea', 'ok', '' FROM new_runs
            """
        )
        cursor.execute(
            """
            INSERT INTO actions_runattempt (run_id, number, started_at, finished_at, outcome, error_code, error_message)
            SELECT id, 1, created_at, created_at + interval '3 seconds', 'answered', '', '' FROM new_runs
            """
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def seeded_device_name(user_id: int) -> str:
    """The device name seed_runs gives an employee's runs."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 'LAPTOP-' || upper(left(md5(%s::text), 6))", [str(user_id)])
        return cursor.fetchone()[0]


def backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def timed(name: str, call, reps: int, baseline) -> tuple[float, float, float]:
    """(median, slowest, the baseline's median) ms of `reps` calls after WARM_UP untimed ones, all
    on one connection; each call is followed by one of `baseline`, timed apart."""
    pid = backend_pid()
    for _ in range(WARM_UP):
        call()
    times, base = [], []
    for _ in range(reps):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        baseline()
        base.append((time.perf_counter() - started) * 1000)
    if backend_pid() != pid:
        h.fail(f"{name}: its calls ran on more than one connection, so a plan switch could hide")
    return h.median(times), max(times), h.median(base)


def measure(data: dict, reps: int) -> dict[str, tuple]:
    import secrets

    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    from actions.models import Run
    from actions.runs.lifecycle import database_now
    from actions.runs.reaper import runs_reap
    from actions.runs.selectors import cursor_of

    employee = Client(HTTP_HOST="127.0.0.1")
    employee.force_login(data["user"])
    admin = Client(HTTP_HOST="127.0.0.1")
    admin.force_login(User.objects.get(username="bench-admin"))
    mine = Run.objects.filter(user=data["user"]).order_by("created_at", "id")
    oldest = list(mine[:21])
    last_page = f"?before={cursor_of(oldest[-1])}" if len(oldest) > 20 else ""
    run = mine.last()
    some_user = User.objects.filter(username__startswith="bench-user-").order_by("pk")[500]
    changelist = reverse("admin:actions_run_changelist")
    # Device names as the runs remember them (seeded: one per employee; the heavy one's on 5 % of runs).
    some_name, heavy_name = (seeded_device_name(u.pk) for u in (some_user, data["user"]))
    action_url = reverse("action_detail", args=[h.DISPATCH_SLUG])

    def ok(response):
        if response.status_code not in (200, 302):
            h.fail(f"{response.request['PATH_INFO']} answered {response.status_code}")
        return response

    def submit():
        form = {"device": data["device"].uid, "idempotency_key": secrets.token_urlsafe(24)}
        ok(employee.post(action_url, form))

    pages = {
        "my runs, first page": lambda: ok(employee.get(reverse("my_runs"))),
        "my runs, last page": lambda: ok(employee.get(reverse("my_runs") + last_page)),
        "my runs, failed only": lambda: ok(employee.get(reverse("my_runs") + "?status=failed")),
        "run page": lambda: ok(employee.get(run.get_absolute_url())),
        "status JSON": lambda: ok(employee.get(reverse("run_status", args=[run.pk]))),
        "catalog": lambda: ok(employee.get(reverse("catalog"))),
        "submit (form POST)": submit,
        "reaper pass": runs_reap,
        "admin: runs list": lambda: ok(admin.get(changelist)),
        "admin: status filter": lambda: ok(admin.get(changelist, {"status__exact": "failed"})),
        "admin: search request UID": lambda: ok(admin.get(changelist, {"q": str(run.pk)})),
        "admin: search user": lambda: ok(admin.get(changelist, {"q": some_user.username})),
        "admin: search heavy user (5 %)": lambda: ok(admin.get(changelist, {"q": data["user"].username})),
        "admin: search device name": lambda: ok(admin.get(changelist, {"q": some_name})),
        "admin: search heavy device name": lambda: ok(admin.get(changelist, {"q": heavy_name})),
        "admin: search device name start": lambda: ok(admin.get(changelist, {"q": some_name[:10]})),
    }
    started = database_now()
    # The machine is shared: each call is paired with the bare signed-in view (bench/urls.py), whose
    # cost does not depend on the runs: its growth over the same calls tells the load's.
    hello = reverse("bench_hello")

    def baseline():
        ok(employee.get(hello))

    results = {name: timed(name, call, reps, baseline) for name, call in pages.items()}
    # How many runs each admin page lists: a search's answer fills up as runs pile up (1 → 100 rows).
    for name, call in pages.items():
        if name.startswith("admin:"):
            results[name] += (call().content.count(b'class="action-select"'),)
    # The runs "submit" made stay queued (no worker here): left in place, the next size's reaper pass
    # would find them overdue and hand them to the broker again, timing that instead of its queries.
    Run.objects.filter(user=data["user"], created_at__gte=started).delete()
    return results


def main() -> None:
    import os

    if {"-h", "--help"} & set(sys.argv):
        print(__doc__)
        return
    os.environ["DEVICE_RESOLVERS"] = "directory"  # the devices as seeded: no Engine's NXQL to ask here
    # One pooled connection, as production's (server-side binding, prepared statements): every call
    # of a page lands on it, so PostgreSQL's switch to a generic plan is met, not spread over two.
    os.environ["DATABASE_POOL_MAX_SIZE"] = "1"
    max_runs = h.arg_int("max-runs", 1_000_000)
    reps = h.arg_int("reps", 15)
    if reps < MIN_REPS:
        h.fail(f"--reps {reps}: at least {MIN_REPS}, so that a plan switch shows in the median")
    bench = h.Bench("growth", web=True)  # web: the static files the pages link to
    from django.contrib.auth.models import User

    data = h.seed(bench, visible=100, hidden=50)
    User.objects.filter(username="bench-admin").delete()
    User.objects.create_superuser("bench-admin", "bench-admin@corp.example", "bench-admin-pass")
    seed_employees()
    sizes, results, total = [], {}, 0
    size = 1000
    while size <= max_runs:
        h.log(f"seeding up to {size:,} runs")
        started = time.monotonic()
        seed_runs(size - total, data["user"].pk, data["device"].pk)
        total = size
        h.log(f"seeded in {time.monotonic() - started:.0f} s; measuring")
        results[size] = measure(data, reps)
        sizes.append(size)
        size *= 10
    names = list(results[sizes[0]])
    first, last = sizes[0], sizes[-1]

    def growth(name: str) -> float:
        return results[last][name][0] / results[first][name][0]

    def load_growth(name: str) -> float:  # the baseline's, over the same calls: the machine's load
        return results[last][name][2] / results[first][name][2]

    rows = [
        [
            name,
            *(f"{results[s][name][0]:.1f}" for s in sizes),
            f"{growth(name):.2f}x",
            f"{load_growth(name):.2f}x",
            f"{results[last][name][1]:.1f}",
            " → ".join(str(results[s][name][3]) for s in sizes) if len(results[first][name]) > 3 else "",
        ]
        for name in names
    ]
    headers = [
        "page or job (median ms)",
        *(f"{s:,} runs" for s in sizes),
        "growth",
        "baseline's",
        "slowest at the largest",
        "runs listed",
    ]
    print(h.table(headers, rows))
    worst = max(names, key=growth)
    h.log(
        f"worst growth: {worst}, {growth(worst):.2f}x (the baseline's over the same calls: {load_growth(worst):.2f}x)"
    )
    bench.save(
        {
            "sizes": sizes,
            "median_ms": {str(s): {n: r[0] for n, r in results[s].items()} for s in sizes},
            "slowest_ms": {str(s): {n: r[1] for n, r in results[s].items()} for s in sizes},
            "baseline_ms": {str(s): {n: r[2] for n, r in results[s].items()} for s in sizes},
            "admin_rows": {str(s): {n: r[3] for n, r in results[s].items() if len(r) > 3} for s in sizes},
            "reps": reps,
            "warm_up": WARM_UP,
        }
    )


if __name__ == "__main__":
    main()
