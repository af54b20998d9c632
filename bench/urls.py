"""The portal's URLs plus /bench/hello: the baseline of the catalog benchmark. Never in production."""

from django.http import HttpResponse
from django.urls import include, path


def hello(request):
    # Signed in like the catalog (LoginRequiredMiddleware loads the session and the user), no template.
    return HttpResponse(f"hello {request.user.get_username()}", content_type="text/plain")


urlpatterns = [
    path("bench/hello", hello, name="bench_hello"),
    path("", include("portal.urls")),
]
