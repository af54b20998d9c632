import os
import subprocess

import pytest
import redis
import requests
from django.contrib.auth.models import Group, User

from actions.nexthink.classic.client import ActClient
from simulators import act_api as sim
from tests.factories import AMER, EMEA, make_laptop, make_parameter, make_sim_action

# Fixtures of the ticketing tests: servicenow (simulator), webhook (a loopback receiver); of the
# browser tests: browser (Chromium), server (the live server), screenshot.
pytest_plugins = ["tests.tickets_support", "tests.browser_support"]


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty cache: its database rolls back, and what was cached from it must go too."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session")
def simulator_server():
    """The Act API simulator on a free loopback port, shared by the session; see `simulator`."""
    server = sim.start_in_thread()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def simulator(simulator_server):
    """A simulator with no faults and no recorded requests, reached over real HTTP."""
    requests.post(simulator_server.url + "/_sim/reset", timeout=5)
    yield simulator_server
    requests.post(simulator_server.url + "/_sim/reset", timeout=5)


def requests_received(server, verify: bool | str = True) -> list[dict]:
    """The Act API requests a simulator received (`verify`: the CA bundle of an HTTPS one)."""
    return requests.get(server.url + "/_sim/requests", timeout=5, verify=verify).json()


def add_fault(server, fault: str, verify: bool | str = True, **options) -> None:
    response = requests.post(server.url + "/_sim/faults", json={"fault": fault, **options}, timeout=5, verify=verify)
    response.raise_for_status()


@pytest.fixture
def sim_requests(simulator):
    """Call to read the Act API requests the simulator received."""
    return lambda: requests_received(simulator)


@pytest.fixture
def inject_fault(simulator):
    return lambda fault, **options: add_fault(simulator, fault, **options)


@pytest.fixture
def act_client(simulator):
    return ActClient(
        base_url=simulator.url, username="portal", password="portal-demo", default_timeout=5, read_margin=1
    )


@pytest.fixture
def use_simulator(settings, simulator):
    """Point the portal's settings at the test simulator."""
    settings.NEXTHINK_PORTAL_URL = simulator.url
    settings.NEXTHINK_USERNAME = "portal"
    settings.NEXTHINK_PASSWORD = "portal-demo"
    settings.NEXTHINK_DEFAULT_TIMEOUT_SECONDS = 5
    settings.NEXTHINK_READ_MARGIN_SECONDS = 1
    return simulator


@pytest.fixture
def alice(db):
    return User.objects.create_user("alice", "alice@corp.example", "alice-pass")


@pytest.fixture
def bob(db):
    return User.objects.create_user("bob", "bob@corp.example", "bob-pass")


@pytest.fixture
def admin_user(db):
    return User.objects.create_superuser("admin", "admin@corp.example", "admin-pass")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def laptop(alice):
    """Alice's laptop, LAPTOP-ALICE (uid factories.ALICE_LAPTOP), of no known Engine."""
    return make_laptop(alice)


@pytest.fixture
def action(db):
    """The simulator's "Clear Teams cache" with a free-text Mode parameter; no Engine set, so it may run on all."""
    action = make_sim_action()
    make_parameter(action, name="Mode", label="Mode")
    return action


@pytest.fixture
def emea_action(action):
    """`action`, allowed on engine-emea only."""
    action.engines.create(database_uid=EMEA, name="engine-emea")
    return action


@pytest.fixture
def finance(db):
    return Group.objects.create(name="Finance")


@pytest.fixture
def staff_group(db):
    return Group.objects.create(name="Field staff")


def _embedded_queue(settings, task: str):
    """The embedded broker's queue folder, emptied; a function reading the first argument of each
    message of `task` waiting in it."""
    import base64
    import json
    from pathlib import Path

    folder = Path(settings.BROKER_DIR) / "queue"
    for old in folder.glob("*.msg"):
        old.unlink()

    def first_arguments() -> list:
        found = []
        for message in sorted(folder.glob("*.msg")):
            payload = json.loads(message.read_text())
            if payload["headers"]["task"] == task:
                found.append(json.loads(base64.b64decode(payload["body"]))[0][0])
        return found

    return first_arguments


@pytest.fixture
def broker_queue(settings):
    """The embedded broker's queue, emptied; call it to read the run ids waiting in it."""
    return _embedded_queue(settings, "actions.tasks.dispatch_run")


@pytest.fixture
def ticket_queue(settings):
    """The embedded broker's queue, emptied; call it to read the ticket ids of the create_ticket messages."""
    return _embedded_queue(settings, "actions.tasks.create_ticket")


@pytest.fixture
def curators(db):
    """The "Portal curators" group that migration 0002_portal_curators_group creates."""
    return Group.objects.get(name="Portal curators")


@pytest.fixture
def carol(curators):
    """A curator: staff, in the Portal curators group, no other permission."""
    user = User.objects.create_user("carol", "carol@corp.example", "carol-pass", is_staff=True)
    user.groups.add(curators)
    return user


# --- The simulator over HTTPS ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """A CA and a server certificate for 127.0.0.1 signed by it, made with openssl."""
    folder = tmp_path_factory.mktemp("tls")

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"
    )
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "server.pem",
        "-extfile",
        "ext.cnf",
    )
    return folder


@pytest.fixture(scope="session")
def tls_ca(tls_files) -> str:
    """The CA bundle that trusts the HTTPS simulator's certificate."""
    return str(tls_files / "ca.pem")


@pytest.fixture(scope="session")
def tls_simulator_server(tls_files):
    server = sim.start_in_thread(certfile=str(tls_files / "server.pem"), keyfile=str(tls_files / "server.key"))
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def tls_simulator(tls_simulator_server, tls_ca):
    """The simulator over HTTPS (its certificate signed by `tls_ca`), with no faults and no recorded requests."""
    requests.post(tls_simulator_server.url + "/_sim/reset", timeout=5, verify=tls_ca)
    yield tls_simulator_server
    requests.post(tls_simulator_server.url + "/_sim/reset", timeout=5, verify=tls_ca)


# --- Device resolution: one NXQL simulator per Engine -----------------------------------------


@pytest.fixture(scope="session")
def nxql_servers():
    """The NXQL APIs of two Engines, emea and amer: one simulator each, on loopback."""
    servers = {uid: sim.start_in_thread(config=sim.load_config() | {"nxql_engine": uid}) for uid in (EMEA, AMER)}
    yield servers
    for server in servers.values():
        server.shutdown()
        server.server_close()


class NxqlEngines:
    """The Engine rows of the NXQL simulators, and their controls (see simulators/act_api.py)."""

    def __init__(self, servers, engines):
        self.servers = servers
        self.emea, self.amer = engines

    def url(self, engine) -> str:
        return self.servers[engine.database_uid].url

    def queries(self, engine) -> list[dict]:
        return requests.get(self.url(engine) + "/_sim/nxql_requests", timeout=5).json()

    def query_count(self) -> int:
        return sum(len(self.queries(engine)) for engine in (self.emea, self.amer))

    def set_devices(self, engine, devices: list[dict]) -> None:
        requests.post(self.url(engine) + "/_sim/nxql", json={"devices": devices}, timeout=5).raise_for_status()

    def hang(self, engine, seconds: float) -> None:
        requests.post(self.url(engine) + "/_sim/nxql", json={"hang_seconds": seconds}, timeout=5).raise_for_status()

    def set_answer(self, engine, answer, status: int = 200) -> None:
        response = requests.post(self.url(engine) + "/_sim/nxql", json={"answer": answer, "status": status}, timeout=5)
        response.raise_for_status()


@pytest.fixture
def nxql_engines(db, settings, nxql_servers):
    """Engines emea and amer in the database, their NXQL simulators reset, the settings pointing at them."""
    from actions.models import Engine

    for server in nxql_servers.values():
        requests.post(server.url + "/_sim/reset", timeout=5).raise_for_status()
    engines = [
        Engine.objects.create(
            database_uid=uid,
            name=name,
            address="127.0.0.1",
            nxql_port=nxql_servers[uid].server_address[1],
            status="CONNECTED",
        )
        for uid, name in ((EMEA, "engine-emea"), (AMER, "engine-amer"))
    ]
    settings.DEVICE_RESOLVERS = ["directory", "nxql"]
    settings.NXQL_URL_TEMPLATE = "http://{address}:{nxql_port}"
    settings.NXQL_USERNAME = "portal"
    settings.NXQL_PASSWORD = "portal-demo"
    settings.NXQL_USER_NAME_TEMPLATE = "CORP\\{username}"
    settings.NXQL_PLATFORMS = ["windows"]
    settings.NXQL_TIMEOUT_SECONDS = 5
    settings.NXQL_CACHE_TTL_SECONDS = 900
    yield NxqlEngines(nxql_servers, engines)
    for server in nxql_servers.values():
        requests.post(server.url + "/_sim/reset", timeout=5)


@pytest.fixture
def use_broker(monkeypatch):
    """Call with a broker URL to make this process publish there for the rest of the test."""
    from portal.celery import app

    def point_at(url: str):
        monkeypatch.setattr(app.conf, "broker_url", url)
        monkeypatch.setattr(app, "_pool", None)
        monkeypatch.setattr(app.amqp, "_producer_pool", None)
        return app

    yield point_at
    app._pool = app.amqp._producer_pool = None  # connections made to that broker are not reused


BROKER_DOWN = "redis://127.0.0.1:9/0"  # nothing listens there: the connection is refused at once
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_or_skip() -> redis.Redis:
    """A client of the Redis at REDIS_URL; the test is skipped when it is unreachable (failed under CI=true)."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} is unreachable under CI: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {exc}")
    return client


@pytest.fixture
def redis_broker(use_broker):
    """This process publishes to Redis (REDIS_URL, flushed) for the test, as the portal does in production."""
    redis_or_skip().flushdb()
    return use_broker(REDIS_URL)


# --- Nexthink Infinity: the same simulator serves the token, Remote Actions and NQL APIs ----------
INFINITY_DEVICES_QUERY = "#portal_devices_of_user"
INFINITY_EXECUTIONS_QUERY = "#portal_remote_action_executions"
INFINITY_WORKFLOW_EXECUTIONS_QUERY = "#portal_workflow_executions"


class InfinitySim:
    """Controls of the simulator's Infinity part (see simulators/infinity.py)."""

    def __init__(self, server, verify: bool | str = True):
        self.server = server
        self.url = server.url
        self.token_url = server.url + "/oauth2/default/v1/token"
        self.verify = verify  # the CA bundle of the HTTPS simulator

    def requests(self, path: str | None = None) -> list[dict]:
        received = requests.get(self.url + "/_sim/infinity/requests", timeout=5, verify=self.verify).json()
        return [r for r in received if path is None or r["path"] == path]

    def token_requests(self) -> list[dict]:
        return self.requests("/oauth2/default/v1/token")

    def executions(self) -> list[dict]:
        return requests.get(self.url + "/_sim/infinity/executions", timeout=5, verify=self.verify).json()

    def fault(self, target: str, fault: str, **options) -> None:
        body = {"target": target, "fault": fault, **options}
        requests.post(self.url + "/_sim/faults", json=body, timeout=5, verify=self.verify).raise_for_status()

    def advance(self, seconds: float) -> None:
        requests.post(
            self.url + "/_sim/infinity", json={"advance_seconds": seconds}, timeout=5, verify=self.verify
        ).raise_for_status()

    def expire_tokens(self) -> None:
        requests.post(
            self.url + "/_sim/infinity", json={"expire_tokens": True}, timeout=5, verify=self.verify
        ).raise_for_status()

    def saved_queries(self) -> dict[str, dict]:
        return requests.get(self.url + "/_sim/infinity/saved-queries", timeout=5, verify=self.verify).json()

    def set_saved_query(self, name: str, nql: str | None = None, query_id: str | None = None):
        """Replace a saved query's text (or id): the simulator answers 200, or 400 naming what it refuses."""
        change = {"name": name} | ({"nql": nql} if nql is not None else {}) | ({"id": query_id} if query_id else {})
        return requests.post(self.url + "/_sim/infinity", json={"saved_query": change}, timeout=5, verify=self.verify)


@pytest.fixture
def infinity_sim(simulator):
    return InfinitySim(simulator)


@pytest.fixture
def tls_infinity_sim(tls_simulator, tls_ca):
    return InfinitySim(tls_simulator, verify=tls_ca)


@pytest.fixture
def use_infinity(settings, infinity_sim):
    """NEXTHINK_PLATFORM=infinity, pointed at the test simulator, with the process's token cache empty."""
    from actions.nexthink.infinity.client import TOKENS

    settings.NEXTHINK_PLATFORM = "infinity"
    settings.NEXTHINK_API_URL = infinity_sim.url
    settings.NEXTHINK_TOKEN_URL = infinity_sim.token_url
    settings.NEXTHINK_CLIENT_ID = "portal"
    settings.NEXTHINK_CLIENT_SECRET = "portal-demo"
    settings.NEXTHINK_NQL_DEVICES_QUERY = INFINITY_DEVICES_QUERY
    settings.NEXTHINK_NQL_EXECUTIONS_QUERY = INFINITY_EXECUTIONS_QUERY
    settings.NEXTHINK_NQL_WORKFLOW_EXECUTIONS_QUERY = INFINITY_WORKFLOW_EXECUTIONS_QUERY
    settings.NEXTHINK_API_TIMEOUT_SECONDS = 5
    settings.NEXTHINK_NQL_RETRY_WAIT_SECONDS = 0
    TOKENS.clear()
    yield infinity_sim
    TOKENS.clear()
