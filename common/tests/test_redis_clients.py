"""One Redis client (one connection pool) per Redis per process: the cache, the push, the limits."""

import asyncio
from unittest import mock

from django.conf import settings
from django.test import SimpleTestCase

from common.infra import event_push
from common.infra.cache.store import store
from common.infra.limits import limits
from common.infra.redis_clients import shared_redis


class SharedRedisTests(SimpleTestCase):
    def test_the_cache_the_push_and_the_limits_share_one_client_of_one_redis(self):
        self.assertEqual(settings.CACHE_REDIS_URL, settings.CHANNEL_REDIS_URL)
        shared = shared_redis(settings.CACHE_REDIS_URL)

        self.assertIs(store().client, shared.client)
        self.assertIs(limits().client, shared.client)
        with mock.patch.object(event_push, "_publish", wraps=event_push._publish) as publish:
            event_push.push_messages([(1, "{}")])
        self.assertIs(publish.call_args.args[0], shared.client)

    def test_a_new_connection_reads_the_servers_run_id(self):
        shared = shared_redis(settings.CACHE_REDIS_URL)
        shared.client.connection_pool.disconnect()
        shared.run_id = None

        shared.client.ping()

        self.assertEqual(shared.run_id, shared.client.info("server")["run_id"])

    def test_each_event_loop_has_one_async_client_on_the_same_redis(self):
        shared = shared_redis(settings.CACHE_REDIS_URL)

        async def twice():
            first, second = shared.async_client(), shared.async_client()
            answered = await first.ping()
            await first.aclose()
            return first, second, answered

        first, second, answered = asyncio.run(twice())
        self.assertIs(first, second)
        self.assertTrue(answered)
        self.assertIsNot(asyncio.run(twice())[0], first)  # another loop, another client


class PushMessagesTests(SimpleTestCase):
    def test_one_event_goes_on_its_projects_channel_and_many_on_the_batch_channel_in_order(self):
        self.assertEqual(
            event_push.redis_messages([(7, '{"a":1}')]), [(event_push.event_channel(7), '{"a":1}')]
        )
        texts = [f'{{"n":{n},"text":"a\\nb"}}' for n in range(5)]  # JSON's escaped line breaks
        with mock.patch.object(event_push, "PUBLISH_BATCH", 2):
            published = event_push.redis_messages([(n % 2, text) for n, text in enumerate(texts)])

        self.assertEqual({channel for channel, _ in published}, {event_push.event_batch_channel()})
        self.assertEqual([len(text.split("\n")) for _, text in published], [2, 2, 1])
        self.assertEqual([line for _, text in published for line in text.split("\n")], texts)
