"""Where the list cache keeps its bytes: Redis (the process's shared client), or memory without it.

Values are raw bytes in, raw bytes out: nothing read back is ever unpickled or decoded as code.
Every key carries the store's generation, Redis's run_id, which is new on every start of the
server and is read on every new connection: a Redis restarted from an old snapshot brings its old
versions and pages back under the old generation's keys, which nobody reads any more. An
operation during which the generation changed is refused (CacheDown), because what it read or
wrote belongs to the instance before the restart.

A Redis error surfaces as CacheDown, and the cache is then skipped for a few seconds.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from django.conf import settings
from django.core.signals import setting_changed

from common.infra.redis_clients import shared_redis

logger = logging.getLogger("common.infra.cache")

SKIP_AFTER_ERROR_SECONDS = 5.0

Messages = Sequence[tuple[str, str]]  # (pub/sub channel, text)
# A command of a batch (RedisStore.batch): ("get", name), ("add", name, value, ttl) (set when
# absent; its result says whether it was), ("set", name, value, ttl) or ("delete", name).
Command = tuple[Any, ...]


class CacheDown(Exception):
    """The cache did not answer, or answered for an earlier generation; use the database."""


class Breaker:
    """After an error, a store is not asked for a few seconds: readers use the database."""

    skip_until = 0.0  # monotonic

    def skipped(self) -> bool:
        return time.monotonic() < self.skip_until

    def failed(self, exc: Exception) -> None:
        self.skip_until = time.monotonic() + SKIP_AFTER_ERROR_SECONDS
        logger.warning("cache unavailable, serving from the database: %s", exc)


def cache_skipped() -> bool:
    """True for a few seconds after the cache failed: readers go straight to the database."""
    return store().skipped()


def now_us() -> int:
    return time.time_ns() // 1000


class RedisStore(Breaker):
    """One Redis, one prefix, through the process's shared clients of that Redis
    (common.infra.redis_clients): the sync one for Django's side, the asyncio one of the event
    loop for the hit path. The generation is the run_id the latest connection read."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.prefix = url, prefix
        self.redis = shared_redis(url)
        self.errors = self.redis.errors  # what any command may raise: CacheDown
        self.client = self.redis.client

    @property
    def generation(self) -> str | None:
        return self.redis.run_id

    def _run(self, work: Callable[[Callable[[str], str]], object]):
        try:
            if self.generation is None:
                self.client.ping()  # connects: the callback reads the generation
            generation = self.generation
            result = work(lambda name: f"{self.prefix}:{generation}:{name}")
        except self.errors as exc:
            self.failed(exc)
            raise CacheDown from exc
        self._same_generation(generation)
        return result

    def _same_generation(self, before: str | None) -> None:
        if before != self.generation:
            self.failed(ConnectionError(f"Redis restarted ({before} -> {self.generation})"))
            raise CacheDown

    def get_many(self, names: list[str]) -> list[bytes | None]:
        return self._run(lambda key: self.client.mget([key(name) for name in names]))

    def set(self, name: str, value: bytes, ttl: int) -> None:
        self._run(lambda key: self.client.set(key(name), value, ex=ttl))

    def add(self, name: str, value: bytes, ttl: int | None = None) -> bool:
        return bool(self._run(lambda key: self.client.set(key(name), value, ex=ttl, nx=True)))

    def add_all(self, values: dict[str, bytes]) -> bool:
        """Set each name that is absent, without expiry; True when every one was absent."""

        def work(key):
            with self.client.pipeline(transaction=True) as pipeline:
                for name, value in values.items():
                    pipeline.set(key(name), value, nx=True)
                return all(pipeline.execute())

        return self._run(work)

    def delete(self, name: str) -> None:
        self._run(lambda key: self.client.delete(key(name)))

    def batch(self, commands: Sequence[Command]) -> list[Any]:
        """Several commands in one round trip (a pipeline, not a transaction); their results."""

        def work(key):
            with self.client.pipeline(transaction=False) as pipeline:
                for operation, name, *rest in commands:
                    _queue(pipeline, operation, key(name), *rest)
                return pipeline.execute()

        return self._run(work)

    def bump(self, names: Iterable[str], start: int, publish: Messages = ()) -> None:
        """Each name up by one, atomically; one never set (or evicted) first starts at `start`.
        Then each (channel, text) of `publish` is PUBLISHed, in the same round trip."""

        def work(key):
            with self.client.pipeline(transaction=True) as pipeline:
                for name in names:
                    pipeline.set(key(name), start, nx=True)
                    pipeline.incr(key(name))
                for channel, text in publish:
                    pipeline.publish(channel, text)
                pipeline.execute()

        self._run(work)

    def ping(self) -> None:
        self._run(lambda key: self.client.ping())

    async def get_many_async(self, names: list[str]) -> list[bytes | None]:
        """MGET from the event loop (the hit path); raises CacheDown as the sync calls do."""
        client = self.redis.async_client()
        try:
            if self.generation is None:
                await client.ping()
            generation = self.generation
            found = await client.mget([f"{self.prefix}:{generation}:{name}" for name in names])
        except self.errors as exc:
            self.failed(exc)
            raise CacheDown from exc
        self._same_generation(generation)
        return cast(list[bytes | None], found)  # a client without decode_responses: bytes


class MemoryStore(Breaker):
    """The local mode's store, inside the one process: the same operations, bounded in size."""

    MAX_ENTRIES = 1000

    def __init__(self) -> None:
        self.generation = uuid.uuid4().hex  # a process's memory starts empty: one generation
        self._values: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def _get(self, name: str) -> bytes | None:
        expires, value = self._values.get(name, (0.0, None))
        if expires and expires < time.monotonic():
            del self._values[name]
            return None
        return value

    def _put(self, name: str, value: bytes, ttl: int | None) -> None:
        if len(self._values) >= self.MAX_ENTRIES:
            del self._values[next(iter(self._values))]  # the oldest
        self._values[name] = (time.monotonic() + ttl if ttl else 0.0, value)

    def get_many(self, names: list[str]) -> list[bytes | None]:
        with self._lock:
            return [self._get(name) for name in names]

    def set(self, name: str, value: bytes, ttl: int) -> None:
        with self._lock:
            self._put(name, value, ttl)

    def add(self, name: str, value: bytes, ttl: int | None = None) -> bool:
        with self._lock:
            if self._get(name) is not None:
                return False
            self._put(name, value, ttl)
            return True

    def add_all(self, values: dict[str, bytes]) -> bool:
        with self._lock:
            absent = [self._get(name) is None for name in values]
            for name, value in values.items():
                if self._get(name) is None:
                    self._put(name, value, None)
            return all(absent)

    def delete(self, name: str) -> None:
        with self._lock:
            self._values.pop(name, None)

    def batch(self, commands: Sequence[Command]) -> list[Any]:
        operations: dict[str, Callable[..., Any]] = {"get": lambda name: self.get_many([name])[0]}
        operations |= {"add": self.add, "set": self.set, "delete": self.delete}
        return [operations[operation](*rest) for operation, *rest in commands]

    def bump(self, names: Iterable[str], start: int, publish: Messages = ()) -> None:
        if publish:
            raise ValueError("the memory store has no channels to publish on")
        with self._lock:
            for name in names:
                self._put(name, str(int(self._get(name) or start) + 1).encode(), None)

    def ping(self) -> None:
        return None


_memory = MemoryStore()
_stores: dict[tuple, RedisStore] = {}


_current: list[RedisStore | MemoryStore] = []  # the store of the current settings, once known


def store() -> RedisStore | MemoryStore:
    """The store that settings.CACHES["default"] names (Redis, or memory for any other backend).

    Looked up once (every hit asks several times), again when CACHES changes (tests)."""
    if _current:
        return _current[0]
    config: dict[str, Any] = settings.CACHES["default"]
    if not config["BACKEND"].endswith("RedisCache"):
        return _memory
    identity = (config["LOCATION"], config.get("KEY_PREFIX", ""))
    if identity not in _stores:
        _stores[identity] = RedisStore(*identity)
    _current[:] = [_stores[identity]]
    return _current[0]


def _settings_changed(setting: str, **kwargs) -> None:
    if setting == "CACHES":
        _current.clear()


setting_changed.connect(_settings_changed, dispatch_uid="common.infra.cache.store")


def _queue(pipeline, operation: str, key: str, *rest) -> None:
    if operation == "get":
        pipeline.get(key)
    elif operation == "delete":
        pipeline.delete(key)
    else:
        value, ttl = rest
        pipeline.set(key, value, ex=ttl, nx=operation == "add")
