"""The catalog with many actions: a small first page, a page per category, paged search results."""

import re
import uuid

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from actions.catalog.selectors import FEATURED_SHOWN, PAGE_SIZE, PREVIEW_SECTIONS, PREVIEW_SHOWN, SMALL_CATALOG
from actions.models import Category, RemoteAction
from tests.factories import make_device

CARD = re.compile(r'<li class="card action-card">.*?<h3><a href="/actions/([\w-]+)/">', re.S)


def bulk(n, *, start=0, prefix="Bulk", **fields) -> list[RemoteAction]:
    """`n` enabled actions in one query, named and ordered by their number (bulk_create sends no
    signal: it moves the catalog's version itself, actions.models.CatalogQuerySet)."""
    return RemoteAction.objects.bulk_create(
        RemoteAction(
            name=f"{prefix} {i:04d}",
            slug=f"{prefix.lower()}-{i:04d}",
            summary=f"Fixes problem {i}.",
            nexthink_uid=uuid.uuid4(),
            display_order=i,
            **({"enabled": True} | fields),
        )
        for i in range(start, start + n)
    )


def categories(n) -> list[Category]:
    return [Category.objects.create(name=f"Category {c}", display_order=c) for c in range(n)]


def big_catalog(n_categories=8, per_category=120, uncategorized=30, featured=20) -> dict:
    """`n_categories` × `per_category` actions, some uncategorized, `featured` of them featured."""
    cats = categories(n_categories)
    by_category = {}
    for c, category in enumerate(cats):
        by_category[category.pk] = bulk(per_category, start=c * 1000, prefix=f"C{c}", category=category)
    by_category[None] = bulk(uncategorized, prefix="Loose")
    every = [a for actions in by_category.values() for a in actions]
    chosen = every[::7][:featured]
    RemoteAction.objects.filter(pk__in=[a.pk for a in chosen]).update(featured=True)
    return {"categories": cats, "by_category": by_category, "featured": {a.slug for a in chosen}, "all": every}


def cards(response) -> list[str]:
    """The slugs of the action cards on a page, in order."""
    assert response.status_code == 200, response.status_code
    return CARD.findall(response.content.decode())


def every_page(client, params) -> list[list[str]]:
    """The cards of every page of a listing, following its "Next" links until there is none."""
    pages = []
    url = reverse("catalog") + "?" + "&".join(f"{k}={v}" for k, v in params.items())
    while url:
        response = client.get(url)
        pages.append(cards(response))
        following = re.search(r'<a href="([^"]+)" rel="next">Next</a>', response.content.decode())
        url = reverse("catalog") + following.group(1).replace("&amp;", "&") if following else None
        assert len(pages) < 100
    return pages


# --- The first page -------------------------------------------------------------------------------
def test_it_keeps_the_first_page_small_with_1000_actions_and_reaches_every_category(alice_client, db):
    catalog = big_catalog(n_categories=8, per_category=120, uncategorized=40, featured=20)
    assert len(catalog["all"]) == 1000

    response = alice_client.get(reverse("catalog"))

    page = response.content.decode()
    shown = cards(response)
    # 12 of the 20 featured actions, then 6 of each of the 8 categories and of the uncategorized ones.
    assert len(shown) == FEATURED_SHOWN + 9 * PREVIEW_SHOWN == 66
    assert len(set(shown)) == len(shown)
    assert len(page) < 60_000
    for category in catalog["categories"]:
        total = sum(1 for a in catalog["all"] if a.category_id == category.pk)
        assert f'<a href="/?category={category.pk}">See all {total} in {category.name}</a>' in page
    assert '<a href="/?category=other">See all 40 other actions</a>' in page
    assert '<a href="/?category=featured">See all 20 featured actions</a>' in page
    headings = re.findall(r'<h2 id="([\w-]+)-heading">', page)
    assert headings == ["featured", *(f"category-{c.pk}" for c in catalog["categories"]), "category-other"]


def test_it_shows_the_featured_actions_first_in_their_order(alice_client, db):
    catalog = big_catalog(n_categories=3, per_category=50, uncategorized=0, featured=15)
    for category in catalog["categories"]:  # categories in the reverse order of their actions'
        category.display_order = 10 - category.display_order
        category.save()
    featured = list(RemoteAction.objects.filter(featured=True).order_by("display_order", "name", "pk"))

    response = alice_client.get(reverse("catalog"))

    shown = cards(response)
    assert shown[:FEATURED_SHOWN] == [a.slug for a in featured[:FEATURED_SHOWN]]
    assert not set(shown[FEATURED_SHOWN:]) & catalog["featured"]  # not shown again in their category
    page = response.content.decode()
    assert page.index('id="featured-heading"') < page.index(f'id="category-{catalog["categories"][2].pk}-heading"')


def test_it_lists_categories_past_the_first_twelve_by_name_with_their_count(alice_client, db):
    cats = categories(PREVIEW_SECTIONS + 3)
    for c, category in enumerate(cats):
        bulk(10, start=c * 100, prefix=f"C{c}", category=category)

    response = alice_client.get(reverse("catalog"))

    page = response.content.decode()
    assert len(cards(response)) == PREVIEW_SECTIONS * PREVIEW_SHOWN
    assert '<h2 id="more-categories-heading">More categories</h2>' in page
    for category in cats[PREVIEW_SECTIONS:]:
        assert f'<a href="/?category={category.pk}">{category.name}</a> (10 actions)' in page
    for category in cats:
        assert alice_client.get(reverse("catalog"), {"category": category.pk}).status_code == 200


@pytest.mark.parametrize("n", [12, SMALL_CATALOG])
def test_it_shows_every_action_of_a_small_catalog_on_the_first_page(alice_client, db, n):
    cats = categories(3)
    for i in range(n):
        bulk(1, start=i, category=cats[i % 4] if i % 4 < 3 else None, featured=i % 10 == 0)

    response = alice_client.get(reverse("catalog"))

    assert len(cards(response)) == n
    assert "See all" not in response.content.decode()
    assert "More categories" not in response.content.decode()


def test_it_switches_to_the_short_first_page_just_above_a_small_catalog(alice_client, db):
    bulk(SMALL_CATALOG + 1, category=categories(1)[0])

    response = alice_client.get(reverse("catalog"))

    assert len(cards(response)) == PREVIEW_SHOWN
    assert f"See all {SMALL_CATALOG + 1} in Category 0" in response.content.decode()


# --- A category's pages ---------------------------------------------------------------------------
def test_a_category_page_pages_its_actions_in_order_without_duplicates(alice_client, db):
    catalog = big_catalog(n_categories=2, per_category=110, uncategorized=0, featured=5)
    category = catalog["categories"][0]
    expected = [a.slug for a in catalog["by_category"][category.pk]]  # featured ones included, in order

    first = alice_client.get(reverse("catalog"), {"category": category.pk})
    second = alice_client.get(reverse("catalog"), {"category": category.pk, "page": 2})
    pages = every_page(alice_client, {"category": category.pk})

    assert cards(first) == expected[:PAGE_SIZE]
    assert cards(second) == expected[PAGE_SIZE : 2 * PAGE_SIZE]
    assert [len(p) for p in pages] == [48, 48, 14]
    assert [slug for p in pages for slug in p] == expected
    page = second.content.decode()
    assert "<h1>Category 0</h1>" in page
    assert "Actions 49 to 96 of 110" in page
    assert f'<a href="?category={category.pk}" rel="prev">Previous</a>' in page
    assert f'<a href="?category={category.pk}&amp;page=3" rel="next">Next</a>' in page
    assert 'aria-current="page" aria-label="Page 2, this page">2</a>' in page


def test_every_visible_action_is_on_exactly_one_category_page(alice_client, db):
    catalog = big_catalog(n_categories=4, per_category=60, uncategorized=55, featured=30)

    listed = []
    for key in [c.pk for c in catalog["categories"]] + ["other"]:
        listed += [slug for page in every_page(alice_client, {"category": key}) for slug in page]
    featured = [slug for page in every_page(alice_client, {"category": "featured"}) for slug in page]

    assert sorted(listed) == sorted(a.slug for a in catalog["all"])
    assert sorted(featured) == sorted(catalog["featured"])


def test_a_small_category_page_has_no_page_links(alice_client, db):
    category = categories(1)[0]
    bulk(5, category=category)

    response = alice_client.get(reverse("catalog"), {"category": category.pk})

    assert len(cards(response)) == 5
    assert "All 5 actions" in response.content.decode()
    assert 'aria-label="Pages"' not in response.content.decode()


# --- Visibility ------------------------------------------------------------------------------------
def test_a_hidden_action_is_on_no_page_and_in_no_count(client, alice, bob, finance, db):
    catalog = big_catalog(n_categories=2, per_category=100, uncategorized=10, featured=4)
    category = catalog["categories"][0]
    secret = bulk(30, start=5000, prefix="Secret", category=category)
    finance.remote_actions.add(*secret)
    off = bulk(20, start=6000, prefix="Off", category=category, enabled=False)
    featured_secret = bulk(1, start=7000, prefix="Topsecret", category=category, featured=True)
    finance.remote_actions.add(*featured_secret)
    hidden = {a.slug for a in secret + off + featured_secret}
    alice.groups.add(finance)

    client.force_login(alice)  # alice fills the card cache first: bob must not get her cards
    alice_page = client.get(reverse("catalog")).content.decode()
    client.force_login(bob)
    urls = [reverse("catalog"), f"{reverse('catalog')}?category=featured", f"{reverse('catalog')}?q=Fixes"]
    seen = {slug for url in urls for slug in cards(client.get(url))}
    seen |= {slug for page in every_page(client, {"category": category.pk}) for slug in page}
    bob_page = client.get(reverse("catalog")).content.decode()
    search = client.get(reverse("catalog"), {"q": "problem"}).content.decode()

    assert "See all 131 in Category 0" in alice_page and "/actions/topsecret-7000/" in alice_page
    assert not seen & hidden
    assert "See all 100 in Category 0" in bob_page
    assert "210 actions match “problem”" in search
    assert client.get(reverse("catalog"), {"q": "Secret"}).context["count"] == 0


def test_a_category_whose_actions_are_all_hidden_is_a_404(client, bob, finance, db):
    bulk(SMALL_CATALOG, category=categories(1)[0])
    secret = Category.objects.create(name="Finance tools")
    finance.remote_actions.add(*bulk(3, start=900, prefix="Secret", category=secret))
    client.force_login(bob)

    response = client.get(reverse("catalog"), {"category": secret.pk})

    assert response.status_code == 404
    assert "Finance tools" not in response.content.decode()


# --- Bad parameters --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {"category": "abc"},
        {"category": "99999"},
        {"category": "99999999999999999999"},
        {"category": "1.5"},
        {"category": "-1"},
        {"category": "\x00"},
        {"category": "١"},  # a digit, but not an ASCII one
        {"page": "abc"},
        {"page": "0"},
        {"page": "-1"},
        {"page": "2"},  # the first page has no other pages
        {"page": "9" * 30},
        {"page": "\x00"},
        {"category": "first", "page": "4"},  # past the last page (3)
        {"category": "first", "page": "x"},
        {"q": "problem", "page": "9"},
        {"q": "problem", "page": ""},
    ],
)
def test_it_answers_404_to_a_category_or_page_that_is_not_there(alice_client, db, params):
    category = categories(1)[0]
    bulk(SMALL_CATALOG + 1, category=category)
    if params.get("category") == "first":
        params = params | {"category": str(category.pk)}

    response = alice_client.get(reverse("catalog"), params)

    assert response.status_code == 404
    assert "We could not find that page" in response.content.decode()
    assert 'href="/">See the actions you can run</a>' in response.content.decode()


def test_a_nul_in_the_search_is_still_a_400(alice_client, db):
    response = alice_client.get(reverse("catalog"), {"q": "a\x00b", "page": "2"})

    assert response.status_code == 400


def test_an_empty_category_parameter_is_the_first_page(alice_client, db):
    bulk(3)

    assert len(cards(alice_client.get(reverse("catalog"), {"category": "", "page": "1"}))) == 3


# --- Search ---------------------------------------------------------------------------------------
def test_it_pages_search_results(alice_client, db):
    cats = categories(2)
    printers = bulk(60, prefix="Printer", category=cats[0]) + bulk(10, start=100, prefix="Printer", category=cats[1])
    bulk(80, start=500, prefix="Disk", category=cats[0])
    RemoteAction.objects.filter(slug="printer-0105").update(featured=True)

    first = alice_client.get(reverse("catalog"), {"q": "printer"})
    pages = every_page(alice_client, {"q": "printer"})

    page = first.content.decode()
    assert '<p role="status" class="result-count">70 actions match “printer”. Showing 1 to 48, page 1 of 2.</p>' in page
    assert [len(p) for p in pages] == [48, 22]
    assert pages[0][0] == "printer-0105"  # featured first
    found = [slug for p in pages for slug in p]
    assert sorted(found) == sorted(a.slug for a in printers) and len(set(found)) == 70
    assert '<a href="?q=printer&amp;page=2" rel="next">Next</a>' in page
    second = alice_client.get(reverse("catalog"), {"q": "printer", "page": "2"}).content.decode()
    assert "Showing 49 to 70, page 2 of 2." in second
    assert 'role="search"' in second and 'value="printer"' in second


def test_a_search_that_fits_one_page_has_no_page_links(alice_client, db):
    bulk(3, prefix="Printer")
    bulk(200, start=100)

    response = alice_client.get(reverse("catalog"), {"q": "printer"})

    assert len(cards(response)) == 3
    assert "3 actions match “printer”." in response.content.decode()
    assert "Showing" not in response.content.decode() and 'aria-label="Pages"' not in response.content.decode()


# --- Cost ------------------------------------------------------------------------------------------
def test_the_query_count_does_not_grow_with_the_number_of_actions(alice_client, finance, alice, db):
    alice.groups.add(finance)
    make_device(alice)  # devices the portal knows: it does not look for them (test_platforms.py)
    cats = categories(3)
    counts = {}
    for size in (150, 1000):
        RemoteAction.objects.all().delete()
        for c, category in enumerate(cats):
            finance.remote_actions.add(*bulk(size // 3, start=c * 1000, prefix=f"C{c}", category=category))
        urls = {
            "first page": reverse("catalog"),
            "category page 2": f"{reverse('catalog')}?category={cats[0].pk}&page=2",
            "search page 2": f"{reverse('catalog')}?q=problem&page=2",
        }
        for name, url in urls.items():
            with CaptureQueriesContext(connection) as queries:
                assert alice_client.get(url).status_code == 200
            counts[name, size] = len(queries)

    # Session, user, the systems of the user's devices, the catalog; the first page: session, user, the
    # catalog's version with the user's groups and their devices' systems, and (not cached yet) the catalog.
    # Each also reads the employee's fair use once (runs/outlook.py: catalog_outlook; these actions have
    # no cooldown or daily limit, so nothing more).
    expected = {"first page": 5, "category page 2": 5, "search page 2": 5}
    assert counts == {(name, size): expected[name] for name in urls for size in (150, 1000)}


def test_the_first_page_is_read_once_per_catalog_version_and_combination_of_groups(client, alice, bob, finance):
    alice.groups.add(finance)
    bob.groups.add(finance)
    for employee in (alice, bob):  # devices of the same (unknown) system; known, so not looked for
        make_device(employee)
    bulk(SMALL_CATALOG + 20, category=categories(1)[0])
    client.force_login(alice)
    client.get(reverse("catalog"))
    client.force_login(bob)  # the same groups: the same first page, from the cache

    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("catalog"))

    # Session, user, the catalog's version with bob's groups and devices' systems; bob's fair use.
    assert len(queries) == 4


@pytest.mark.parametrize(
    ("change", "shown"),
    [
        (lambda action, other, category: action.delete(), False),
        (lambda action, other, category: setattr(action, "enabled", False) or action.save(), False),
        (lambda action, other, category: action.groups.add(other), False),  # now for another team only
        (lambda action, other, category: setattr(category, "name", "Renamed") or category.save(), True),
    ],
    ids=["deleted", "disabled", "restricted", "category-renamed"],
)
def test_every_change_to_what_the_catalog_shows_shows_at_the_next_view(alice_client, change, shown):
    category = categories(1)[0]
    other = Group.objects.create(name="Other team")
    target = bulk(SMALL_CATALOG + 20, category=category)[0]
    assert target.name in alice_client.get(reverse("catalog")).content.decode()  # cached now

    change(target, other, category)

    page = alice_client.get(reverse("catalog")).content.decode()
    assert (target.name in page) is shown
    assert ("Renamed" in page) is (category.name == "Renamed")


def test_deleting_a_group_shows_the_actions_it_alone_restricted(alice_client):
    other = Group.objects.create(name="Other team")
    target = bulk(SMALL_CATALOG + 20, category=categories(1)[0])[0]
    target.groups.add(other)
    assert target.name not in alice_client.get(reverse("catalog")).content.decode()

    other.delete()  # its links to actions go without m2m_changed: for everyone again

    assert target.name in alice_client.get(reverse("catalog")).content.decode()


def test_enabling_and_disabling_in_the_admin_shows_at_the_next_view(admin_client, alice_client):
    target = bulk(SMALL_CATALOG + 20, category=categories(1)[0])[0]
    assert target.name in alice_client.get(reverse("catalog")).content.decode()
    changelist = reverse("admin:actions_remoteaction_changelist")

    admin_client.post(changelist, {"action": "disable_actions", "_selected_action": [target.pk]})
    assert target.name not in alice_client.get(reverse("catalog")).content.decode()

    admin_client.post(changelist, {"action": "enable_actions", "_selected_action": [target.pk]})
    assert target.name in alice_client.get(reverse("catalog")).content.decode()


def test_the_first_page_and_category_pages_are_compiled_once(alice_client, bob, db, monkeypatch):
    from actions import compiled

    category = categories(1)[0]
    bulk(SMALL_CATALOG + 20, category=category)
    monkeypatch.setattr(compiled, "_compiled", {})
    alice_client.get(reverse("catalog"))
    alice_client.get(reverse("catalog"), {"category": category.pk})
    # The views went through compiled_rows: their queries are in its cache now.
    assert {build.__name__ for build, *_ in compiled._compiled} >= {"_overview_of", "_category_page_of"}
    compiles = []
    real = compiled._compile
    monkeypatch.setattr(compiled, "_compile", lambda *args: compiles.append(args[0]) or real(*args))

    alice_client.get(reverse("catalog"), {"category": category.pk, "page": 2})
    alice_client.force_login(bob)
    alice_client.get(reverse("catalog"))
    cache.clear()  # bob's first page read from the database again, not from the cache
    alice_client.get(reverse("catalog"))

    assert compiles == []
