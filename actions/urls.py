from django.urls import path

from actions.accounts import views as accounts
from actions.views import approvals, catalog, health, metrics, preferences, runs, tickets

urlpatterns = [
    path("login/", accounts.LoginView.as_view(), name="login"),
    path("logout/", accounts.logout, name="logout"),
    path("i18n/setlang/", accounts.set_language, name="set_language"),
    path("oidc/authenticate/", accounts.AuthenticateView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", accounts.CallbackView.as_view(), name="oidc_authentication_callback"),
    path("", catalog.catalog, name="catalog"),
    path("actions/<slug:slug>/", catalog.action_detail, name="action_detail"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("runs/", runs.my_runs, name="my_runs"),
    path("runs/<uuid:pk>/", runs.run_detail, name="run_detail"),
    path("runs/<uuid:pk>/status.json", runs.run_status, name="run_status"),
    path("runs/<uuid:pk>/feedback", runs.run_feedback_view, name="run_feedback"),
    path("preferences/", preferences.preferences, name="preferences"),
    path("runs/<uuid:pk>/get-help/", tickets.run_get_help, name="run_get_help"),
    path("runs/<uuid:pk>/cancel", approvals.run_cancel_view, name="run_cancel"),
    path("approvals/", approvals.approvals, name="approvals"),
    path("approvals/<uuid:pk>/decide", approvals.approval_decide, name="approval_decide"),
]
