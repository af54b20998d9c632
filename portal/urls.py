from django.contrib import admin
from django.urls import include, path

from actions.api.v1 import urls as api_v1_urls

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api_v1_urls()),
    path("", include("actions.urls")),
]
