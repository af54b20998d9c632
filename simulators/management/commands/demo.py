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
        programs = demo_programs(host=options["host"], port=options["port"])
        url = f"http://{options['host']}:{options['port']}/"
        self.stdout.write(self.style.SUCCESS(f"\nFix my device is starting at {url}"))
        # Each platform's demo has its own folder (portal.config.default_var_dir): name the one in use.
        self.stdout.write(f"Nexthink {settings.NEXTHINK_PLATFORM} demo; its data, broker and mail: {settings.VAR_DIR}")
        self.stdout.write(
            "Sign in as alice / alice-demo (one device), bob / bob-demo (two devices), dana / dana-demo (a Mac), "
            "admin / admin-demo (IT)."
        )
        # Imported here: the supervisor below is also used before Django is set up (its own test, bench/).
        from simulators.management.commands.load_demo import DEMO_API_TOKEN

        self.stdout.write(f"Integration API: {url}api/v1/docs, demo token {DEMO_API_TOKEN} (README: Integration API).")
        self.stdout.write("Press Ctrl-C to stop everything.\n")
        supervise(programs, cwd=settings.BASE_DIR, out=self.stdout)


def demo_programs(*, host: str, port: int, sim_port: int = 8765) -> dict[str, list[str]]:
    """The demo's processes and their commands (bench/broker_soak.py runs the same ones)."""
    manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
    celery = [sys.executable, "-m", "celery", "-A", "portal"]
    programs = {
        "simulator": [*manage, "act_simulator", "--port", str(sim_port)] if settings.NEXTHINK_USES_SIMULATOR else None,
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
        "web": [*manage, "runserver", "--noreload", f"{host}:{port}"],
    }
    return {name: cmd for name, cmd in programs.items() if cmd}


def supervise(programs: dict[str, list[str]], *, cwd, out, poll: float = 0.5) -> None:
    """Run the programs until Ctrl-C or SIGTERM; a program that dies is started again, after a pause
    that doubles (1 s up to 30 s) while it keeps dying. Children get their own process group, so a
    Ctrl-C in the terminal reaches only this supervisor, which then stops them in order."""
    children = {name: start(cmd, cwd) for name, cmd in programs.items()}
    pause = dict.fromkeys(programs, 1.0)
    restart_at: dict[str, float] = {}
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    try:
        while not stopping:
            now = time.monotonic()
            for name, child in children.items():
                if name in restart_at:
                    if now >= restart_at[name]:
                        children[name] = start(programs[name], cwd)
                        del restart_at[name]
                        out.write(f"{name} started again.")
                elif child.poll() is not None:
                    restart_at[name] = now + pause[name]
                    out.write(f"{name} stopped (exit {child.returncode}); starting it again in {pause[name]:.0f} s.")
                    pause[name] = min(pause[name] * 2, 30.0)
            time.sleep(poll)
    finally:
        out.write("\nStopping...")
        stop_all(children.values())


def start(cmd: list[str], cwd) -> subprocess.Popen:
    # Our own programs; a session of their own so that the terminal's Ctrl-C is ours to pass on.
    return subprocess.Popen(cmd, cwd=cwd, env=os.environ.copy(), start_new_session=True)  # noqa: S603


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
