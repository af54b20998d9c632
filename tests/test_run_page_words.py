"""The run page tells one story: in every status, no sentence an employee can see contradicts it."""

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from actions.models import Run
from actions.runs.wording import STATUS_LABELS, status_summary
from actions.uids import run_reference
from tests.factories import make_device, make_parameter, make_sim_action
from tests.run_states import run_in

Status = Run.Status
ALL = set(Status.values)
NOT_APPROVED = {Status.DENIED, Status.APPROVAL_EXPIRED, Status.CANCELLED}
FINAL = {Status.SENT, Status.PARTIAL, Status.FAILED, Status.UNKNOWN, Status.DONE, Status.DEVICE_FAILED, Status.EXPIRED}
FINAL |= NOT_APPROVED
WENT_OUT = {Status.SENT, Status.PARTIAL, Status.FOLLOWING, Status.DONE, Status.DEVICE_FAILED, Status.EXPIRED}

# What a sentence claims, and the statuses in which that claim is true.
CLAIMS = [
    (r"\bSent to Nexthink\b", WENT_OUT),
    (
        r"\baccepted\b",
        ALL - {Status.QUEUED, Status.SENDING, Status.RETRYING, Status.FAILED, Status.WAITING_APPROVAL} - NOT_APPROVED,
    ),
    (r"[Nn]othing (was|has been) sent", {Status.RETRYING, Status.FAILED, Status.WAITING_APPROVAL, *NOT_APPROVED}),
    (r"approv", {Status.WAITING_APPROVAL, *NOT_APPROVED}),
    (r"should run on your device|Give it a few minutes", {Status.SENT, Status.PARTIAL}),
    (r"runs it as soon as|running the action now", {Status.FOLLOWING}),
    (r"ran the action", {Status.DONE, Status.DEVICE_FAILED}),
    (r"never ran", {Status.EXPIRED}),
    (r"updates by itself", ALL - FINAL),
    (r"Did this fix your problem\?", {Status.SENT, Status.PARTIAL, Status.DONE}),
    (r"\bRun again\b", FINAL),
    (r"\bnot yet\b|No answer yet", ALL - FINAL),
    (r"\bFinished\b", set()),  # said nothing about what finished: the end is named for what it is
]
# Names of the machinery: inside "Technical details" only.
TECHNICAL = [r"\bEngine", r"\bUID\b", r"\battempt \d", r"RestartTeams", r"[0-9a-f]{8}-[0-9a-f]{4}-", r"\bHTTP_"]
# A time shown without its zone ("1:41 p.m." alone).
TIME_WITHOUT_ZONE = re.compile(r"\d{1,2}:\d{2}(?: [ap]\.m\.)?(?! ?[ap]\.m\.)(?! [A-Z]{2,5}\b| [+-]\d)")


class VisibleText(HTMLParser):
    """The words a sighted employee reads at first: not hidden, not in a closed <details>, no script."""

    VOID = {"br", "input", "meta", "link", "img", "hr", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.skipping: list[str] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        names = dict(attrs)
        if self.skipping or "hidden" in names or tag in ("details", "script", "style", "head"):
            self.skipping.append(tag)

    def handle_endtag(self, tag):
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)

    @classmethod
    def of(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        return re.sub(r"\s+", " ", " ".join(parser.parts))


@pytest.fixture
def teams(db):
    action = make_sim_action(slug="clear-teams-cache")
    make_parameter(action, name="RestartTeams", label="Restart Teams afterwards", kind="boolean")
    return action


@pytest.mark.parametrize("status", Status.values)
def test_nothing_on_the_run_page_contradicts_its_status(client, alice, teams, settings, status):
    settings.TIME_ZONE = "Europe/Zurich"
    run = run_in(status, user=alice, action=teams, device=make_device(alice), params={"RestartTeams": "true"})
    client.force_login(alice)

    page = client.get(run.get_absolute_url()).content.decode()
    data = client.get(reverse("run_status", args=[run.pk])).json()

    seen = VisibleText.of(page.split("<body>", 1)[1])
    live = " ".join([data["status_label"], data["summary"], *(f"{label} {when}" for label, when in data["times"])])
    assert STATUS_LABELS[status] in seen and data["status_label"] == STATUS_LABELS[status]
    for words in (seen, live):
        for claim, true_in in CLAIMS:
            if status not in true_in:
                assert not re.search(claim, words), f"{status}: {claim!r} in {words!r}"
        for name in TECHNICAL:
            assert not re.search(name, words), f"{status}: {name!r} outside Technical details"
        assert not TIME_WITHOUT_ZONE.search(words), f"{status}: a time without its zone in {words!r}"
    # The badge and the sentence after it never say the same thing twice ("Sent Sent.").
    assert not status_summary(run).lower().startswith(STATUS_LABELS[status].lower())
    assert run_reference(run.pk) in seen and "Restart Teams afterwards Yes" in seen


def test_the_technical_details_keep_what_it_knows_for_it(client, alice, teams):
    run = run_in(Status.PARTIAL, user=alice, action=teams, device=make_device(alice), params={"RestartTeams": "true"})
    client.force_login(alice)

    page = client.get(run.get_absolute_url()).content.decode()

    details = page[page.index('<details class="technical"') : page.index("</details>")]
    assert "engine-amer" in details and "not_connected" in details and str(run.pk) in details
    assert "<code>RestartTeams</code>" in details and run.device_uid in details


def test_the_curators_words_show_at_their_moment(client, alice, teams):
    teams.message_before, teams.message_during = "Send your messages first.", "Teams closes for a moment."
    teams.message_after = "Teams is back: sign in again if it asks."
    teams.save()
    device = make_device(alice)
    queued, sent = (
        run_in(status, user=alice, action=teams, device=device, params={"RestartTeams": "false"})
        for status in (Status.QUEUED, Status.SENT)
    )
    client.force_login(alice)

    before = VisibleText.of(client.get(teams.get_absolute_url()).content.decode())
    during = VisibleText.of(client.get(queued.get_absolute_url()).content.decode())
    after = VisibleText.of(client.get(sent.get_absolute_url()).content.decode())

    assert "Send your messages first." in before
    assert "Teams closes for a moment." in during and "Teams is back" not in during
    assert "Teams is back: sign in again if it asks." in after and "Teams closes" not in after
