"""The language an employee reads: their choice on the Preferences page, else their browser's.

The choice is kept in their Preferences (so e-mails sent by the worker use it too:
actions.runs.notify.mail_language), in the session from sign-in on (so every page follows it without
a query), and in Django's language cookie (so the sign-in page of the same browser follows it too). No choice: the browser's Accept-Language, else
English (LANGUAGE_CODE). README "Languages".
"""

from __future__ import annotations

from django.conf import settings

from actions.models import Preferences

LANGUAGE_SESSION_KEY = "portal_language"


def is_offered(code: str) -> bool:
    return code in dict(settings.LANGUAGES)


def chosen_language(user) -> str:
    """The language the employee chose on the Preferences page; "" when they left it to the browser."""
    code = Preferences.objects.filter(user=user).values_list("language", flat=True).first() or ""
    return code if is_offered(code) else ""


def remember_language(sender, request, user, **kwargs) -> None:
    """On user_logged_in: the employee's chosen language into the session, read once."""
    if request is None or not hasattr(request, "session"):
        return
    code = chosen_language(user)
    if code:
        request.session[LANGUAGE_SESSION_KEY] = code
    else:
        request.session.pop(LANGUAGE_SESSION_KEY, None)
