import json

from django.urls import reverse

from tests.conftest import BROKER_DOWN


def test_it_reports_healthy_without_signing_in(client, db):
    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": True, "broker": True}}


def test_it_reports_an_unreachable_broker_with_503(client, db, use_broker):
    use_broker(BROKER_DOWN)

    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": True, "broker": False}
    assert "127.0.0.1:9" not in json.dumps(response.json())
