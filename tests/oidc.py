"""OpenID Connect for the tests: a real provider process (oidc-provider-mock) on loopback, and a forger
of ID tokens for the refusal tests, which stands in at the one HTTP seam (actions.integrations.oidc_provider)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from django.urls import reverse

from actions.integrations import oidc_provider as provider
from tests.servers import free_port

CLIENT_ID = "fix-my-device"
CLIENT_SECRET = "test-client-secret"


class ProviderProcess:
    """`python -m oidc_provider_mock` on a free loopback port; users and their claims set over HTTP."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(self.url + "/.well-known/openid-configuration", timeout=1).raise_for_status()
                return
            except requests.RequestException:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the OIDC provider did not start; see {log_path}") from None
                time.sleep(0.1)

    def set_user(self, sub: str, claims: dict) -> None:
        """The claims the provider gives `sub` at the next sign-in (groups, preferred_username...)."""
        requests.put(f"{self.url}/users/{sub}", json=claims, timeout=5).raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def oidc_provider_process(tmp_path_factory):
    server = ProviderProcess(tmp_path_factory.mktemp("oidc") / "provider.log")
    yield server
    server.stop()


@pytest.fixture
def oidc_provider(oidc_provider_process, settings):
    """The portal's settings pointing at the provider process."""
    configure(settings, oidc_provider_process.url)
    yield oidc_provider_process
    provider.forget_discovery()


def configure(settings, issuer: str) -> None:
    provider.forget_discovery()
    settings.OIDC_ISSUER = issuer
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_USERNAME_CLAIM = "preferred_username"
    settings.OIDC_GROUPS_CLAIM = "groups"
    settings.OIDC_GROUP_MAP = {}
    settings.OIDC_CURATOR_GROUP = ""
    settings.OIDC_ANY_DEVICE_GROUP = ""


def start_sign_in(client) -> dict[str, str]:
    """GET the portal's sign-in start; the authorization request's parameters (state, nonce...)."""
    response = client.get(reverse("oidc_authentication_init"))
    assert response.status_code == 302, response.content
    return {"url": response["Location"]} | {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}


def approve_at_provider(authorize_url: str, sub: str) -> str:
    """The provider's consent form, answered as `sub`: the callback URL (path and query) it redirects to."""
    response = requests.post(authorize_url, data={"sub": sub}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    parts = urlsplit(response.headers["Location"])
    return f"{parts.path}?{parts.query}"


# --- Forged tokens, at the seam -------------------------------------------------------------------
FORGED_ISSUER = "https://idp.corp.example"


class Forger:
    """Plays the provider behind actions.integrations.oidc_provider: discovery, JWKS, and the token answer."""

    def __init__(self, monkeypatch):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [public | {"kid": "k1", "alg": "RS256", "use": "sig"}]}
        self.id_token = ""
        self.token_requests: list[dict] = []
        document = {
            "issuer": FORGED_ISSUER,
            "authorization_endpoint": FORGED_ISSUER + "/authorize",
            "token_endpoint": FORGED_ISSUER + "/token",
            "jwks_uri": FORGED_ISSUER + "/jwks",
        }
        monkeypatch.setattr(provider, "discovery", lambda: document)
        monkeypatch.setattr(provider, "fetch_jwks", lambda: self.jwks)
        monkeypatch.setattr(provider, "fetch_userinfo", lambda access_token: None)
        monkeypatch.setattr(provider, "post_token", self._post_token)

    def _post_token(self, data, auth):
        self.token_requests.append(dict(data))
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps(
            {"id_token": self.id_token, "access_token": "at", "token_type": "Bearer"}
        ).encode()
        return response

    def sign(self, claims: dict, *, key=None, kid: str = "k1") -> str:
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid})

    def claims(self, nonce: str, **changes) -> dict:
        now = int(time.time())
        return {
            "iss": FORGED_ISSUER,
            "aud": CLIENT_ID,
            "sub": "sub-dana",
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "preferred_username": "dana",
            "email": "dana@corp.example",
            "groups": [],
        } | changes
