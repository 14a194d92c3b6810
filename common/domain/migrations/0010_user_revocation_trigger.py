"""A trigger on the user table that tells listeners when a user's tokens end.

It fires however the row changes: the ORM's save() (which also sends signals), a bulk
QuerySet.update() or raw SQL (which send none), and deletion. A deactivation or a new password
notifies `taskwire_user_revoked` with the user's id, delivered to listeners at commit
(common.infra.user_changes), and a deactivation also blacklists the user's outstanding refresh
tokens in the same transaction, so that they stay dead if the user is activated again.
PostgreSQL only: elsewhere (the local SQLite file) common.domain.revocation's receiver blacklists
them on save() and nothing listens.
"""

from django.conf import settings
from django.db import migrations

CHANNEL = "taskwire_user_revoked"
FUNCTION = "taskwire_user_revoked"


def _table(apps, schema_editor, model: str = settings.AUTH_USER_MODEL) -> str:
    return schema_editor.quote_name(apps.get_model(model)._meta.db_table)


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    table = _table(apps, schema_editor)
    outstanding = _table(apps, schema_editor, "token_blacklist.OutstandingToken")
    blacklisted = _table(apps, schema_editor, "token_blacklist.BlacklistedToken")
    schema_editor.execute(f"""
        CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND OLD.is_active AND NOT NEW.is_active THEN
                INSERT INTO {blacklisted} (token_id, blacklisted_at)
                SELECT id, now() FROM {outstanding} WHERE user_id = NEW.id
                ON CONFLICT (token_id) DO NOTHING;
            END IF;
            PERFORM pg_notify('{CHANNEL}', (CASE WHEN TG_OP = 'DELETE' THEN OLD.id
                                                 ELSE NEW.id END)::text);
            RETURN NULL;
        END $$
    """)
    schema_editor.execute(f"""
        CREATE TRIGGER {FUNCTION}_update AFTER UPDATE OF is_active, password ON {table}
        FOR EACH ROW
        WHEN ((OLD.is_active AND NOT NEW.is_active) OR OLD.password IS DISTINCT FROM NEW.password)
        EXECUTE FUNCTION {FUNCTION}()
    """)
    schema_editor.execute(f"""
        CREATE TRIGGER {FUNCTION}_delete AFTER DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()
    """)


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    table = _table(apps, schema_editor)
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {FUNCTION}_update ON {table}")
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {FUNCTION}_delete ON {table}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")


class Migration(migrations.Migration):
    dependencies = [
        ("common", "0009_webhooks"),
        ("token_blacklist", "__latest__"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(create, drop)]
