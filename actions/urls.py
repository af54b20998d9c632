from django.contrib.auth import views as auth_views
from django.urls import path

from actions.views import catalog, health, runs, tickets

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", catalog.catalog, name="catalog"),
    path("actions/<slug:slug>/", catalog.action_detail, name="action_detail"),
    path("healthz", health.healthz, name="healthz"),
    path("runs/", runs.my_runs, name="my_runs"),
    path("runs/<uuid:pk>/", runs.run_detail, name="run_detail"),
    path("runs/<uuid:pk>/status.json", runs.run_status, name="run_status"),
    path("runs/<uuid:pk>/get-help/", tickets.run_get_help, name="run_get_help"),
]
