"""Session limits (idle timeout, absolute lifetime) and the SSO proxy's header."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import load_backend
from django.contrib.auth.backends import RemoteUserBackend
from django.contrib.auth.middleware import RemoteUserMiddleware
from django.contrib.auth.views import redirect_to_login
from django.urls import Resolver404, resolve
from django.utils.decorators import sync_only_middleware

from actions.security import sign_in_event

SIGNED_IN_AT_KEY = "portal_signed_in_at"
SEEN_AT_KEY = "portal_seen_at"
SIGNED_OUT_REASON_KEY = "portal_signed_out_reason"
# Pages that poll by themselves: an open tab is not an employee at work.
PASSIVE_URL_NAMES = {"run_status", "healthz"}
# Write the last activity at most this often (seconds), not on every request.
SEEN_AT_RESOLUTION_SECONDS = 30


def _is_passive(request) -> bool:
    try:
        return resolve(request.path_info).url_name in PASSIVE_URL_NAMES
    except Resolver404:
        return False


def start_session_clock(sender, request, user, **kwargs) -> None:
    """On user_logged_in: the session's lifetime and idle time count from now."""
    if request is not None and hasattr(request, "session"):
        now = int(time.time())
        request.session[SIGNED_IN_AT_KEY] = now
        request.session[SEEN_AT_KEY] = now


class SessionLimitsMiddleware:
    """Signs the user out after SESSION_IDLE_TIMEOUT_SECONDS without activity, or SESSION_MAX_AGE_SECONDS
    after signing in, whichever comes first. (A deactivated user is already signed out by Django's
    AuthenticationMiddleware: every backend here refuses an inactive user in get_user.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            session = request.session
            now = int(time.time())
            signed_in_at = session.setdefault(SIGNED_IN_AT_KEY, now)
            seen_at = session.get(SEEN_AT_KEY, now)
            reason = None
            if now - signed_in_at >= settings.SESSION_MAX_AGE_SECONDS:
                reason = "max_age"
            elif now - seen_at >= settings.SESSION_IDLE_TIMEOUT_SECONDS:
                reason = "idle"
            if reason:
                auth.logout(request)
                request.session[SIGNED_OUT_REASON_KEY] = reason
                return redirect_to_login(request.get_full_path())
            if SEEN_AT_KEY not in session or (now - seen_at >= SEEN_AT_RESOLUTION_SECONDS and not _is_passive(request)):
                session[SEEN_AT_KEY] = now
        return self.get_response(request)


def header_meta_key(header: str) -> str:
    return "HTTP_" + header.strip().upper().replace("-", "_")


@sync_only_middleware  # Django's RemoteUserMiddleware is async-capable: this one is not (process_request only)
class ProxyHeaderMiddleware(RemoteUserMiddleware):
    """REMOTE_USER_HEADER signs the user in only behind the TLS proxy and from REMOTE_USER_PROXY_ADDRESSES.

    From anywhere else the header is removed from the request, ignored and logged: a client that
    reaches the portal directly could otherwise name any user.
    """

    def process_request(self, request):
        if not settings.REMOTE_USER_HEADER:
            return None
        key = header_meta_key(settings.REMOTE_USER_HEADER)
        if key in request.META and not self._from_trusted_proxy(request):
            sign_in_event(
                "proxy_header_ignored",
                username=request.META.pop(key),
                source_address=request.META.get("REMOTE_ADDR", ""),
                reason="not from a configured proxy address"
                if settings.BEHIND_TLS_PROXY
                else "BEHIND_TLS_PROXY is off",
            )
            # Nor may an earlier header sign-in go on from an untrusted address.
            if request.user.is_authenticated:
                _log_out_header_user(request)
            return None
        return super().process_request(request)

    def get_username(self, request):
        return request.META[header_meta_key(settings.REMOTE_USER_HEADER)]

    @staticmethod
    def _from_trusted_proxy(request) -> bool:
        return settings.BEHIND_TLS_PROXY and request.META.get("REMOTE_ADDR", "") in settings.REMOTE_USER_PROXY_ADDRESSES


def _log_out_header_user(request) -> None:
    """Sign out a user whom a header signed in (RemoteUserMiddleware._remove_invalid_user, which is
    private to Django: a user signed in another way stays signed in)."""
    try:
        stored_backend = load_backend(request.session.get(auth.BACKEND_SESSION_KEY, ""))
    except ImportError:
        auth.logout(request)  # the backend that signed them in is gone
    else:
        if isinstance(stored_backend, RemoteUserBackend):
            auth.logout(request)
