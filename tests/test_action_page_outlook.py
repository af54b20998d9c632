"""Know before you fill in the form: the cooldown or the daily limit and from when, the device the
employee is probably using, and what happens to a device that has been away long."""

from datetime import timedelta

from django.utils import timezone

from actions.models import Run
from tests.factories import make_action, make_device
from tests.run_states import run_in


def test_a_cooldown_is_shown_with_its_end_before_the_form(client, alice, settings):
    settings.TIME_ZONE = "Europe/Zurich"
    action = make_action(name="Reset VPN", cooldown_minutes=60)
    device = make_device(alice, last_seen_at=timezone.now())
    run_in(Run.Status.SENT, user=alice, action=action, device=device)
    client.force_login(alice)

    page = client.get(action.get_absolute_url()).content.decode()

    notice = page.index('data-outlook="blocked"')
    assert "You can run it again from" in page[notice:] and ("CET" in page or "CEST" in page)
    assert notice < page.index('name="idempotency_key"')


def test_nothing_is_said_before_the_form_when_the_action_may_run(client, alice):
    action = make_action(cooldown_minutes=60, daily_limit_per_user=3)
    make_device(alice, last_seen_at=timezone.now())
    client.force_login(alice)

    assert "data-outlook" not in client.get(action.get_absolute_url()).content.decode()


def test_the_device_seen_last_is_marked_and_chosen_and_one_away_long_is_explained(client, alice, settings):
    action = make_action()
    make_device(alice, name="LAPTOP-NOW", last_seen_at=timezone.now() - timedelta(minutes=3))
    make_device(alice, name="DESKTOP-OLD", last_seen_at=timezone.now() - timedelta(days=3))
    client.force_login(alice)

    form = client.get(action.get_absolute_url()).context["form"]
    page = client.get(action.get_absolute_url()).content.decode()
    settings.NEXTHINK_PLATFORM, settings.NEXTHINK_EXPIRES_MINUTES = "infinity", 1440
    infinity = client.get(action.get_absolute_url()).content.decode()

    choices = dict(form.fields["device"].widget.choices)
    now_uid = next(uid for uid, label in choices.items() if label.startswith("LAPTOP-NOW"))
    assert choices[now_uid].endswith("probably the one you are using now") and form["device"].value() == now_uid
    assert sum("probably" in label for label in choices.values()) == 1
    assert "DESKTOP-OLD was last seen 3\xa0days ago. Switch it on" in page and "LAPTOP-NOW was last" not in page
    assert "the action runs when it is next online, within 24 hours, or expires" in infinity
