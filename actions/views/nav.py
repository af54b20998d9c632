"""The top menu's "Approvals" link: shown to approvers only, without a query on every page for everyone.

Whether the user approves for some group is read at sign-in and kept in the session for
APPROVER_FLAG_SECONDS: a user added to (or removed from) an approver group sees the link change
within that time, or at their next sign-in. Only for approvers, the link carries how many requests
wait for them (one count from the index of waiting requests).
"""

from __future__ import annotations

import time
from functools import cached_property

from actions.runs.approvals import approvals_waiting_for, is_approver

APPROVER_KEY = "portal_approver"  # [is an approver, until (epoch seconds)]
APPROVER_FLAG_SECONDS = 300


def remember_approver(sender, request, user, **kwargs) -> None:
    """On user_logged_in: read whether the user approves, once, into the session."""
    if request is not None and hasattr(request, "session"):
        request.session[APPROVER_KEY] = [is_approver(user), int(time.time()) + APPROVER_FLAG_SECONDS]


class ApprovalsNav:
    """Truthy for an approver (read lazily, when the menu is drawn); `waiting` counts their requests."""

    def __init__(self, request):
        self.request = request

    def __bool__(self) -> bool:
        return self.shown

    @cached_property
    def shown(self) -> bool:
        user = getattr(self.request, "user", None)
        if user is None or not user.is_authenticated or not hasattr(self.request, "session"):
            return False
        session, now = self.request.session, int(time.time())
        kept = session.get(APPROVER_KEY)
        if isinstance(kept, list) and len(kept) == 2 and kept[1] > now:
            return bool(kept[0])
        flag = is_approver(user)
        session[APPROVER_KEY] = [flag, now + APPROVER_FLAG_SECONDS]
        return flag

    @cached_property
    def waiting(self) -> int:
        return approvals_waiting_for(self.request.user).count() if self.shown else 0


def approvals_nav(request) -> dict:
    """Context processor: `approvals_nav` for base.html."""
    return {"approvals_nav": ApprovalsNav(request)}
