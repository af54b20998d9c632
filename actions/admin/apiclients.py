"""Admin for the integration API's clients: made with scopes and a reach, the secret shown once, revoked at once."""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from actions.admin.two_lists import TwoListHelp
from actions.apiclients import SCOPES, client_new_secret, client_revoke, hash_secret, new_secret
from actions.models import ApiCall, ApiClient


class ApiClientForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"), choices=list(SCOPES.items()), widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = ApiClient
        fields = ["name", "owner", "scopes", "actions", "categories", "expires_at"]


@admin.register(ApiClient)
class ApiClientAdmin(TwoListHelp, admin.ModelAdmin):
    form = ApiClientForm
    list_display = ("name", "owner", "scope_list", "expires_at", "revoked_at", "last_used_at")
    list_select_related = ("owner",)
    list_filter = ("revoked_at",)
    search_fields = ("name", "owner__username")
    filter_horizontal = ("actions", "categories")
    two_list_help = {
        "actions": _("The actions this client may run. None chosen here or below: every action."),
        "categories": _("Every action of these categories too, besides those chosen above."),
    }
    readonly_fields = ("secret_hint", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke", "make_new_secret"]

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: ApiClient) -> str:
        return ", ".join(obj.scopes or [])

    def save_model(self, request, obj, form, change):
        if not change:
            secret = new_secret()
            obj.secret_hash, obj.secret_hint = hash_secret(secret), secret[:12]
            request.api_client_secret = secret  # shown once, by response_add; never stored
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        return self._secret_page(request, obj, request.api_client_secret)

    def _secret_page(self, request, obj: ApiClient, secret: str):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("The secret of %(client)s") % {"client": obj},
            "client": obj,
            "secret": secret,
        }
        return TemplateResponse(request, "admin/actions/apiclient/secret.html", context)

    @admin.action(description=_("Revoke the selected clients (refused from their next call)"))
    def revoke(self, request, queryset):
        for client in queryset:
            client_revoke(client)
        messages.success(request, gettext("Revoked at %(time)s.") % {"time": f"{timezone.localtime():%H:%M:%S}"})

    @admin.action(description=_("Make a new secret (the old one stops working)"))
    def make_new_secret(self, request, queryset):
        if queryset.count() != 1:
            messages.error(request, gettext("Choose exactly one client."))
            return None
        client = queryset.get()
        return self._secret_page(request, client, client_new_secret(client))


@admin.register(ApiCall)
class ApiCallAdmin(admin.ModelAdmin):
    list_display = ("at", "client_name", "method", "path", "employee", "status", "problem")
    list_filter = ("status", "problem", "client_name")
    search_fields = ("client_name", "employee", "path", "=run_id")
    readonly_fields = [f.name for f in ApiCall._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
