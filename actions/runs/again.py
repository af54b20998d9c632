"""May the employee run this action again from a run's page, and if not now, when?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.urls import reverse
from django.utils.translation import gettext

from actions.models import Run
from actions.nexthink.errors import ErrorKind
from actions.runs.selectors import visible_and_owned
from actions.runs.states import is_final
from actions.runs.submit import run_limits
from actions.runs.wording import when_text


@dataclass(frozen=True)
class RunAgain:
    allowed: bool
    url: str = ""
    text: str = ""  # why not, or from when: shown instead of the button
    at: datetime | None = None

    def as_dict(self) -> dict:
        return {"allowed": self.allowed, "url": self.url, "text": self.text}


def run_again(run: Run, user) -> RunAgain:
    """Offered once the run is final, while the action is visible to the employee, the refusal was not
    permanent, and the cooldown and daily limit allow it; otherwise says when it will be possible."""
    if not is_final(run.status) or run.action_id is None or run.device is None:
        return RunAgain(False)
    # Only for the employee's own run, while its action is still theirs to see.
    if run.user_id != user.pk or not user.is_active or not visible_and_owned(run.pk)[0]:
        return RunAgain(False)
    if run.status == Run.Status.FAILED and run.error_kind == ErrorKind.PERMANENT:
        # Running it again gets the same refusal: the page says to contact IT instead.
        return RunAgain(False)
    action = run.action
    if action is None:  # withdrawn since the check above
        return RunAgain(False)
    limits = run_limits(user=user, action=action, device=run.device)
    if not limits.allowed:
        text = (
            gettext("You can run it again from %(when)s.") % {"when": when_text(limits.again_at)}
            if limits.again_at
            else limits.message
        )
        return RunAgain(False, text=text, at=limits.again_at)
    url = reverse("action_detail", kwargs={"slug": action.slug}) + f"?again={run.pk}"
    return RunAgain(True, url=url)
