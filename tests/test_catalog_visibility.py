"""Who sees which action: enabled, and no groups or one of the user's groups; the rest is a 404."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from actions.catalog.selectors import actions_visible_to, catalog_sections, visible_action
from actions.models import Category, Run
from tests.factories import make_action, make_device, make_parameter


def visible_names(user):
    return sorted(actions_visible_to(user).values_list("name", flat=True))


def test_it_shows_enabled_actions_without_groups_to_every_employee(alice, bob):
    make_action(name="Open")
    make_action(name="Off", enabled=False)

    assert visible_names(alice) == ["Open"]
    assert visible_names(bob) == ["Open"]


def test_it_shows_a_group_restricted_action_only_to_members(alice, bob, finance):
    restricted = make_action(name="Reset SAP cache")
    restricted.groups.add(finance)
    alice.groups.add(finance)

    assert visible_names(alice) == ["Reset SAP cache"]
    assert visible_names(bob) == []


def test_it_lists_an_action_once_for_a_member_of_several_of_its_groups(alice, finance, staff_group):
    action = make_action(name="Both")
    action.groups.add(finance, staff_group)
    alice.groups.add(finance, staff_group)

    assert list(actions_visible_to(alice)) == [action]


def test_it_hides_everything_from_anonymous_and_inactive_users(alice):
    make_action(name="Open")
    alice.is_active = False

    assert list(actions_visible_to(AnonymousUser())) == []
    assert list(actions_visible_to(alice)) == []


def test_the_action_page_lookup_applies_the_same_rule_for_every_user(alice, bob, finance):
    restricted = make_action(name="Reset SAP cache", slug="reset-sap")
    make_parameter(restricted, name="Mode")
    restricted.groups.add(finance)
    alice.groups.add(finance)
    make_action(name="Off", slug="off", enabled=False)

    # Compiled once, bound per call: each user and slug gets its own answer.
    assert visible_action(alice, "reset-sap") == restricted
    assert visible_action(bob, "reset-sap") is None
    assert visible_action(alice, "off") is None
    assert [p.name for p in visible_action(alice, "reset-sap").parameters.all()] == ["Mode"]
    alice.is_active = False
    assert visible_action(alice, "reset-sap") is None
    assert visible_action(AnonymousUser(), "reset-sap") is None


def test_it_applies_the_group_rule_to_superusers_too(admin_user, finance):
    make_action(name="Finance only").groups.add(finance)

    assert visible_names(admin_user) == []


@pytest.mark.parametrize(
    "hide",
    [
        lambda finance: make_action(slug="hidden", enabled=False),
        lambda finance: make_action(slug="hidden").groups.add(finance),
    ],
    ids=["disabled", "another-group"],
)
def test_it_answers_404_for_a_hidden_action_by_url_and_by_post(client, bob, finance, hide):
    make_device(bob, uid="da2add909a144e8235453f88dc45172f")
    hide(finance)
    client.force_login(bob)

    page = client.get("/actions/hidden/")
    post = client.post("/actions/hidden/", {"device": "da2add909a144e8235453f88dc45172f", "idempotency_key": "k" * 32})

    assert (page.status_code, post.status_code) == (404, 404)
    assert Run.objects.count() == 0


def test_it_does_not_list_hidden_actions_on_the_catalog_page(client, bob, finance):
    make_action(name="Visible to all")
    make_action(name="Finance secret").groups.add(finance)
    make_action(name="Switched off", enabled=False)
    client.force_login(bob)

    html = client.get(reverse("catalog")).content.decode()

    assert "Visible to all" in html
    assert "Finance secret" not in html and "Switched off" not in html


def make_many(n, finance):
    for i in range(n):
        action = make_action(name=f"Bulk {i}", featured=i % 7 == 0)
        if i % 3 == 0:
            action.groups.add(finance)
        if i % 4 == 0:
            action.category, _ = Category.objects.get_or_create(name=f"Cat {i % 5}")
            action.save()


def test_it_builds_the_catalog_page_with_as_many_queries_for_200_actions_as_for_5(
    client, alice, finance, django_assert_max_num_queries, django_assert_num_queries
):
    alice.groups.add(finance)
    make_device(alice)  # devices the portal knows: it does not look for them (test_platforms.py)
    client.force_login(alice)
    make_many(5, finance)
    # Session, user, the catalog's version with the user's groups and devices' systems, actions; the
    # employee's fair use (runs/outlook.py: catalog_outlook).
    with django_assert_num_queries(5) as small:
        assert client.get(reverse("catalog")).status_code == 200
    make_many(195, finance)

    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(reverse("catalog"))

    assert response.context["overview"].total == 200
    assert 0 < sum(len(s.actions) for s in response.context["sections"]) < 200  # see test_catalog_paging.py


def test_it_puts_featured_actions_first_then_categories_in_their_order(alice):
    late, early = Category.objects.create(name="Late", display_order=2), Category.objects.create(name="Early")
    early.display_order = 1
    early.save()
    make_action(name="B uncategorized")
    make_action(name="A in late", category=late)
    make_action(name="C featured", category=late, featured=True)
    make_action(name="D in early", category=early)

    sections = catalog_sections(alice)

    assert [(s.title, [a.name for a in s.actions]) for s in sections] == [
        ("Featured", ["C featured"]),
        ("Early", ["D in early"]),
        ("Late", ["A in late"]),
        ("Other actions", ["B uncategorized"]),
    ]


def test_it_searches_every_word_in_names_and_descriptions(alice):
    make_action(name="Clear Teams cache", summary="When Teams is slow.")
    make_action(name="Fix printer", description="Restarts the print spooler when Teams... no.")
    make_action(name="Free disk space", summary="Empties temporary folders.")

    def found(query):
        return sorted(a.name for s in catalog_sections(alice, query) for a in s.actions)

    assert found("teams") == ["Clear Teams cache", "Fix printer"]
    assert found("teams slow") == ["Clear Teams cache"]
    assert found("SPOOLER") == ["Fix printer"]
    assert found("nothing-like-this") == []
