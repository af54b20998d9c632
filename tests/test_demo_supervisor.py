"""bin/demo's supervisor: a program that dies is started again; Ctrl-C ends everything quietly."""

import os
import signal
import subprocess
import sys
import textwrap

from tests.worker import ROOT, wait_for

SCRIPT = textwrap.dedent(
    """
    import sys
    from simulators.management.commands.demo import supervise

    class Out:
        def write(self, text):
            print(text, flush=True)

    supervise(
        {
            "dies": [sys.executable, "-c", "import sys; sys.exit(3)"],
            "sleeper": [sys.executable, "-c", "import time; print('sleeper up', flush=True); time.sleep(120)"],
        },
        cwd=".",
        out=Out(),
        poll=0.1,
    )
    """
)


def test_a_dead_program_is_restarted_and_ctrl_c_ends_quietly(tmp_path):
    log_path = tmp_path / "supervisor.log"
    with log_path.open("w") as log:
        # Its own process group, like a terminal's foreground job: Ctrl-C goes to the whole group.
        supervisor = subprocess.Popen(
            [sys.executable, "-c", SCRIPT], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_for(lambda: "dies started again." in log_path.read_text(), timeout=30)
            wait_for(lambda: "sleeper up" in log_path.read_text(), timeout=30)
            os.killpg(supervisor.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
            code = supervisor.wait(timeout=30)
        finally:
            if supervisor.poll() is None:
                supervisor.kill()
    output = log_path.read_text()
    assert code == 0
    assert "dies stopped (exit 3); starting it again in 1 s." in output
    assert "Stopping..." in output
    assert "Traceback" not in output and "CommandError" not in output
    # The children went with it: nothing is left running.
    assert wait_for(
        lambda: "time.sleep(120)" not in subprocess.run(["ps", "ax"], capture_output=True, text=True).stdout
    )
