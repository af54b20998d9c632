"""The employee's own preferences: one small page."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from actions.models import Preferences


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = Preferences
        fields = ["email_when_run_ends"]
        help_texts = {
            "email_when_run_ends": "When a run ends after you left its page, we e-mail you the result and ask "
            "whether it fixed your problem."
        }


@require_http_methods(["GET", "POST"])
def preferences(request):
    current = Preferences.objects.filter(user=request.user).first() or Preferences(user=request.user)
    form = PreferencesForm(request.POST if request.method == "POST" else None, instance=current)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Your preferences are saved.")
        return redirect("preferences")
    return render(request, "actions/preferences.html", {"form": form, "email": request.user.email})
