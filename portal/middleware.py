"""Small middleware of the portal's own."""

from auditlog.middleware import AuditlogMiddleware
from django.middleware.locale import LocaleMiddleware
from django.utils import translation
from django.utils.cache import add_never_cache_headers, patch_cache_control

from actions.accounts.language import LANGUAGE_SESSION_KEY, is_offered
from actions.audit import audit_address
from actions.security import client_address


class PreferredLocaleMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware (the language cookie, else the browser's Accept-Language), with the
    employee's choice on the Preferences page first: kept in the session from sign-in on
    (actions.accounts.language), so following it costs no query."""

    def process_request(self, request):
        super().process_request(request)
        session = getattr(request, "session", None)
        chosen = session.get(LANGUAGE_SESSION_KEY) if session is not None else None
        if chosen and is_offered(chosen):
            translation.activate(chosen)
            request.LANGUAGE_CODE = translation.get_language()


class NoStoreForSignedInMiddleware:
    """Pages for a signed-in employee are theirs alone: no browser or proxy may keep a copy
    (Cache-Control: no-store). Static files (served before this by WhiteNoise) keep their caching."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            add_never_cache_headers(response)
            patch_cache_control(response, private=True)
        return response


class HealthzMiddleware:
    """Answer the load balancer's probe of /healthz whatever its Host header (probes use the
    machine's address), before anything checks ALLOWED_HOSTS or redirects to https. Every other
    request goes through the usual checks, unchanged."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == "/healthz" and request.method in ("GET", "HEAD"):
            from actions.views.health import healthz

            return healthz(request)
        return self.get_response(request)


class AuditMiddleware(AuditlogMiddleware):
    """The audit trail's actor and address for every record written during this request (django-auditlog).

    The address is the one the security events use (actions.security.client_address: behind our TLS
    proxy, the entry that proxy added), kept only if it is an IP address; the port and any correlation id
    the client sends are not recorded, being the client's to forge."""

    @staticmethod
    def _get_remote_addr(request):
        return audit_address(client_address(request))

    @staticmethod
    def _get_remote_port(request):
        return None
