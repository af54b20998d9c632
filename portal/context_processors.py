"""What every page shows from the settings: the site's name and how to reach the service desk."""

from django.conf import settings


def site(request) -> dict:
    return {
        "PORTAL_NAME": settings.PORTAL_NAME,
        "SERVICE_DESK": {
            "phone": settings.SERVICE_DESK_PHONE,
            "chat_url": settings.SERVICE_DESK_CHAT_URL,
            "hours": settings.SERVICE_DESK_HOURS,
        },
    }
