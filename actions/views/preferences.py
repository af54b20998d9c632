"""The employee's own preferences: one small page."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from actions.accounts.language import LANGUAGE_SESSION_KEY, is_offered
from actions.models import Preferences


def language_choices() -> list[tuple[str, str]]:
    # Each language in its own words ("Français"), so that whoever reads it finds theirs.
    return [("", _("The language of your browser"))] + [
        (code, translation.get_language_info(code)["name_local"]) for code, _name in settings.LANGUAGES
    ]


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = Preferences
        fields = ["email_when_run_ends", "language"]
        labels = {
            "email_when_run_ends": _("E-mail me when a run ends after I left its page"),
            "language": _("Language"),
        }
        help_texts = {
            "email_when_run_ends": _(
                "When a run ends after you left its page, we e-mail you the result and ask "
                "whether it fixed your problem."
            ),
            "language": _("The language of the portal's pages and of its e-mails to you."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"] = forms.ChoiceField(
            label=self.fields["language"].label,
            help_text=self.fields["language"].help_text,
            choices=language_choices,
            required=False,
        )


@require_http_methods(["GET", "POST"])
def preferences(request):
    current = Preferences.objects.filter(user=request.user).first() or Preferences(user=request.user)
    form = PreferencesForm(request.POST if request.method == "POST" else None, instance=current)
    if request.method == "POST" and form.is_valid():
        form.save()
        code = form.cleaned_data["language"]
        if code and is_offered(code):
            request.session[LANGUAGE_SESSION_KEY] = code
            translation.activate(code)
        else:
            request.session.pop(LANGUAGE_SESSION_KEY, None)
            request.COOKIES.pop(settings.LANGUAGE_COOKIE_NAME, None)  # deleted below: the browser's language now
            translation.activate(translation.get_language_from_request(request))
        messages.success(request, gettext("Your preferences are saved."))
        response = redirect("preferences")
        # This browser's sign-in page follows the choice too (Django's language cookie, as set_language sets it).
        if code:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                code,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                path=settings.LANGUAGE_COOKIE_PATH,
                domain=settings.LANGUAGE_COOKIE_DOMAIN,
                secure=settings.LANGUAGE_COOKIE_SECURE,
                httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            )
        else:
            response.delete_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                path=settings.LANGUAGE_COOKIE_PATH,
                domain=settings.LANGUAGE_COOKIE_DOMAIN,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            )
        return response
    return render(request, "actions/preferences.html", {"form": form, "email": request.user.email})
