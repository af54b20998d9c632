"""django-axes hooks: which attempts count, and the lock-out page."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render
from django.utils.translation import gettext, gettext_noop

from actions.security import client_address, sign_in_event

LOCKED_OUT_MESSAGE = gettext_noop(
    "Too many failed sign-ins with a password from here or for this user name. "
    "Password sign-in is paused for %(minutes)s minutes; try again later or contact your IT service desk."
)


def is_not_a_password_attempt(request, credentials) -> bool:
    """Axes counts and locks password sign-ins only: the company account and the proxy header are the
    provider's to throttle, and a shared office address must not lock them out."""
    return not (credentials or {}).get("password")


def lockout_response(request, original_response=None, credentials=None):
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    sign_in_event("local_login_locked_out", username=username, source_address=client_address(request))
    minutes = max(1, settings.LOGIN_LOCKOUT_SECONDS // 60)
    context = {
        "form": AuthenticationForm(request),
        "locked_out_message": gettext(LOCKED_OUT_MESSAGE) % {"minutes": minutes},
        "oidc_enabled": settings.OIDC_ENABLED,
        "local_login": settings.LOCAL_LOGIN,
    }
    return render(request, "registration/login.html", context, status=429)
