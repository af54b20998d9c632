"""Small middleware of the portal's own."""

from django.utils.cache import add_never_cache_headers, patch_cache_control


class NoStoreForSignedInMiddleware:
    """Pages for a signed-in employee are theirs alone: no browser or proxy may keep a copy
    (Cache-Control: no-store). Static files (served before this by WhiteNoise) keep their caching."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            add_never_cache_headers(response)
            patch_cache_control(response, private=True)
        return response
