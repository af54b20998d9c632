"""French and German: the run flow reads whole in each language, chosen from the browser or on the
Preferences page; the translations are complete and their compiled files match them."""

import re
import struct
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.db.models import F
from django.urls import reverse
from django.utils import translation

from actions.models import Preferences, Run
from actions.runs.dispatch import still_allowed
from actions.runs.notify import message_about, runs_notify
from actions.runs.wording import translated_message
from actions.uids import run_reference
from tests.factories import make_device, make_parameter, make_sim_action
from tests.po import read_po
from tests.run_states import run_in

Status = Run.Status
LANGUAGES = ["fr", "de"]
YES = {"RestartTeams": "true"}
LOCALE = Path(django_settings.BASE_DIR) / "locale"
# Attributes an employee hears or reads (screen readers, the stacked table's cell labels).
READ_ATTRIBUTES = ("aria-label", "data-label", "title", "placeholder", "alt")


class Texts(HTMLParser):
    """Every text node and read attribute of a page's body, one string each; no script."""

    def __init__(self):
        super().__init__()
        self.in_body = False
        self.skipping = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.in_body = True
        if tag in ("script", "style"):
            self.skipping += 1
        if self.in_body:
            self.parts += [value for name, value in attrs if name in READ_ATTRIBUTES and value]

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skipping -= 1

    def handle_data(self, data):
        if self.in_body and not self.skipping:
            self.parts.append(data)

    @classmethod
    def of(cls, html: str) -> set[str]:
        parser = cls()
        parser.feed(html)
        return {text for text in (re.sub(r"\s+", " ", part).strip() for part in parser.parts) if text}


def untranslated(english: set[str], translated: set[str], data: list[str], language: str) -> set[str]:
    """The English texts that the translated page shows unchanged, other than data (names, numbers,
    codes) and words whose translation is the same word ("Ticket")."""
    same = same_words(language)
    left = set()
    for text in english & translated:
        if text.lower().rstrip(":") in same:  # "Code", "Person:": a label as the admin shows it
            continue
        rest = text
        for value in sorted(data, key=len, reverse=True):
            rest = rest.replace(value, " ")
        if re.search(r"[A-Za-z]{3,}", rest):
            left.add(text)
    return left


def same_words(language: str) -> set[str]:
    """The catalog's entries translated by the same words, in lower case ("code": "Code" in German; the
    header aside)."""
    return {
        entry.msgid.lower()
        for entry in read_po(LOCALE / language / "LC_MESSAGES" / "django.po")
        if entry.msgid and entry.msgstr.get(0, "").lower() == entry.msgid.lower()
    }


def texts(client, url: str, language: str) -> set[str]:
    response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200, url
    assert response["Content-Language"] == language
    return Texts.of(response.content.decode())


@pytest.fixture(autouse=True)
def back_to_the_default_language():
    """A request leaves its language active in the thread (LocaleMiddleware): the next test starts afresh."""
    yield
    translation.deactivate()


@pytest.fixture
def teams(db):
    action = make_sim_action(slug="clear-teams-cache", summary="Closes Teams and clears its cache.")
    make_parameter(action, name="RestartTeams", label="Restart Teams afterwards", kind="boolean")
    return action


def data_of(run: Run, *more: str) -> list[str]:
    """What the pages show as it is in every language: names, codes, ids, the site's name, time zones."""
    values = [
        run.action_name,
        run.device_name,
        run.device_uid,
        str(run.pk),
        run_reference(run.pk),
        run.status,
        run.error_code,
        run.request_id,
        run.action_uid,
        run.device_status,
        run.device_status_details,
        run.decision_comment,
        run.reason,
        "Restart Teams afterwards",
        "RestartTeams",
        "true",  # the parameters as the script receives them (Technical details)
        "Closes Teams and clears its cache.",
        "engine-emea",
        "engine-amer",
        "not_connected",
        django_settings.PORTAL_NAME,
        "Nexthink",
        "Engine",
        "UTC",
        "alice",
        # The language switch names each language in its own words.
        *(translation.get_language_info(code)["name_local"] for code, _ in django_settings.LANGUAGES),
        *more,
    ]
    return [str(value) for value in values if value]


def pages_translated(client, pages, data, language: str) -> int:
    """Each page differs from its English and leaves none of its English text; the texts compared."""
    checked = 0
    for url in pages:
        english, translated = texts(client, url, "en"), texts(client, url, language)
        assert english != translated, url
        assert not untranslated(english, translated, data, language), url
        checked += len(english)
    return checked


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_run_flow_has_no_english_left_in_each_language(client, alice, teams, language):
    device = make_device(alice, name="LAPTOP-ALICE")
    runs = [
        run_in(status, user=alice, action=teams, device=device, params={"RestartTeams": "true"})
        for status in Status.values
    ]
    teams.cooldown_minutes = 5  # the action page then says so, and that the action is held back until when
    teams.save()
    client.force_login(alice)
    pages = [
        reverse("catalog"),
        teams.get_absolute_url(),
        reverse("my_runs"),
        reverse("preferences"),
        *(run.get_absolute_url() for run in runs),
    ]
    data = [value for run in runs for value in data_of(run) if value]
    checked = pages_translated(client, pages, data, language)
    assert checked > 500  # the pages said something: the comparison above had text to compare

    for run in runs:  # what the live page writes in, and the titles
        english = client.get(reverse("run_status", args=[run.pk]), HTTP_ACCEPT_LANGUAGE="en").json()
        live = client.get(reverse("run_status", args=[run.pk]), HTTP_ACCEPT_LANGUAGE=language).json()
        words = ["status_label", "summary", "results_empty", "title"]
        shown = {english[key] for key in words if english[key]} | {label for label, _ in english["times"]}
        seen = {live[key] for key in words if live[key]} | {label for label, _ in live["times"]}
        assert not untranslated(shown, seen, data, language), run.status


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_run_ended_email_is_in_the_employees_language(alice, teams, language, settings):
    alice.email = "alice@example.com"
    alice.save()
    device = make_device(alice, name="LAPTOP-ALICE")
    done = run_in(Status.DONE, user=alice, action=teams, device=device, params=YES)
    failed = run_in(Status.FAILED, user=alice, action=teams, device=device, params=YES)
    data = data_of(done) + data_of(failed) + ["http", "testserver", "FMD-"]

    for runs in ([done], [done, failed]):
        with translation.override("en"):
            english = message_about(runs)
        with translation.override(language):
            translated = message_about(runs)
        english_lines, translated_lines = (
            {line.strip() for line in "\n".join(message).splitlines() if line.strip() and "://" not in line}
            for message in (english, translated)
        )
        assert english_lines != translated_lines
        assert not untranslated(english_lines, translated_lines, data, language)

    # Sent by the worker, with no browser to ask: the language chosen on the Preferences page.
    Preferences.objects.create(user=alice, language=language)
    run_in(Status.SENT, user=alice, action=teams, device=device, params=YES)
    settings.RUN_NOTIFY_DELAY_SECONDS = 20
    Run.objects.filter(user=alice).update(finished_at=F("finished_at") - timedelta(seconds=60))  # a burst, over
    assert runs_notify() == 1
    with translation.override(language):  # the three runs of the burst, in one e-mail
        status_words = translation.gettext("Accepted by Nexthink")
        subject = translation.ngettext("%(count)d of your actions ended", "%(count)d of your actions ended", 3)
    assert status_words != "Accepted by Nexthink" and subject % {"count": 3} != "3 of your actions ended"
    assert mail.outbox[-1].subject == subject % {"count": 3} and status_words in mail.outbox[-1].body


def test_dates_follow_the_language(client, alice, teams, settings):
    settings.TIME_ZONE = "Europe/Zurich"
    run = run_in(Status.DONE, user=alice, action=teams, device=make_device(alice), params=YES)
    client.force_login(alice)
    month = run.created_at.month
    names = {
        "en": ["Jan.", "Feb.", "March", "April", "May", "June", "July", "Aug.", "Sept.", "Oct.", "Nov.", "Dec."][month - 1],
        "fr": [
            "janvier", "février", "mars", "avril", "mai", "juin",
            "juillet", "août", "septembre", "octobre", "novembre", "décembre",
        ][month - 1],
        "de": [
            "Januar", "Februar", "März", "April", "Mai", "Juni",
            "Juli", "August", "September", "Oktober", "November", "Dezember",
        ][month - 1],
    }  # fmt: skip
    for language, name in names.items():
        data = client.get(reverse("run_status", args=[run.pk]), HTTP_ACCEPT_LANGUAGE=language).json()
        requested = data["times"][0][1]
        assert name in requested, (language, requested)
        assert requested.endswith(" CET") or requested.endswith(" CEST")
    english = client.get(reverse("run_status", args=[run.pk]), HTTP_ACCEPT_LANGUAGE="en").json()["times"][0][1]
    german = client.get(reverse("run_status", args=[run.pk]), HTTP_ACCEPT_LANGUAGE="de").json()["times"][0][1]
    assert ("a.m." in english or "p.m." in english) and "a.m." not in german and "p.m." not in german


def test_the_switch_on_preferences_keeps_the_language(client, alice):
    client.force_login(alice)
    assert "Actions" in Texts.of(client.get(reverse("catalog")).content.decode())  # no choice: English

    response = client.post(reverse("preferences"), {"email_when_run_ends": "on", "language": "de"})

    assert response.status_code == 302
    assert Preferences.objects.get(user=alice).language == "de"
    assert response.cookies[django_settings.LANGUAGE_COOKIE_NAME].value == "de"
    saved = client.get(reverse("preferences"), HTTP_ACCEPT_LANGUAGE="fr")
    assert "Ihre Einstellungen sind gespeichert." in saved.content.decode()  # the choice wins over the browser
    assert saved["Content-Language"] == "de"

    # Back to the browser's language: the cookie goes, the browser decides again.
    response = client.post(reverse("preferences"), {"email_when_run_ends": "on", "language": ""})
    assert Preferences.objects.get(user=alice).language == ""
    assert response.cookies[django_settings.LANGUAGE_COOKIE_NAME].value == ""
    client.cookies.pop(django_settings.LANGUAGE_COOKIE_NAME, None)
    assert client.get(reverse("catalog"), HTTP_ACCEPT_LANGUAGE="fr")["Content-Language"] == "fr"
    assert client.get(reverse("catalog"))["Content-Language"] == "en"


def test_a_sign_in_brings_back_the_chosen_language(client, alice):
    alice.set_password("a-long-pass-phrase")
    alice.save()
    Preferences.objects.create(user=alice, language="fr")

    response = client.post(
        reverse("login"),
        {"username": alice.get_username(), "password": "a-long-pass-phrase"},
        HTTP_ACCEPT_LANGUAGE="de",
    )

    assert response.status_code == 302
    page = client.get(reverse("catalog"), HTTP_ACCEPT_LANGUAGE="de")
    assert page["Content-Language"] == "fr" and "Mes exécutions" in page.content.decode()


@pytest.mark.parametrize("oidc", [False, True], ids=["password", "company account"])
def test_the_sign_in_page_offers_a_language_switch(client, settings, oidc):
    settings.LOCAL_LOGIN, settings.OIDC_ENABLED = True, oidc
    sign_in = reverse("login") + "?next=/runs/"

    html = client.get(sign_in).content.decode()

    switch = re.search(r'<form method="post" action="([^"]+)" class="[^"]*language-switch">(.*?)</form>', html, re.S)
    assert switch and switch.group(1) == reverse("set_language")
    fields = switch.group(2)
    assert 'name="csrfmiddlewaretoken"' in fields and f'name="next" value="{sign_in}"' in fields
    assert '<label for="sign-in-language">Language</label>' in fields and 'type="submit"' in fields
    options = re.findall(r'<option value="(\w+)" lang="(\w+)"( selected)?>([^<]+)</option>', fields)
    assert options == [
        (code, code, " selected" if code == "en" else "", translation.get_language_info(code)["name_local"])
        for code, _ in django_settings.LANGUAGES
    ]

    response = client.post(reverse("set_language"), {"language": "fr", "next": sign_in})

    assert response.status_code == 302 and response["Location"] == sign_in
    french = client.get(sign_in, HTTP_ACCEPT_LANGUAGE="de")  # the switch wins over the browser
    assert french["Content-Language"] == "fr"
    page = Texts.of(french.content.decode())
    with translation.override("fr"):
        assert {translation.gettext("Sign in"), translation.gettext("Language")} <= page
    assert "Sign in" not in page
    assert re.search(r'<option value="fr" lang="fr" selected>', french.content.decode())
    names = [translation.get_language_info(code)["name_local"] for code, _ in django_settings.LANGUAGES]
    data = [django_settings.PORTAL_NAME, *names]
    client.cookies.pop(django_settings.LANGUAGE_COOKIE_NAME)
    assert pages_translated(client, [sign_in], data, "fr") > 5


def test_the_language_switch_works_before_sign_in_and_only_by_post(client):
    assert client.get(reverse("set_language"), {"language": "de", "next": "/login/"}).status_code == 405
    response = client.post(reverse("set_language"), {"language": "de", "next": "/login/"})
    assert response.status_code == 302 and response["Location"] == "/login/"  # not sent to sign in first
    assert response.cookies[django_settings.LANGUAGE_COOKIE_NAME].value == "de"


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_refusal_at_send_time_is_shown_in_the_language(alice, bob, teams, language):
    """What the send-time re-check stores on the run (in English) reads in the employee's language."""
    device = make_device(alice, name="LAPTOP-ALICE")
    run = run_in(Status.QUEUED, user=alice, action=teams, device=device, params=YES)
    device.owner = bob
    device.save()
    moved = still_allowed(Run.objects.get(pk=run.pk))
    teams.enabled = False
    teams.save()
    withdrawn = still_allowed(Run.objects.get(pk=run.pk))
    assert moved and withdrawn and moved[1] != withdrawn[1]

    for _code, stored in (moved, withdrawn):
        with translation.override(language):
            assert translated_message(stored) == translation.gettext(stored) != stored


def test_a_stored_message_is_shown_in_the_language_sentence_by_sentence():
    stored = "Nexthink was busy or unavailable and did not take the request. The portal tried 3 times. " + (
        "Nothing was sent. Please run it again in a few minutes; if it keeps failing, contact IT."
    )
    with translation.override("fr"):
        shown = translated_message(stored)
    assert shown == (
        "Nexthink était occupé ou indisponible et n'a pas pris la demande. Le portail a essayé 3 fois. "
        "Rien n'a été envoyé. Veuillez la relancer dans quelques minutes ; si l'échec se répète, contactez "
        "l'informatique."
    )
    with translation.override("de"):  # words nobody marked (Nexthink's own) stay as they are
        assert translated_message("Exit code 4. Nothing was sent. Please contact IT.") == (
            "Exit code 4. Es wurde nichts gesendet. Bitte wenden Sie sich an die IT."
        )
    with translation.override("en"):
        assert translated_message(stored) == stored


# --- The translation files ---------------------------------------------------------------------


def po_files() -> list[Path]:
    return sorted(LOCALE.glob("*/LC_MESSAGES/*.po"))


def test_each_language_has_its_translations():
    assert {path.parent.parent.name for path in po_files()} == set(LANGUAGES)
    assert [code for code, _ in django_settings.LANGUAGES] == ["en", *LANGUAGES]


@pytest.mark.parametrize("po", po_files(), ids=lambda path: f"{path.parent.parent.name}/{path.name}")
def test_every_entry_is_translated_and_none_is_fuzzy(po):
    entries = [entry for entry in read_po(po) if entry.msgid and not entry.obsolete]
    assert len(entries) > 300
    forms = int(re.search(r"nplurals=(\d+)", read_po(po)[0].msgstr[0]).group(1))
    for entry in entries:
        assert "fuzzy" not in entry.flags, entry.msgid
        expected = set(range(forms)) if entry.msgid_plural is not None else {0}
        assert set(entry.msgstr) == expected, entry.msgid
        assert all(text.strip() for text in entry.msgstr.values()), f"untranslated: {entry.msgid!r}"
        for text in entry.msgstr.values():  # the same placeholders, or the page breaks
            placeholders = set(re.findall(r"%\(\w+\)[sd]", entry.msgid + (entry.msgid_plural or "")))
            assert set(re.findall(r"%\(\w+\)[sd]", text)) <= placeholders, entry.msgid


def read_mo(path: Path) -> dict[str, str]:
    """A compiled catalog: each key (context and singular, \\x04 between; plural after \\x00) and its text."""
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    order = "<" if magic == 0x950412DE else ">"
    _, count, originals, translations = struct.unpack(order + "4I", data[4:20])
    catalog = {}
    for i in range(count):
        length, offset = struct.unpack(order + "2I", data[originals + 8 * i : originals + 8 * i + 8])
        key = data[offset : offset + length].decode()
        length, offset = struct.unpack(order + "2I", data[translations + 8 * i : translations + 8 * i + 8])
        catalog[key] = data[offset : offset + length].decode()
    return catalog


@pytest.mark.parametrize("po", po_files(), ids=lambda path: f"{path.parent.parent.name}/{path.name}")
def test_the_compiled_file_matches_its_translations(po):
    """The committed .mo says what the .po says: run `manage.py compilemessages` after editing a .po."""
    mo = po.with_suffix(".mo")
    assert mo.exists(), f"{mo} is missing: run manage.py compilemessages"
    expected = {}
    for entry in read_po(po):
        if entry.obsolete or "fuzzy" in entry.flags or not entry.msgid:
            continue
        key = entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}\x04{entry.msgid}"
        if entry.msgid_plural is not None:
            key += "\x00" + entry.msgid_plural
        expected[key] = "\x00".join(entry.msgstr[i] for i in sorted(entry.msgstr))
    compiled = read_mo(mo)
    header = compiled.pop("")  # msgfmt rewrites the header: its plural rule is what counts
    assert re.search(r"Plural-Forms: .*", header).group() in read_po(po)[0].msgstr[0]
    assert compiled == expected, f"{mo} is out of date: run manage.py compilemessages"
