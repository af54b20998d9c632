"""The catalog's version moves with every bulk write of what the catalog shows, whoever writes it.

The first page and the action page's action are cached under the version (actions/catalog/selectors.py).
QuerySet.update(), bulk_create(), bulk_update() and delete() send no signal per object: the models'
queryset (actions.models.CatalogQuerySet) moves the version itself, in the write's transaction.
"""

import uuid

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from actions.models import ActionParameter, CatalogVersion, Category, Engine, RemoteAction
from tests.factories import make_action, make_device, make_parameter


def version() -> int | None:
    return CatalogVersion.objects.filter(pk=1).values_list("number", flat=True).first()


def catalog(client) -> str:
    return client.get(reverse("catalog")).content.decode()


@pytest.fixture
def bob_client(bob):
    client = Client()
    client.force_login(bob)
    return client


def _new_action(target, category):
    fields = {"name": "Brand new action", "slug": "brand-new", "nexthink_uid": uuid.uuid4(), "enabled": True}
    RemoteAction.objects.bulk_create([RemoteAction(category=category, **fields)])


def _bulk_disable(target, category):
    target.enabled = False
    RemoteAction.objects.bulk_update([target], ["enabled"])


# Each write, and what the next view shows for it: (text expected on the page, text no longer on it).
WRITES = {
    "update-disabled": (lambda a, c: RemoteAction.objects.filter(pk=a.pk).update(enabled=False), None, "Target"),
    "update-renamed": (lambda a, c: RemoteAction.objects.filter(pk=a.pk).update(name="Renamed"), "Renamed", "Target"),
    "bulk-update": (_bulk_disable, None, "Target"),
    "bulk-create": (_new_action, "Brand new action", None),
    "delete": (lambda a, c: RemoteAction.objects.filter(pk=a.pk).delete(), None, "Target"),
    "category-update": (lambda a, c: Category.objects.filter(pk=c.pk).update(name="Tools"), "Tools", "Printing"),
}


@pytest.mark.parametrize(("write", "shown", "gone"), WRITES.values(), ids=WRITES.keys())
def test_a_bulk_write_shows_at_the_next_view_in_this_process_and_any_other(
    alice_client, bob_client, write, shown, gone
):
    category = Category.objects.create(name="Printing")
    target = make_action(name="Target", category=category)
    make_action(name="Neighbour", category=category)
    # Both cache the first page: alice's view here, bob's (same groups, so the same cache entry) as
    # another process that had read it before the write and now reads the version afresh.
    assert "Target" in catalog(alice_client) and "Target" in catalog(bob_client)

    write(target, category)

    for client in (alice_client, bob_client):
        page = catalog(client)
        assert "Neighbour" in page
        assert shown is None or shown in page
        assert gone is None or gone not in page


def test_the_version_moves_in_the_write_s_own_transaction(db):
    action = make_action()
    CatalogVersion.bump()
    before = version()

    with pytest.raises(RuntimeError), transaction.atomic():
        RemoteAction.objects.filter(pk=action.pk).update(enabled=False)
        assert version() == before + 1  # not after the transaction: in it
        raise RuntimeError("rolled back")

    assert version() == before and RemoteAction.objects.get(pk=action.pk).enabled


def test_a_write_that_changes_nothing_keeps_the_version(db):
    make_action()
    CatalogVersion.bump()
    before = version()

    RemoteAction.objects.filter(pk=0).update(enabled=False)
    RemoteAction.objects.filter(pk=0).delete()
    RemoteAction.objects.bulk_create([])

    assert version() == before


def form(client, action) -> str:
    return client.get(reverse("action_detail", args=[action.slug])).content.decode()


@pytest.fixture
def action_page(alice, alice_client):
    action = make_action()
    make_parameter(action, name="Days", label="Days", kind=ActionParameter.Kind.INTEGER, max_value=30)
    make_device(alice)
    assert 'max="30"' in form(alice_client, action)  # the action and its parameters cached now
    return action


def test_bulk_created_parameters_show_at_the_next_view(alice_client, action_page):
    ActionParameter.objects.bulk_create([ActionParameter(action=action_page, name="Reason", label="Reason")])

    assert "Reason" in form(alice_client, action_page)


def test_an_updated_parameter_shows_at_the_next_view(alice_client, action_page):
    action_page.parameters.update(max_value=60)  # through the related manager: the same queryset

    assert 'max="60"' in form(alice_client, action_page)


def test_only_an_engine_s_uid_moves_the_version(db):
    engine = Engine.objects.create(database_uid="e" * 32, name="EMEA")
    before = version()

    Engine.objects.filter(pk=engine.pk).update(status="connected")  # the hourly sync's kind of write
    Engine.objects.bulk_update([engine], ["status"])
    assert version() == before

    Engine.objects.filter(pk=engine.pk).update(database_uid="f" * 32)
    assert version() == (before or 0) + 1
