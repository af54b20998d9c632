"""The embedded broker (portal/filesystem_transport.py): no process ever reads half a message.

A publisher is stopped halfway through writing a message (its file's `write` writes the first half,
then waits): consumers find nothing until it is finished, then the whole message. kombu's own
filesystem transport gives them the half (kombu#1551); in a worker that is "Unrecoverable error:
JSONDecodeError" and the worker exits.
"""

import json
import sys
import threading
from pathlib import Path
from queue import Empty

import pytest
from kombu import Connection
from kombu.transport import filesystem as kombu_filesystem
from kombu.transport import virtual

from actions.models import Run
from actions.runs.dispatch import run_enqueue
from actions.runs.reaper import waiting_messages
from actions.runs.states import is_final
from actions.runs.submit import run_submit
from portal import filesystem_transport
from tests.factories import EMEA, make_device, make_sim_action
from tests.worker import FILESYSTEM_BROKER, Worker, wait_for


class StoppedHalfway:
    """Patches `open` in a transport's module: the next message file written in `folder` gets its
    first half written, then its writer waits for `resume` (set it, or the test's end does)."""

    def __init__(self, monkeypatch, module, folder: Path):
        self.halfway = threading.Event()
        self.resume = threading.Event()
        self.folder = str(folder)
        real_open = open
        stopper = self

        class File:
            def __init__(self, f):
                self._f = f

            def __getattr__(self, name):
                return getattr(self._f, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self._f.close()

            def write(self, data):
                half = len(data) // 2
                self._f.write(data[:half])
                self._f.flush()
                stopper.halfway.set()
                stopper.resume.wait(60)
                return half + self._f.write(data[half:])

        def patched_open(file, mode="r", *args, **kwargs):
            f = real_open(file, mode, *args, **kwargs)
            if ("w" in mode or "x" in mode) and str(file).startswith(self.folder) and not self.halfway.is_set():
                return File(f)
            return f

        monkeypatch.setattr(module, "open", patched_open, raising=False)


@pytest.fixture(autouse=True)
def fresh_broker_state(monkeypatch):
    """kombu keeps the bindings it made in a process-wide state and skips writing them again: each
    test here has a broker folder of its own, so it gets a state of its own too."""
    monkeypatch.setattr(kombu_filesystem.Transport, "global_state", virtual.BrokerState())


def connection(folder: Path, transport) -> Connection:
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
    }
    return Connection("filesystem://", transport=transport, transport_options=options)


@pytest.mark.parametrize(
    "transport",
    [
        filesystem_transport.Transport,
        pytest.param(
            kombu_filesystem.Transport,
            marks=pytest.mark.xfail(raises=json.JSONDecodeError, strict=True, reason="kombu#1551: the bug fixed here"),
        ),
    ],
    ids=["portal", "kombu"],
)
def test_a_message_being_written_is_not_read_until_it_is_whole(monkeypatch, tmp_path, transport):
    module = sys.modules[transport.__module__]
    stopped = StoppedHalfway(monkeypatch, module, tmp_path / "queue")
    with connection(tmp_path, transport) as publisher, connection(tmp_path, transport) as consumer:
        outbox = publisher.SimpleQueue("celery")
        inbox = consumer.SimpleQueue("celery")
        writer = threading.Thread(target=outbox.put, args=({"run": "r" * 2000},))
        writer.start()
        try:
            assert stopped.halfway.wait(10)
            with pytest.raises(Empty):
                inbox.get_nowait()
        finally:
            stopped.resume.set()
            writer.join(10)
        message = inbox.get(timeout=5)
        assert message.payload == {"run": "r" * 2000}
        message.ack()
    assert [p.name for p in (tmp_path / "queue").iterdir()] == []  # nothing half-written left behind


def test_a_message_file_that_cannot_be_read_is_set_aside_and_the_next_one_delivered(tmp_path):
    with connection(tmp_path, filesystem_transport.Transport) as conn:
        queue = conn.SimpleQueue("celery")
        (tmp_path / "queue" / "0_damaged.celery.msg").write_bytes(b'{"body": "cut sh')
        queue.put({"run": "next"})
        message = queue.get(timeout=5)
        assert message.payload == {"run": "next"}
        message.ack()
    assert [p.name for p in (tmp_path / "processed").iterdir()] == ["0_damaged.celery.msg.bad"]


def test_a_consumer_makes_the_folder_it_claims_messages_into(tmp_path):
    with connection(tmp_path, filesystem_transport.Transport) as conn:
        (tmp_path / "processed").rmdir()
        queue = conn.SimpleQueue("celery")
        queue.put({"run": "one"})
        message = queue.get(timeout=5)
        assert message.payload == {"run": "one"}
        message.ack()


def test_queue_bindings_of_several_processes_are_all_kept(tmp_path):
    with (
        connection(tmp_path, filesystem_transport.Transport) as first,
        connection(tmp_path, filesystem_transport.Transport) as second,
    ):
        first.SimpleQueue("celery")
        second.SimpleQueue("maintenance")
        table = json.loads((tmp_path / "control" / "celery.exchange").read_text())
        assert table == [["celery", "", "celery"]]
        table = json.loads((tmp_path / "control" / "maintenance.exchange").read_text())
        assert table == [["maintenance", "", "maintenance"]]
        first.default_channel.queue_bind("maintenance", "maintenance", "other-key")
        second.default_channel.queue_bind("maintenance", "maintenance", "other-key")
        table = json.loads((tmp_path / "control" / "maintenance.exchange").read_text())
        assert sorted(map(tuple, table)) == [("maintenance", "", "maintenance"), ("other-key", "", "maintenance")]


@pytest.mark.django_db(transaction=True)
def test_the_portal_publishes_through_the_safe_transport_and_the_reaper_counts_its_messages(alice, broker_queue):
    from portal.celery import app

    with app.connection_for_write() as conn:
        assert type(conn.transport) is filesystem_transport.Transport
    action = make_sim_action(slug="clear-teams-cache")
    device = make_device(alice, uid="da2add909a144e8235453f88dc45172f")
    runs = [run_submit(user=alice, action=action, device=device, params={}) for _ in range(3)]
    assert sorted(broker_queue()) == sorted(str(r.pk) for r in runs)
    assert waiting_messages() == 3


@pytest.mark.django_db(transaction=True)
def test_a_worker_survives_a_message_written_while_it_polls(
    alice, broker_queue, use_simulator, sim_requests, monkeypatch, tmp_path, settings
):
    """A real worker process polls the folder while a message sits there half-written."""
    from portal.celery import app

    with app.connection_for_write() as conn:
        module = sys.modules[type(conn.transport).__module__]
    action = make_sim_action(slug="clear-teams-cache")
    action.engines.create(database_uid=EMEA, name="engine-emea")
    device = make_device(alice, uid="da2add909a144e8235453f88dc45172f")
    monkeypatch.setattr("actions.runs.submit.run_enqueue", lambda **kwargs: True)  # enqueued by hand below
    first = run_submit(user=alice, action=action, device=device, params={})
    second = run_submit(user=alice, action=action, device=device, params={})
    monkeypatch.undo()
    stopped = StoppedHalfway(monkeypatch, module, Path(settings.BROKER_DIR) / "queue")

    def enqueue_first():
        from django.db import connection as db

        try:
            run_enqueue(run_id=first.pk, stamp=False)
        finally:
            db.close()

    writer = threading.Thread(target=enqueue_first)
    writer.start()
    worker = None
    try:
        assert stopped.halfway.wait(10)  # the first run's message is half-written, under its final name or not
        assert run_enqueue(run_id=second.pk)  # written after it, so listed after it
        worker = Worker(use_simulator.url, tmp_path / "worker.log", broker_url=FILESYSTEM_BROKER)
        # The worker has looked at the folder past the half-written message: it sent the second run.
        wait_for(lambda: is_final(Run.objects.get(pk=second.pk).status))
        stopped.resume.set()
        writer.join(10)
        wait_for(lambda: is_final(Run.objects.get(pk=first.pk).status))
        assert worker.process.poll() is None, "the worker exited"
    finally:
        stopped.resume.set()
        writer.join(10)
        if worker:
            worker.stop()
            print(worker.log_path.read_text())  # shown by pytest when the test fails
    assert "Unrecoverable error" not in worker.log_path.read_text()
    assert {Run.objects.get(pk=r.pk).status for r in (first, second)} == {Run.Status.SENT}
    assert sorted(r["body"]["requestUid"] for r in sim_requests()) == sorted([str(first.pk), str(second.pk)])
    assert broker_queue() == []
