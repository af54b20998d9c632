"""Insights with a year of runs: how long the admin page's queries take (issue 12, item 5).

    .venv/bin/python bench/insights.py --database-url postgres://postgres@127.0.0.1:5432/bench_insights
    .venv/bin/python bench/insights.py --employees 50 --runs 5000        # a small SQLite check

Seeds the database (migrated first) with `--employees` users, `--actions` actions and `--runs` runs
spread over the last 365 days (statuses, "did this fix it?" answers and tickets in realistic shares,
fixed random seed), then times each figure set of the insights page (per action; per day by
outcome) over the last 30 days and over the whole year: the median of `--reps` repetitions, with
PostgreSQL's EXPLAIN (ANALYZE) of each query. Default database: SQLite in var/bench/insights.sqlite3
(created afresh). With `--reuse` an already seeded database is measured again without seeding.
Results go to var/bench/insights.json.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=f"sqlite:///{ROOT / 'var' / 'bench' / 'insights.sqlite3'}")
    parser.add_argument("--employees", type=int, default=1000)
    parser.add_argument("--actions", type=int, default=40)
    parser.add_argument("--runs", type=int, default=500_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="measure an already seeded database again")
    return parser.parse_args()


def setup(database_url: str, fresh: bool) -> None:
    if database_url.startswith("sqlite:///") and fresh:
        path = Path(database_url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
    os.environ.update(
        DATABASE_URL=database_url,
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789"),
        NEXTHINK_SIMULATOR="true",
        HTTPS="false",
        DJANGO_SETTINGS_MODULE="portal.settings",
        TICKETING="none",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def seed(args) -> None:
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.db import transaction
    from django.utils import timezone

    from actions.models import RemoteAction, Run, Ticket

    rng = random.Random(12)
    password = make_password(None)
    User.objects.bulk_create(
        [
            User(username=f"employee{n}", email=f"employee{n}@corp.example", password=password)
            for n in range(args.employees)
        ],
        batch_size=5000,
    )
    users = list(User.objects.values_list("pk", flat=True))
    RemoteAction.objects.bulk_create(
        [
            RemoteAction(name=f"Action {n}", slug=f"action-{n}", nexthink_uid=uuid.uuid4(), enabled=True)
            for n in range(args.actions)
        ]
    )
    actions = list(RemoteAction.objects.values_list("pk", "name", "nexthink_uid"))
    weights = [1 / (n + 1) for n in range(len(actions))]  # a few actions run most
    statuses = ["sent"] * 70 + ["partial"] * 5 + ["failed"] * 15 + ["unknown"] * 5 + ["queued"] * 5
    now = timezone.now()
    done, batch_size = 0, 5000
    while done < args.runs:
        runs, tickets = [], []
        for _ in range(min(batch_size, args.runs - done)):
            pk, name, uid = rng.choices(actions, weights)[0]
            status = rng.choice(statuses)
            reached = status in ("sent", "partial")
            fixed = (rng.random() < 0.75) if reached and rng.random() < 0.4 else None
            created = now - timedelta(seconds=rng.uniform(0, 365 * 86400))
            run = Run(
                id=uuid.uuid4(),
                user_id=rng.choice(users),
                action_id=pk,
                action_name=name,
                action_uid=uid,
                device_uid=f"{rng.getrandbits(128):032x}",
                timeout_seconds=60,
                status=status,
                fixed=fixed,
            )
            runs.append(run)
            if fixed is False and rng.random() < 0.5 or status in ("failed", "unknown") and rng.random() < 0.2:
                tickets.append(
                    Ticket(run=run, backend="servicenow", state="created", number="INC", requested_at=created)
                )
        with transaction.atomic():
            Run.objects.bulk_create(runs)  # created_at is stamped now (auto_now_add): spread_created_at
            Ticket.objects.bulk_create(tickets)
        done += len(runs)
        print(f"seeded {done} runs", file=sys.stderr)


def spread_created_at() -> None:
    """bulk_create stamps created_at (auto_now_add): spread the runs over the year again, in SQL."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "UPDATE actions_run SET created_at = now() - (('x' || substr(replace(id::text, '-', ''), 1, 8))::bit(32)::bigint"
                " % 31536000) * interval '1 second'"
            )
        else:
            cursor.execute(
                "UPDATE actions_run SET created_at = datetime('now', '-' || (abs(random()) % 31536000) || ' seconds')"
            )


def measure(args) -> dict:
    from django.db import connection
    from django.utils import timezone

    from actions import insights

    today = timezone.localdate()
    periods = {"30 days": insights.default_period(), "365 days": insights.Period(today - timedelta(days=364), today)}
    figures = {
        "per action": insights.figures_by_action,  # its counts and its problems
        "problems": insights.problems_by_action,
        "per day": insights.runs_per_day,
    }
    results = {}
    for pname, period in periods.items():
        for fname, function in figures.items():
            times = []
            for _ in range(args.reps):
                started = time.perf_counter()
                function(period)
                times.append((time.perf_counter() - started) * 1000)
            results[f"{fname}, {pname}"] = {"median_ms": round(statistics.median(times), 1), "all_ms": times}
            print(f"{fname:>10}, {pname:>8}: median {statistics.median(times):8.1f} ms over {args.reps}")
    if connection.vendor == "postgresql":
        for fname, queryset in (
            ("per action", insights.action_query(periods["30 days"])),
            ("per day", insights.day_query(periods["30 days"])),
            ("problems", insights.problems_sql(periods["365 days"])),
        ):
            with connection.cursor() as cursor:
                sql, params = queryset if isinstance(queryset, tuple) else queryset.query.sql_with_params()
                cursor.execute("EXPLAIN ANALYZE " + sql, params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            results[f"plan {fname}"] = plan
            print(plan)
    return results


def main():
    args = parse_args()
    setup(args.database_url, fresh=not args.reuse)
    from actions.models import Run

    if not (args.reuse and Run.objects.exists()):
        started = time.perf_counter()
        seed(args)
        spread_created_at()
        print(f"seeded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    results = {"runs": Run.objects.count(), "database": args.database_url.split("@")[-1]} | measure(args)
    out = ROOT / "var" / "bench" / "insights.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"results in {out}")


if __name__ == "__main__":
    main()
