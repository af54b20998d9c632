import pytest
import requests
from django.contrib.auth.models import Group, User

from actions.nexthink import simulator as sim
from actions.nexthink.client import ActClient


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


@pytest.fixture
def sim_requests(simulator):
    """Call to read the Act API requests the simulator received."""
    return lambda: requests.get(simulator.url + "/_sim/requests", timeout=5).json()


@pytest.fixture
def inject_fault(simulator):
    def inject(fault: str, **options):
        response = requests.post(simulator.url + "/_sim/faults", json={"fault": fault, **options}, timeout=5)
        response.raise_for_status()

    return inject


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
def staff_group(db):
    return Group.objects.create(name="Field staff")
