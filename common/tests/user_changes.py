"""For tests of common.infra.user_changes: whether its follower is listening yet."""

from django.db import connection

from common.infra.user_changes import CHANNEL


def listening() -> bool:
    """Whether another session of this database waits on `LISTEN` for the user changes."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND query = %s AND state = 'idle'",
            [f'LISTEN "{CHANNEL}"'],
        )
        return cursor.fetchone() is not None
