"""Admin is for superusers and portal staff (curators, IT support) only."""

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse


@pytest.fixture
def plain_staff(db):
    return User.objects.create_user("sam", password="x", is_staff=True)


def test_staff_without_a_portal_permission_cannot_reach_admin(client, plain_staff):
    client.force_login(plain_staff)

    response = client.get(reverse("admin:index"))

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_with_a_portal_permission_reaches_admin(client, plain_staff):
    plain_staff.user_permissions.add(Permission.objects.get(codename="view_run"))
    client.force_login(plain_staff)

    assert client.get(reverse("admin:index")).status_code == 200


def test_an_employee_cannot_reach_admin(client, alice):
    client.force_login(alice)

    assert client.get(reverse("admin:index")).status_code == 302


def test_only_superusers_may_change_where_nxql_sends_credentials(client, plain_staff, admin_client):
    from actions.models import Engine

    engine = Engine.objects.create(database_uid="86acc8511251ec444d3a75bac33a23c7", name="emea", address="10.0.0.5")
    for codename in ("view_engine", "change_engine"):
        plain_staff.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(plain_staff)
    url = reverse("admin:actions_engine_change", args=[engine.pk])

    staff_page = client.get(url).content.decode()
    admin_page = admin_client.get(url).content.decode()

    assert 'name="address"' not in staff_page and "10.0.0.5" in staff_page
    assert 'name="address"' in admin_page
