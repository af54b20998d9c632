"""The run page's "anything new?" answered before the session, the user or the run is read."""

from django.conf import settings
from django.http import HttpResponseNotModified
from django.urls import Resolver404, resolve
from django.utils.cache import add_never_cache_headers, patch_cache_control

from actions.runs import watch


class RunStatusNotModifiedMiddleware:
    """A status poll whose If-None-Match is the tag this session was given for the run's current
    version gets 304 Not Modified at once (actions/runs/watch.py says why that leaks nothing).
    Anything else goes on through the whole stack, unchanged."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tag = request.META.get("HTTP_IF_NONE_MATCH")
        if tag and request.method == "GET":
            try:
                match = resolve(request.path_info)
            except Resolver404:
                match = None
            session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
            if (
                match is not None
                and match.url_name == "run_status"
                and watch.not_modified(match.kwargs["pk"], session_key, tag)
            ):
                response = HttpResponseNotModified()
                response["ETag"] = tag
                add_never_cache_headers(response)
                patch_cache_control(response, private=True)
                return response
        return self.get_response(request)
