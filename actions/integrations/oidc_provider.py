"""The OpenID Connect provider's HTTP: the only module of the sign-in code that calls out.

Discovery ({OIDC_ISSUER}/.well-known/openid-configuration) is fetched on first use and kept for the
life of the process; the token, JWKS and userinfo calls of the backend come through here too, with
a timeout, TLS verification and a User-Agent, so the provider is one seam to test and to reason about.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from django.conf import settings

USER_AGENT = "fix-my-device-portal (sign-in)"
REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")


class ProviderError(Exception):
    """The provider did not answer, or answered something unusable."""


_lock = threading.Lock()
_discovery: dict[str, Any] | None = None


def _get(url: str, **kwargs) -> requests.Response:
    try:
        response = requests.get(
            url,
            timeout=settings.OIDC_TIMEOUT,
            headers={"User-Agent": USER_AGENT, **kwargs.pop("headers", {})},
            **kwargs,
        )
        response.raise_for_status()
    except requests.RequestException as exc:
        raise ProviderError(f"GET {url}: {exc}") from exc
    return response


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ProviderError(f"{response.url}: the answer is not a JSON object")
    return body


def discovery() -> dict[str, Any]:
    """The provider's metadata, fetched once per process; the issuer it states must be ours."""
    global _discovery
    with _lock:
        if _discovery is None:
            issuer = settings.OIDC_ISSUER
            document = _json(_get(issuer + "/.well-known/openid-configuration"))
            if document.get("issuer", "").rstrip("/") != issuer:
                raise ProviderError(f"discovery names issuer {document.get('issuer')!r}, not {issuer!r}")
            missing = [name for name in REQUIRED_ENDPOINTS if not document.get(name)]
            if missing:
                raise ProviderError(f"discovery lacks {', '.join(missing)}")
            _discovery = document
        return _discovery


def forget_discovery() -> None:
    """Drop the cached metadata (tests; or a provider that moved its endpoints)."""
    global _discovery
    with _lock:
        _discovery = None


def endpoint(name: str) -> str | None:
    return discovery().get(name) or None


def fetch_jwks() -> dict[str, Any]:
    return _json(_get(discovery()["jwks_uri"]))


def post_token(data: dict[str, str], auth: tuple[str, str] | None) -> requests.Response:
    """The token request; the caller reads the provider's error answer, so it is returned as is."""
    try:
        return requests.post(
            discovery()["token_endpoint"],
            data=data,
            auth=auth,
            timeout=settings.OIDC_TIMEOUT,
            headers={"User-Agent": USER_AGENT},
        )
    except requests.RequestException as exc:
        raise ProviderError(f"token endpoint: {exc}") from exc


def fetch_userinfo(access_token: str) -> dict[str, Any] | None:
    url = endpoint("userinfo_endpoint")
    if url is None:
        return None
    return _json(_get(url, headers={"Authorization": f"Bearer {access_token}"}))
