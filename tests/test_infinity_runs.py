"""A run on Nexthink Infinity, through the real seam and simulator: found by NQL, sent, followed up to
the device's own result."""

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.urls import reverse
from django.utils import timezone

from actions.devices.ownership import device_for_user
from actions.devices.resolution import resolve_devices_for
from actions.models import Device, Run
from actions.runs.dispatch import run_dispatch
from actions.runs.follow_up import runs_follow_up
from actions.runs.outcomes import EXPIRY_GRACE_SECONDS
from actions.runs.reaper import runs_reap
from actions.runs.states import is_final
from actions.runs.submit import run_submit
from tests.factories import make_action
from tests.worker import dispatch_in_thread

Status = Run.Status
ALICE_LAPTOP = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"  # the simulator's; CORP\alice
NQL = "/api/v2/nql/execute"


@pytest.fixture
def infinity(use_infinity, settings):
    settings.DEVICE_RESOLVERS = ["directory", "nql"]
    settings.NXQL_USER_NAME_TEMPLATE = "CORP\\{username}"
    return use_infinity


@pytest.fixture
def teams(db):
    return make_action(name="Clear Teams cache", nql_id="#clear_teams_cache")


def follow_up_until_final(run, infinity, *, steps=10):
    for _ in range(steps):
        infinity.advance(5)
        Run.objects.filter(pk=run.pk).update(
            next_check_at=timezone.now() - timedelta(hours=1)
        )  # due (SQLite: by its ms clock too)
        runs_follow_up()
        run.refresh_from_db()
        if is_final(run.status):
            break
    return run


def test_it_finds_the_employees_devices_with_nql(infinity, alice):
    resolution = resolve_devices_for(alice)

    assert sorted(d.name for d in resolution.devices) == ["LAPTOP-ALICE", "MACBOOK-ALICE"]
    assert Device.objects.get(uid=ALICE_LAPTOP).source == Device.Source.NQL
    assert device_for_user(alice, ALICE_LAPTOP.upper()).uid == ALICE_LAPTOP


def test_a_run_is_sent_then_done_on_the_device_with_its_outputs(infinity, alice, teams):
    resolve_devices_for(alice)
    run = run_submit(user=alice, action=teams, device=Device.objects.get(uid=ALICE_LAPTOP), params={})

    run_dispatch(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == Status.FOLLOWING and run.request_id and not is_final(run.status)
    [execute] = infinity.requests("/api/v1/act/execute")
    assert execute["body"]["remoteActionId"] == "#clear_teams_cache"
    assert execute["body"]["devices"] == [ALICE_LAPTOP]
    assert execute["body"]["triggerInfo"]["externalReference"] == str(run.pk)
    assert "alice" in execute["body"]["triggerInfo"]["reason"]

    run = follow_up_until_final(run, infinity)

    assert (run.status, run.device_status) == (Status.DONE, "success")
    assert run.outputs == {"CacheSizeMB": "812"}


def test_an_execute_whose_answer_breaks_tls_is_unknown_and_never_resent(
    infinity, alice, teams, settings, tls_infinity_sim, tls_ca, broker_queue
):
    settings.NEXTHINK_API_URL, settings.NEXTHINK_TOKEN_URL = tls_infinity_sim.url, tls_infinity_sim.token_url
    settings.NEXTHINK_VERIFY_TLS, settings.NEXTHINK_CA_BUNDLE = True, tls_ca
    resolve_devices_for(alice)  # over TLS too: the token and NQL work
    run = run_submit(user=alice, action=teams, device=Device.objects.get(uid=ALICE_LAPTOP), params={})
    tls_infinity_sim.fault("execute", "not_tls")  # Nexthink read the whole request; its answer breaks TLS

    run_dispatch(run_id=run.pk)

    run.refresh_from_db()
    assert (run.status, run.error_kind, run.next_attempt_at) == (Status.UNKNOWN, "unknown", None)  # not retried
    assert run.error_code == "CONNECTION_LOST"
    assert "certificate" not in run.error_message
    assert len(tls_infinity_sim.requests("/api/v1/act/execute")) == 1 and broker_queue() == []


def test_the_run_page_shows_the_devices_status_and_outputs(infinity, alice, teams, client):
    resolve_devices_for(alice)
    run = run_submit(user=alice, action=teams, device=Device.objects.get(uid=ALICE_LAPTOP), params={})
    run_dispatch(run_id=run.pk)
    client.force_login(alice)

    waiting = client.get(reverse("run_status", args=[run.pk])).json()
    run = follow_up_until_final(run, infinity)
    page = client.get(run.get_absolute_url()).content.decode()

    assert waiting["status_label"] == "Waiting for your device" and waiting["final"] is False
    assert "Done on your device" in page and "Your device ran the action successfully." in page
    assert "CacheSizeMB" in page and "812" in page
    assert "Did this fix your problem?" in page


def break_the_read(breakage, infinity, settings):
    if breakage == "misnamed_query":  # the saved query was renamed or deleted in Nexthink: a 404
        settings.NEXTHINK_NQL_EXECUTIONS_QUERY = "#portal_executions_renamed"
    elif breakage == "revoked_rights":  # the API client lost the NQL permission: a 403
        body = {"message": "Not authorized to execute NQL queries.", "code": 403}
        infinity.fault("nql", "answer", status=403, body=body, times=0)
    else:
        infinity.fault("nql", "internal_error", times=0)


@pytest.mark.parametrize("breakage", ["misnamed_query", "revoked_rights", "server_error"])
def test_a_run_whose_result_cannot_be_read_ends_unknown_past_nexthinks_expiry(
    infinity, alice, teams, settings, client, breakage
):
    resolve_devices_for(alice)
    run = run_submit(user=alice, action=teams, device=Device.objects.get(uid=ALICE_LAPTOP), params={})
    run_dispatch(run_id=run.pk)
    reads_before = len(infinity.requests(NQL))
    break_the_read(breakage, infinity, settings)
    client.force_login(alice)

    # Within Nexthink's wait for the device: a failed read is only tried again later.
    due = timezone.now() - timedelta(seconds=1)  # SQLite's Now() has milliseconds only
    Run.objects.filter(pk=run.pk).update(next_check_at=due)
    assert runs_follow_up() == 1
    run.refresh_from_db()
    assert (run.status, run.checks) == (Status.FOLLOWING, 1)

    # Past Nexthink's expiry and the grace: the run ends, though its result still cannot be read.
    past = timezone.now() - timedelta(seconds=EXPIRY_GRACE_SECONDS + 1)
    Run.objects.filter(pk=run.pk).update(expires_at=past, next_check_at=due)
    assert runs_follow_up() == 1

    run.refresh_from_db()
    assert (run.status, run.error_code, run.next_check_at) == (Status.UNKNOWN, "RESULT_NOT_READ", None)
    assert run.error_message.startswith("Nexthink accepted the action, but the portal could not read what happened")
    assert "Check your device" in run.error_message
    assert len(infinity.requests(NQL)) - reads_before == 2  # both looks went to Nexthink and failed
    status = client.get(reverse("run_status", args=[run.pk])).json()
    assert status["final"] is True  # the page stops polling and offers help


def test_the_reaper_waits_for_infinitys_own_longest_send(infinity, alice, teams, settings):
    settings.NEXTHINK_API_TIMEOUT_SECONDS = 30
    resolve_devices_for(alice)
    run = run_submit(user=alice, action=teams, device=Device.objects.get(uid=ALICE_LAPTOP), params={})
    Run.objects.filter(pk=run.pk).update(timeout_seconds=10)
    # Classic's deadline: one call of timeout + connect + read margin. Infinity's: the token and the
    # execute, each twice (a 401 renews the token and sends once more), each connect + API timeout.
    classic = 10 + settings.NEXTHINK_CONNECT_TIMEOUT_SECONDS + settings.NEXTHINK_READ_MARGIN_SECONDS
    infinity_send = 4 * (settings.NEXTHINK_CONNECT_TIMEOUT_SECONDS + settings.NEXTHINK_API_TIMEOUT_SECONDS)
    grace = settings.RUN_SENDING_GRACE_SECONDS
    assert classic + grace < 100 < infinity_send + grace

    Run.objects.filter(pk=run.pk).update(status=Status.SENDING, sending_at=timezone.now() - timedelta(seconds=100))
    assert runs_reap().marked_unknown == 0  # its worker may still be fetching a token or executing
    assert Run.objects.get(pk=run.pk).status == Status.SENDING

    long_ago = timezone.now() - timedelta(seconds=infinity_send + grace + 1)
    Run.objects.filter(pk=run.pk).update(sending_at=long_ago)
    assert runs_reap().marked_unknown == 1
    run.refresh_from_db()
    assert (run.status, run.error_code) == (Status.UNKNOWN, "WORKER_LOST")


class GatedTokenEndpoint:
    """A token endpoint on loopback that holds each request until released, then passes it to the simulator's."""

    def __init__(self, token_url: str):
        self.received = threading.Event()
        self.release = threading.Event()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                gate.received.set()
                gate.release.wait(30)
                answer = requests.post(
                    token_url,
                    data=body,
                    headers={k: self.headers[k] for k in ("Authorization", "Content-Type")},
                    timeout=10,
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/oauth2/default/v1/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.django_db(transaction=True)
def test_a_run_the_reaper_decided_while_its_token_was_fetched_is_not_executed(infinity, alice, teams, settings):
    resolve_devices_for(alice)
    run = run_submit(user=alice, action=teams, device=Device.objects.get(uid=ALICE_LAPTOP), params={})
    gate = GatedTokenEndpoint(infinity.token_url)
    settings.NEXTHINK_TOKEN_URL = gate.url  # a new token is needed, and it is slow to come
    try:
        worker, outcome = dispatch_in_thread(run.pk)
        assert gate.received.wait(30)  # claimed, and waiting for its token
        # The reaper decides meanwhile (the worker looks lost): the run is no longer this attempt's.
        Run.objects.filter(pk=run.pk).update(sending_at=timezone.now() - timedelta(hours=2))
        assert runs_reap().marked_unknown == 1
        gate.release.set()
        worker.join(30)
    finally:
        gate.close()

    assert not worker.is_alive() and outcome == [None]
    run.refresh_from_db()
    assert (run.status, run.error_code) == (Status.UNKNOWN, "WORKER_LOST")
    assert len(infinity.token_requests()) == 2  # the NQL look-up's, then the worker's: the token came
    assert infinity.requests("/api/v1/act/execute") == []  # and nothing was executed


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_an_infinity_run_goes_through_a_real_worker(infinity, alice, teams, tmp_path, redis_broker):
    from tests.conftest import REDIS_URL
    from tests.worker import Worker, wait_for

    resolve_devices_for(alice)
    worker = Worker(
        infinity.url,
        tmp_path / "worker.log",
        broker_url=REDIS_URL,
        extra_env={
            "NEXTHINK_PLATFORM": "infinity",
            "NEXTHINK_API_URL": infinity.url,
            "NEXTHINK_TOKEN_URL": infinity.token_url,
            "NEXTHINK_CLIENT_ID": "portal",
            "NEXTHINK_CLIENT_SECRET": "portal-demo",
            "NEXTHINK_NQL_DEVICES_QUERY": "#portal_devices_of_user",
            "NEXTHINK_NQL_EXECUTIONS_QUERY": "#portal_remote_action_executions",
        },
    )
    try:
        run = run_submit(user=alice, action=teams, device=Device.objects.get(uid=ALICE_LAPTOP), params={})
        wait_for(lambda: Run.objects.get(pk=run.pk).status == Status.FOLLOWING)
        from actions.tasks import follow_up_runs

        def done() -> bool:
            infinity.advance(5)
            Run.objects.filter(pk=run.pk, status=Status.FOLLOWING).update(
                next_check_at=timezone.now() - timedelta(hours=1)
            )
            follow_up_runs.delay()  # what beat sends every few seconds; the worker reads the result
            return Run.objects.get(pk=run.pk).status == Status.DONE

        wait_for(done, timeout=60)
    finally:
        worker.stop()
        print((tmp_path / "worker.log").read_text())
    run.refresh_from_db()
    assert run.outputs == {"CacheSizeMB": "812"}
    assert len(infinity.requests("/api/v1/act/execute")) == 1
