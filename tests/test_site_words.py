"""The site's name is the same everywhere, and "contact your IT service desk" says how."""

import re

from django.urls import reverse

from actions.models import Run
from actions.runs.notify import runs_notify
from tests.factories import make_device, make_sim_action
from tests.run_states import run_in


def test_the_site_name_is_the_same_in_the_tab_title_the_header_and_the_e_mail(client, alice, settings, mailoutbox):
    settings.RUN_NOTIFY_DELAY_SECONDS = 0  # mailed at once
    settings.PORTAL_NAME = "Acme IT Help"
    settings.SERVICE_DESK_PHONE = "+1 555 0100"
    run = run_in(Run.Status.SENT, user=alice, action=make_sim_action(), device=make_device(alice))
    assert runs_notify() == 1  # before its page shows the end: then no e-mail is due
    client.force_login(alice)

    pages = [
        client.get(url).content.decode() for url in (reverse("catalog"), reverse("my_runs"), run.get_absolute_url())
    ]

    for page in pages:
        assert re.search(r"<title>[^<]* · Acme IT Help</title>", page)
        assert ">Acme IT Help</a>" in page  # the header's brand
        assert "Fix my device" not in page and "IT self-service" not in page
        assert 'Contact your IT service desk: call <a href="tel:+15550100">+1 555 0100</a>' in page
    [mail] = mailoutbox
    assert mail.body.rstrip().endswith("Acme IT Help") and "call +1 555 0100" in mail.body


def test_without_service_desk_settings_it_names_no_way_it_does_not_know(client, alice):
    client.force_login(alice)

    page = client.get(reverse("catalog")).content.decode()

    assert "Contact your IT service desk.</span>" in page and "tel:" not in page
