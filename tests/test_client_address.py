from django.test import RequestFactory

from actions.security import client_address


def test_it_uses_the_socket_address_by_default(settings):
    settings.BEHIND_TLS_PROXY = False
    request = RequestFactory().get("/", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="6.6.6.6")

    assert client_address(request) == "10.1.2.3"


def test_behind_the_proxy_it_trusts_only_the_entry_the_proxy_added(settings):
    settings.BEHIND_TLS_PROXY = True
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.44")

    assert client_address(request) == "192.0.2.44"
