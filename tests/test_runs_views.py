"""The run page, its JSON status and the employee's history: own runs only."""

import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from actions.models import EngineResult, Preferences, Run
from actions.runs.submit import run_submit
from tests.conftest import BROKER_DOWN
from tests.factories import make_device, make_parameter, make_sim_action

Status = Run.Status


@pytest.fixture
def alice_mode_run(alice):
    """Alice's run of "Clear Teams cache" with Mode "full", on LAPTOP-ALICE."""
    action = make_sim_action(slug="clear-teams-cache")
    make_parameter(action, name="Mode", label="Mode")
    return run_submit(
        user=alice, action=action, device=make_device(alice, name="LAPTOP-ALICE"), params={"Mode": "full"}
    )


def set_outcome(run, status, *results):
    """The run's status set and the Engines' answers (uid, code, message) stored; not stamped finished."""
    Run.objects.filter(pk=run.pk).update(status=status)
    for uid, code, message in results:
        EngineResult.objects.create(
            run=run, database_uid=uid, engine_name=f"engine-{uid[:4]}", code=code, message=message
        )


def test_it_shows_each_engine_answer_in_plain_words(client, alice, alice_mode_run):
    set_outcome(alice_mode_run, Status.PARTIAL, ("a" * 32, "ok", ""), ("b" * 32, "not_connected", "device offline"))
    client.force_login(alice)

    page = client.get(alice_mode_run.get_absolute_url()).content.decode()

    assert "Partly accepted by Nexthink" in page
    assert "Your device isn&#x27;t connected to Nexthink right now, so the action was not sent to it." in page
    assert "device offline" in page and "engine-aaaa" in page
    assert "Mode" in page and "full" in page
    assert 'data-final="true"' in page
    assert "?again=" in page


def test_a_run_in_progress_polls_and_offers_no_run_again_yet(client, alice, alice_mode_run):
    client.force_login(alice)

    page = client.get(alice_mode_run.get_absolute_url()).content.decode()

    assert 'data-final="false"' in page
    assert "js/run-status.js" in page
    assert "Waiting to be sent" in page and "The portal sends it to Nexthink" in page


def test_the_status_endpoint_gives_the_run_as_json(client, alice, alice_mode_run):
    set_outcome(alice_mode_run, Status.SENT, ("a" * 32, "ok", ""))
    client.force_login(alice)

    response = client.get(reverse("run_status", args=[alice_mode_run.pk]))

    data = response.json()
    assert "no-store" in response["Cache-Control"]
    assert (data["id"], data["status"], data["final"]) == (str(alice_mode_run.pk), "sent", True)
    assert data["engine_results"][0]["code"] == "ok"
    assert data["engine_results"][0]["explanation"].startswith("Nexthink accepted the action")


@pytest.mark.parametrize("name", ["run_detail", "run_status"])
def test_another_users_run_is_not_found(client, bob, alice_mode_run, name):
    client.force_login(bob)

    assert client.get(reverse(name, args=[alice_mode_run.pk])).status_code == 404


@pytest.mark.parametrize("name", ["run_detail", "run_status"])
def test_an_unknown_run_is_not_found(client, alice, name):
    client.force_login(alice)

    assert client.get(reverse(name, args=[uuid.uuid4()])).status_code == 404


@pytest.mark.parametrize("name", ["run_detail", "run_status"])
def test_signing_in_is_required(client, alice_mode_run, name):
    response = client.get(reverse(name, args=[alice_mode_run.pk]))

    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_my_runs_lists_only_my_runs_newest_first_and_pages(client, alice, bob):
    action = make_sim_action()
    mine = make_device(alice)
    for n in range(23):
        run_submit(user=alice, action=action, device=mine, params={}, idempotency_key=f"k{n}")
    run_submit(user=bob, action=action, device=make_device(bob, name="BOBS-PC"), params={})
    client.force_login(alice)

    Run.objects.filter(user=alice).update(created_at=timezone.now())  # ties in time: the id orders them
    first = client.get(reverse("my_runs"))
    second = client.get(reverse("my_runs") + f"?before={first.context['page'].older}")
    back = client.get(reverse("my_runs") + f"?after={second.context['page'].newer}")

    runs = list(first.context["page"].runs) + list(second.context["page"].runs)
    assert (len(first.context["page"].runs), len(second.context["page"].runs)) == (20, 3)
    assert len({r.pk for r in runs}) == 23
    assert [r.pk for r in back.context["page"].runs] == [r.pk for r in first.context["page"].runs]
    assert second.context["page"].older == "" and first.context["page"].newer == ""
    assert "BOBS-PC" not in first.content.decode() + second.content.decode()
    assert 'rel="next"' in first.content.decode() and 'rel="prev"' in second.content.decode()


def test_my_runs_ignores_a_malformed_cursor(client, alice):
    client.force_login(alice)

    assert client.get(reverse("my_runs") + "?before=zz_zz&after=1_nothex").status_code == 200


def test_my_runs_filters_by_status(client, alice):
    action = make_sim_action()
    device = make_device(alice)
    failed = run_submit(user=alice, action=action, device=device, params={}, idempotency_key="a")
    run_submit(user=alice, action=action, device=device, params={}, idempotency_key="b")
    Run.objects.filter(pk=failed.pk).update(status=Status.FAILED)
    client.force_login(alice)

    response = client.get(reverse("my_runs") + "?status=failed")
    bogus = client.get(reverse("my_runs") + "?status=<script>")

    assert [r.pk for r in response.context["page"].runs] == [failed.pk]
    assert len(bogus.context["page"].runs) == 2


def test_run_again_prefills_the_form_as_the_run_was_sent(client, alice):
    from tests.factories import make_parameter

    action = make_sim_action(slug="repair")
    make_parameter(action, name="Mode", label="Mode")
    make_parameter(action, name="Reboot", label="Reboot", kind="boolean")
    device = make_device(alice)
    run = run_submit(user=alice, action=action, device=device, params={"Mode": "deep", "Reboot": "true"})
    client.force_login(alice)

    form = client.get(reverse("action_detail", args=["repair"]) + f"?again={run.pk}").context["form"]

    assert form["param_Mode"].value() == "deep"
    assert form["param_Reboot"].value() is True
    assert form["device"].value() == device.uid


def test_run_again_ignores_another_users_run(client, alice, bob):
    from tests.factories import make_parameter

    action = make_sim_action(slug="repair")
    make_parameter(action, name="Mode", label="Mode", default="quick")
    bobs = run_submit(user=bob, action=action, device=make_device(bob), params={"Mode": "secret"})
    make_device(alice)
    client.force_login(alice)

    form = client.get(reverse("action_detail", args=["repair"]) + f"?again={bobs.pk}").context["form"]

    assert form["param_Mode"].value() == "quick"


@pytest.mark.django_db(transaction=True)  # real commits, so on_commit runs inside the request as in production
def test_a_broker_outage_at_submit_keeps_the_run_and_says_it_will_be_sent(client, alice, use_broker):
    action = make_sim_action(slug="flush")
    device = make_device(alice)
    client.force_login(alice)
    key = client.get(reverse("action_detail", args=["flush"])).context["form"]["idempotency_key"].value()
    use_broker(BROKER_DOWN)

    response = client.post(
        reverse("action_detail", args=["flush"]), {"device": device.uid, "idempotency_key": key}, follow=True
    )

    run = Run.objects.get(action=action)
    assert run.status == Status.QUEUED
    assert response.redirect_chain[-1][0] == run.get_absolute_url()
    assert "will be sent to Nexthink shortly" in response.content.decode()


def test_a_retrying_run_says_it_tries_again_and_leaves_the_count_to_it(client, alice, alice_mode_run):
    Run.objects.filter(pk=alice_mode_run.pk).update(
        status=Status.RETRYING,
        attempts=1,
        error_message="Nexthink was busy or unavailable and did not take the request.",
    )
    client.force_login(alice)

    data = client.get(reverse("run_status", args=[alice_mode_run.pk])).json()

    assert "Nothing was sent yet; the portal tries again shortly." in data["summary"]
    assert "attempt" not in data["summary"]  # the count is for IT: Technical details
    assert (data["attempts"], data["max_attempts"], data["final"]) == (1, 5, False)


def test_run_again_is_offered_only_for_an_action_still_visible_to_the_user(client, alice, alice_mode_run, staff_group):
    set_outcome(alice_mode_run, Status.SENT)
    client.force_login(alice)
    assert "?again=" in client.get(alice_mode_run.get_absolute_url()).content.decode()

    alice_mode_run.action.groups.add(staff_group)  # now for another team only

    assert "?again=" not in client.get(alice_mode_run.get_absolute_url()).content.decode()


def test_run_again_waits_for_the_cooldown_and_says_when_with_the_time_zone(client, alice, alice_mode_run, settings):
    settings.TIME_ZONE = "Europe/Zurich"
    alice_mode_run.action.cooldown_minutes = 60
    alice_mode_run.action.save()
    set_outcome(alice_mode_run, Status.SENT)
    client.force_login(alice)

    page = client.get(alice_mode_run.get_absolute_url()).content.decode()
    data = client.get(reverse("run_status", args=[alice_mode_run.pk])).json()

    assert "?again=" not in page
    assert "You can run it again from " in page and ("CET" in page or "CEST" in page)
    assert data["run_again"]["allowed"] is False and "You can run it again from" in data["run_again"]["text"]


def test_run_again_is_not_offered_after_a_permanent_refusal(client, alice, alice_mode_run):
    Run.objects.filter(pk=alice_mode_run.pk).update(
        status=Status.FAILED, error_kind="permanent", error_code="NO_MANUAL_EXECUTION", error_message="No. Contact IT."
    )
    client.force_login(alice)

    page = client.get(alice_mode_run.get_absolute_url()).content.decode()

    assert "?again=" not in page
    assert client.get(reverse("run_status", args=[alice_mode_run.pk])).json()["run_again"]["allowed"] is False


def test_a_final_run_never_says_no_answer_yet(client, alice, alice_mode_run):
    Run.objects.filter(pk=alice_mode_run.pk).update(
        status=Status.UNKNOWN, error_message="Cannot tell. Check your device."
    )
    client.force_login(alice)

    page = client.get(alice_mode_run.get_absolute_url()).content.decode()
    data = client.get(reverse("run_status", args=[alice_mode_run.pk])).json()

    assert "No answer yet" not in page and "No Nexthink server answered for this run." in page
    assert data["results_empty"] == "No Nexthink server answered for this run."


def test_the_tab_title_follows_the_status(client, alice, alice_mode_run):
    client.force_login(alice)
    assert (
        "<title>Clear Teams cache: Waiting to be sent" in client.get(alice_mode_run.get_absolute_url()).content.decode()
    )

    set_outcome(alice_mode_run, Status.SENT)

    assert (
        "<title>Clear Teams cache: Accepted by Nexthink"
        in client.get(alice_mode_run.get_absolute_url()).content.decode()
    )
    assert (
        client.get(reverse("run_status", args=[alice_mode_run.pk])).json()["title"]
        == "Clear Teams cache: Accepted by Nexthink"
    )


def test_my_runs_labels_every_column_for_phone_width(client, alice, alice_mode_run):
    client.force_login(alice)

    page = client.get(reverse("my_runs")).content.decode()

    headings = re.findall(r'<th scope="col">([^<]+)</th>', page)
    assert '<table class="stack">' in page and len(headings) == 6
    assert all(f'data-label="{heading}"' in page for heading in headings)


@pytest.mark.parametrize("page", ["run_detail", "run_status"])
def test_the_run_s_ticket_is_read_with_the_run_not_on_its_own(client, alice, alice_mode_run, page):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    set_outcome(alice_mode_run, Status.FAILED, ("a" * 32, "excluded", ""))
    client.force_login(alice)

    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse(page, args=[alice_mode_run.pk])).status_code == 200

    ticket_reads = [q["sql"] for q in queries if 'FROM "actions_ticket"' in q["sql"]]
    assert ticket_reads == []
    assert any('LEFT OUTER JOIN "actions_ticket"' in q["sql"] for q in queries)


def submitted_ago(run, seconds, **fields):
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=seconds), **fields)


LATE = "This is taking longer than usual: the portal is still waiting to send it."


def test_a_run_waiting_far_longer_than_usual_says_so_and_that_an_e_mail_will_tell(client, alice, alice_mode_run):
    client.force_login(alice)
    submitted_ago(alice_mode_run, 10)
    assert client.get(reverse("run_status", args=[alice_mode_run.pk])).json()["late"] == ""
    page = client.get(alice_mode_run.get_absolute_url()).content.decode()
    assert LATE not in page and 'data-field="late" role="status" hidden' in page

    submitted_ago(alice_mode_run, 45)  # no run of this action has ended yet: late after 30 s

    data = client.get(reverse("run_status", args=[alice_mode_run.pk])).json()
    assert data["late"] == f"{LATE} You can leave this page; you will get an e-mail when it ends."
    assert data["summary"].startswith("The portal sends it to Nexthink")
    page = client.get(alice_mode_run.get_absolute_url()).content.decode()
    assert f'data-field="late" role="status">{LATE} You can leave this page; you will get an e-mail' in page


def test_late_means_three_times_the_action_s_usual_time(client, alice, alice_mode_run):
    for _ in range(3):  # the action's runs usually take 20 s from submit to final
        done = run_submit(
            user=alice, action=alice_mode_run.action, device=alice_mode_run.device, params={"Mode": "full"}
        )
        now = timezone.now()
        Run.objects.filter(pk=done.pk).update(
            status=Status.SENT, created_at=now - timedelta(seconds=120), finished_at=now - timedelta(seconds=100)
        )
    client.force_login(alice)
    submitted_ago(alice_mode_run, 45)
    assert client.get(reverse("run_status", args=[alice_mode_run.pk])).json()["late"] == ""

    submitted_ago(alice_mode_run, 65)

    assert client.get(reverse("run_status", args=[alice_mode_run.pk])).json()["late"].startswith(LATE)


def test_a_retrying_run_can_be_late_a_run_being_sent_is_not(client, alice, alice_mode_run):
    client.force_login(alice)
    submitted_ago(alice_mode_run, 300, status=Status.RETRYING, attempts=1)
    assert client.get(reverse("run_status", args=[alice_mode_run.pk])).json()["late"].startswith(LATE)

    submitted_ago(alice_mode_run, 300, status=Status.SENDING)  # its answer is awaited; not waiting to be sent

    assert client.get(reverse("run_status", args=[alice_mode_run.pk])).json()["late"] == ""


@pytest.mark.parametrize("why", ["no mailer", "opted out"])
def test_a_late_run_promises_no_e_mail_that_will_not_come(client, alice, alice_mode_run, settings, why):
    if why == "no mailer":
        settings.MAILERS = {}
    else:
        Preferences.objects.create(user=alice, email_when_run_ends=False)
    client.force_login(alice)
    submitted_ago(alice_mode_run, 45)

    data = client.get(reverse("run_status", args=[alice_mode_run.pk])).json()

    assert data["late"] == f"{LATE} You can leave this page and come back to it later from My runs."


def test_a_run_page_reads_the_action_s_parameters_only_when_the_run_has_values_to_label(client, alice, alice_mode_run):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import make_action

    bare = run_submit(user=alice, action=make_action(), device=alice_mode_run.device, params={})
    client.force_login(alice)

    for run, reads in ((bare, 0), (alice_mode_run, 1)):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(run.get_absolute_url()).status_code == 200
        assert len([q for q in queries if 'FROM "actions_actionparameter"' in q["sql"]]) == reads, run.params
    assert "Mode" in client.get(alice_mode_run.get_absolute_url()).content.decode()
