from django.conf import settings


def client_address(request) -> str:
    """The employee's address, for security events. Behind our TLS proxy (BEHIND_TLS_PROXY), the
    last X-Forwarded-For entry: the one that proxy added; earlier entries are the client's to forge."""
    if settings.BEHIND_TLS_PROXY:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1][:64]
    return request.META.get("REMOTE_ADDR", "")
