"""The bench database of bench.jobs: created, migrated and seeded by PostgreSQL itself.

Seeding is a handful of INSERT ... SELECT generate_series statements (seconds for a million
tasks), deterministic (arithmetic on the row number, no random()), kept when the counts already
match. The layout, for N tasks of which D are due (stride = N // D):
  due      every stride-th task, up to D of them: open (pending or in progress), due within
           (NOW, NOW + 24 h], reminder_sent_at NULL, assigned to a user with an email;
  the rest 45 % due in the past (some already reminded, some completed), 40 % open and due more
           than 24 h ahead (in the reminders' partial index, outside the window), 15 % completed
           with due dates anywhere from 30 days back to 60 days ahead (the window included).
"""

import json
import sys
from datetime import UTC, datetime, timedelta

import psycopg

from bench import _procs as procs

HOST = procs.HOST
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)  # the jobs' fixed "now"
WINDOW = timedelta(hours=24)  # scheduled.reminders.WINDOW
USER_PREFIX = "jobs-user-"
STATEMENT_TIMEOUT_MS = 600_000

# The tasks one reminders run touches, back to their state before it: no reminder rows, and
# reminder_sent_at NULL again on exactly the tasks that were reminded (each has a reminder row);
# and the task.updated events each sent reminder logged, with the projects' seqs.
RESET_SQL = (
    "UPDATE common_task SET reminder_sent_at = NULL WHERE reminder_sent_at IS NOT NULL "
    "AND id IN (SELECT task_id FROM common_reminder)",
    "DELETE FROM common_reminder",
    "DELETE FROM common_event",
    "UPDATE common_project SET event_seq = 0 WHERE event_seq <> 0",
)
VACUUM_SQL = "VACUUM common_task, common_reminder, common_event, common_project"
# The tasks send_due_reminders should remind at NOW (its own filter), with an assignee email.
DUE_COUNT_SQL = (
    "SELECT count(*) FROM common_task t JOIN auth_user u ON u.id = t.assignee_id "
    "WHERE t.due_date > %(now)s AND t.due_date <= %(end)s AND t.reminder_sent_at IS NULL "
    "AND t.status <> 'completed' AND u.email <> ''"
)


def database_url(database: str) -> str:
    return procs.database_url(database)


def child_json(module: str, options: list[str], env: dict[str, str]) -> dict:
    """Run `python -m module options` in `env`; its last stdout line, as JSON."""
    out = procs.run([sys.executable, "-m", module, *options], env)
    return json.loads(out.strip().splitlines()[-1])


def connect(database: str) -> psycopg.Connection:
    return psycopg.connect(
        database_url(database),
        autocommit=True,
        connect_timeout=5,
        options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
    )


def reset(connection: psycopg.Connection) -> None:
    """Undo what a reminders run wrote (see RESET_SQL), then vacuum what it left dead."""
    with connection.transaction():
        for statement in RESET_SQL:
            connection.execute(statement)
    connection.execute(VACUUM_SQL)


def due_count(connection: psycopg.Connection) -> int:
    return connection.execute(DUE_COUNT_SQL, {"now": NOW, "end": NOW + WINDOW}).fetchone()[0]


def counts(connection: psycopg.Connection) -> dict[str, int]:
    one = connection.execute
    return {
        "tasks": one("SELECT count(*) FROM common_task").fetchone()[0],
        "projects": one("SELECT count(*) FROM common_project").fetchone()[0],
        "users": one(
            "SELECT count(*) FROM auth_user WHERE username LIKE %s", [f"{USER_PREFIX}%"]
        ).fetchone()[0],
        "due": due_count(connection),
    }


def seed(connection: psycopg.Connection, tasks: int, projects: int, users: int, due: int) -> None:
    """Empty the tables and fill them (see the module's docstring), then ANALYZE."""
    stride = tasks // due
    params = {
        "now": NOW,
        "tasks": tasks,
        "projects": projects,
        "users": users,
        "due": due,
        "stride": stride,
        "prefix": USER_PREFIX,
    }
    with connection.transaction():
        connection.execute(
            "TRUNCATE common_reminder, common_comment, common_event, common_summaryreport, "
            "common_task, common_project, auth_user RESTART IDENTITY CASCADE"
        )
        connection.execute(
            "INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name,"
            " email, is_staff, is_active, date_joined) "
            "SELECT n, '!', false, %(prefix)s || lpad(n::text, 5, '0'), '', '', "
            "%(prefix)s || n || '@example.com', false, true, %(now)s - interval '400 days' "
            "FROM generate_series(1, %(users)s) AS n",
            params,
        )
        connection.execute(
            "INSERT INTO common_project (id, name, description, created_at, updated_at, owner_id,"
            " event_seq) "
            "SELECT n, 'Project ' || n, 'Jobs bench project ' || n, "
            "%(now)s - interval '365 days', %(now)s - interval '1 day', 1 + n %% %(users)s, 0 "
            "FROM generate_series(1, %(projects)s) AS n",
            params,
        )
        connection.execute(TASKS_SQL, params)
        for table in ("auth_user", "common_project", "common_task"):
            connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
    connection.execute("VACUUM ANALYZE")


# Per task n: is it one of the due (d), else its kind k (0-8 past, 9-16 ahead, 17-19 completed).
TASKS_SQL = """
INSERT INTO common_task (id, title, description, status, due_date, comment_count,
                         reminder_sent_at, completed_at, created_at, updated_at, assignee_id,
                         project_id)
SELECT n,
       'Task ' || n || ' of project ' || (1 + n %% %(projects)s),
       'Jobs bench task ' || n || ': what to do, who asked, and by when.',
       CASE WHEN d THEN (ARRAY['pending', 'in_progress'])[1 + n %% 2]
            WHEN k < 9 THEN (ARRAY['pending', 'in_progress', 'completed'])[1 + n %% 3]
            WHEN k < 17 THEN (ARRAY['pending', 'in_progress'])[1 + n %% 2]
            ELSE 'completed' END,
       due,
       n %% 7,
       CASE WHEN NOT d AND k < 9 AND n %% 2 = 0 THEN due - interval '24 hours' END,
       CASE WHEN (NOT d AND k < 9 AND n %% 3 = 2) OR (NOT d AND k >= 17)
            THEN %(now)s - make_interval(secs => 1 + n %% 86400) END,
       %(now)s - interval '90 days',
       %(now)s - interval '1 day',
       CASE WHEN d THEN 1 + n %% %(users)s
            WHEN n %% 5 = 0 THEN NULL
            ELSE 1 + n %% %(users)s END,
       1 + n %% %(projects)s
FROM (
    SELECT n, d, k,
           CASE WHEN d THEN %(now)s + make_interval(secs => 1 + (n / %(stride)s * 7919) %% 86400)
                WHEN k < 9 THEN %(now)s - make_interval(secs => 1 + (n * 7919) %% (60 * 86400))
                WHEN k < 17
                THEN %(now)s + interval '24 hours'
                     + make_interval(secs => 1 + (n * 7919) %% (90 * 86400))
                ELSE %(now)s - interval '30 days'
                     + make_interval(secs => (n * 7919) %% (90 * 86400)) END AS due
    FROM (
        SELECT n,
               n %% %(stride)s = 0 AND n / %(stride)s <= %(due)s AS d,
               (n * 31) %% 20 AS k
        FROM generate_series(1::bigint, %(tasks)s::bigint) AS n
    ) AS numbered
) AS dated
"""


def prepare(database: str, tasks: int, projects: int, users: int, due: int) -> dict:
    """Create and migrate the database, reset it, and reseed it unless the counts already match.

    Returns {"reseeded": bool, "seconds": float spent seeding}."""
    wanted = {"tasks": tasks, "projects": projects, "users": users, "due": due}
    with connect(database) as connection:
        reset(connection)
        if counts(connection) == wanted:
            return {"reseeded": False, "seconds": 0.0}
        started = datetime.now(UTC)
        seed(connection, tasks, projects, users, due)
        seconds = (datetime.now(UTC) - started).total_seconds()
        found = counts(connection)
    if found != wanted:
        raise RuntimeError(f"seeding produced {found}, not {wanted}")
    return {"reseeded": True, "seconds": seconds}
