"""The shared cache on Redis (portal/cache.py): Django's backend, one Redis client per pool."""

from concurrent.futures import ThreadPoolExecutor

from portal.cache import SharedClientRedisCache
from tests.conftest import REDIS_URL, redis_or_skip


def shared_cache() -> SharedClientRedisCache:
    return SharedClientRedisCache(REDIS_URL, {"KEY_PREFIX": "test-shared-cache", "OPTIONS": {"socket_timeout": 1}})


def test_it_makes_one_redis_client_per_pool_not_one_per_call():
    redis_or_skip()
    cache = shared_cache()
    cache.set("a", "1", 30)
    first = cache._cache.get_client("a", write=True)
    assert cache._cache.get_client("b", write=True) is first
    assert cache._cache.get_client("a") is first  # one server: reads and writes share its pool


def test_it_reads_and_writes_as_django_s_backend_from_many_threads():
    redis_or_skip()
    cache = shared_cache()

    def round_trip(n: int) -> str | None:
        cache.set(f"key-{n}", f"value-{n}", 30)
        return cache.get(f"key-{n}")

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(round_trip, range(64))) == [f"value-{n}" for n in range(64)]
    assert cache.add("key-0", "other", 30) is False
    cache.delete_many([f"key-{n}" for n in range(64)])
    assert cache.get("key-0") is None
