from django.contrib.auth import views as auth_views
from django.urls import path

from actions.views import catalog, runs

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", catalog.catalog, name="catalog"),
    path("runs/<uuid:pk>/", runs.run_detail, name="run_detail"),
]
