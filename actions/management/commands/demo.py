"""Run the whole portal on its embedded default: simulator, worker, beat and web server in one go."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Migrate, load the demo data, then run the simulator, a worker, beat and the web server. Ctrl-C stops all."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="web server port (default 8000)")
        parser.add_argument("--host", default="127.0.0.1", help="web server address (default 127.0.0.1)")

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("The demo runs with DEBUG=true only (bin/demo sets it).")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("load_demo")
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        celery = [sys.executable, "-m", "celery", "-A", "portal"]
        programs = {
            "simulator": [*manage, "act_simulator", "--port", "8765"] if settings.NEXTHINK_USES_SIMULATOR else None,
            "worker": [
                *celery,
                "worker",
                "--pool",
                "threads",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            "beat": [*celery, "beat", "--loglevel", "INFO"],
            "web": [*manage, "runserver", "--noreload", f"{options['host']}:{options['port']}"],
        }
        children = {
            name: subprocess.Popen(cmd, cwd=settings.BASE_DIR, env=os.environ.copy())  # noqa: S603 - our own programs
            for name, cmd in programs.items()
            if cmd
        }
        url = f"http://{options['host']}:{options['port']}/"
        self.stdout.write(self.style.SUCCESS(f"\nFix my device is starting at {url}"))
        self.stdout.write(
            "Sign in as alice / alice-demo (one device), bob / bob-demo (two devices), admin / admin-demo (IT)."
        )
        self.stdout.write("Press Ctrl-C to stop everything.\n")
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            while True:
                for name, child in children.items():
                    if child.poll() is not None:
                        raise CommandError(f"{name} stopped (exit {child.returncode}); stopping the others.")
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping...")
        finally:
            stop_all(children.values())


def stop_all(children) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
