"""The catalog's search finds what employees type: keywords, word starts, small typos; and when it
finds nothing, it offers IT's help with the words typed. Each rule holds on SQLite and PostgreSQL."""

import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from actions.catalog.search import matches, search_actions, typo_distance
from actions.models import RemoteAction
from tests.factories import make_action

CARD = re.compile(r'<li class="card action-card">.*?<h3><a href="/actions/([\w-]+)/">', re.S)


def found(client, query: str) -> set[str]:
    response = client.get(reverse("catalog"), {"q": query})
    assert response.status_code == 200
    return set(CARD.findall(response.content.decode()))


@pytest.fixture
def spooler(db):
    return make_action(
        name="Restart print spooler",
        slug="restart-print-spooler",
        summary="Fixes printing when documents are stuck.",
        keywords="printer, print queue",
    )


@pytest.fixture
def dns(db):
    return make_action(
        name="Flush DNS cache",
        slug="flush-dns-cache",
        summary="Fixes websites that will not load.",
        keywords="internet, wifi, outlook",
    )


def test_it_finds_an_action_by_its_keywords(alice_client, spooler, dns):
    assert found(alice_client, "printer") == {"restart-print-spooler"}
    assert found(alice_client, "WiFi") == {"flush-dns-cache"}
    dns.keywords = ""
    dns.save()
    assert found(alice_client, "wifi") == set()  # nowhere else in its texts: the keyword found it


def test_it_finds_the_start_of_a_word(alice_client, spooler, dns):
    assert found(alice_client, "spool") == {"restart-print-spooler"}
    assert found(alice_client, "web") == {"flush-dns-cache"}


@pytest.mark.parametrize(
    ("typed", "slug"),
    [
        ("printr", "restart-print-spooler"),
        ("outlok", "flush-dns-cache"),
        ("interent", "flush-dns-cache"),
        ("intenret", "flush-dns-cache"),
    ],
)
def test_it_forgives_a_small_typo(alice_client, spooler, dns, typed, slug):
    assert found(alice_client, typed) == {slug}


def test_a_typo_tolerance_is_not_a_match_for_anything(alice_client, spooler, dns):
    assert found(alice_client, "zebra") == set()
    assert found(alice_client, "prn") == set()  # short words are matched only as typed
    assert found(alice_client, "dnxz") == set()  # one typo in a 4-letter word, not two
    assert found(alice_client, "printr outlok") == set()  # every word must match the same action


def test_a_search_with_no_result_offers_help_from_it_with_the_words_typed(alice_client, spooler, settings):
    settings.SERVICE_DESK_PHONE = "+1 555 0100"

    page = alice_client.get(reverse("catalog"), {"q": "scanner jammed"}).content.decode()

    assert "No actions match “scanner jammed”" in page
    assert '<h2 id="get-help-heading">Get help from IT</h2>' in page
    assert "<strong data-search-words>“scanner jammed”</strong>" in page
    assert 'href="tel:+15550100"' in page
    assert "Get help from IT" not in alice_client.get(reverse("catalog"), {"q": "printer"}).content.decode()


def test_a_search_too_long_is_shortened_visibly_not_silently(alice_client, spooler):
    page = alice_client.get(reverse("catalog")).content.decode()
    assert 'id="catalog-search"' in page and "maxlength" not in page  # the browser cuts nothing

    long = alice_client.get(reverse("catalog"), {"q": "printer " + "x" * 120}).content.decode()
    many = alice_client.get(reverse("catalog"), {"q": "a b c d e f g h i j"}).content.decode()
    short = alice_client.get(reverse("catalog"), {"q": "printer"}).content.decode()

    assert "Your search was too long" in long and "“printer " + "x" * 92 + "”" in long
    assert "Your search was too long" in many and "“a b c d e f g h”" in many
    assert "Your search was too long" not in short


def test_the_demo_catalog_finds_what_employees_type(alice_client, settings):
    settings.DEBUG = True
    call_command("load_demo", stdout=None)

    assert "restart-print-spooler" in found(alice_client, "printer")
    for typed in ("wifi", "internet", "outlook"):
        assert "flush-dns-cache" in found(alice_client, typed), typed
    assert "repair-vpn" in found(alice_client, "wifi")


def test_the_python_rule_counts_a_swap_as_one_typo():
    assert typo_distance("interent", "internet") == 1
    assert typo_distance("outlok", "outlook") == 1
    assert typo_distance("disk", "desk") == 1
    assert matches(["spoll"], ["Restart print spooler"])  # a typo in the start of a word
    assert not matches(["spoll", "zebra"], ["Restart print spooler"])


def test_the_api_search_uses_the_same_rules(spooler, dns):
    def slugs(query):
        return set(search_actions(RemoteAction.objects.all(), query).values_list("slug", flat=True))

    assert slugs("outlok") == {"flush-dns-cache"}
    assert slugs("spool printer") == {"restart-print-spooler"}
    assert slugs("zebra") == set()


def test_the_infinity_demo_has_keywords_too(db, settings):
    settings.DEBUG, settings.NEXTHINK_PLATFORM = True, "infinity"
    call_command("load_demo", stdout=None)

    def names(query):
        return set(search_actions(RemoteAction.objects.filter(enabled=True), query).values_list("nql_id", flat=True))

    assert "#restart_windows_service" in names("printer")
    assert {"#repair_vpn", "#fix_vpn_connection"} <= names("wifi") & names("internet")
    assert "#fix_vpn_connection" in names("outlook")
