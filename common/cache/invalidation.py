"""Invalidation: every committed write of a listed model bumps the versions of its lists.

Versions: `projects` (project lists), `tasks` (every task list), `tasks:project:ID` (task lists
filtered by that project) and `users` (every list: they show usernames). A membership change
bumps what the project's lists depend on (who may see them changed). The bumps run after
commit, from model signals, so the admin and the shell invalidate too.
"""

import logging

from django.db import transaction

from common.cache.keys import active_user_name
from common.cache.pages import ACTIVE_USER_SECONDS
from common.cache.store import CacheDown, store
from common.cache.versions import bump

logger = logging.getLogger("common.cache")


def cache_version_bump(*names: str) -> None:
    """Invalidate every page that depends on `names`, once the current transaction commits."""
    transaction.on_commit(lambda: bump(names), robust=True)


def _project_saved(sender, instance, **kwargs) -> None:
    cache_version_bump("projects")


def _project_deleted(sender, instance, **kwargs) -> None:
    cache_version_bump("projects", "tasks", f"tasks:project:{instance.pk}")


def _task_saved(sender, instance, **kwargs) -> None:
    projects = {instance.project_id, getattr(instance, "loaded_project_id", instance.project_id)}
    cache_version_bump("tasks", *(f"tasks:project:{pk}" for pk in projects))


def _task_deleted(sender, instance, origin=None, **kwargs) -> None:
    from common.models import Project

    if isinstance(origin, Project):
        return  # a project's cascade: the project's own bump covers its tasks
    cache_version_bump("tasks", f"tasks:project:{instance.project_id}")


def _comment_saved(sender, instance, **kwargs) -> None:
    cache_version_bump("tasks", f"tasks:project:{instance.task.project_id}")  # comment_count


def _membership_changed(sender, instance, **kwargs) -> None:
    # Who sees the project and its tasks changed: every list that may show them.
    cache_version_bump("projects", "tasks", f"tasks:project:{instance.project_id}")


def _user_changed(sender, instance, **kwargs) -> None:
    # A rename shows in every list; a deactivated or deleted user loses the hit path at once.
    cache_version_bump("users")
    transaction.on_commit(lambda: _forget_active(instance.pk), robust=True)


def _forget_active(user_id) -> None:
    try:
        store().delete(active_user_name(user_id))
    except CacheDown:
        logger.error(
            "cache: could not forget user %s (lapses in %ss)", user_id, ACTIVE_USER_SECONDS
        )


def connect_invalidation() -> None:
    from django.contrib.auth import get_user_model
    from django.db.models.signals import post_delete, post_save

    from common.models import Comment, Membership, Project, Task

    user = get_user_model()
    post_save.connect(_user_changed, sender=user, dispatch_uid="cache.user_saved")
    post_delete.connect(_user_changed, sender=user, dispatch_uid="cache.user_deleted")
    post_save.connect(_project_saved, sender=Project, dispatch_uid="cache.project_saved")
    post_delete.connect(_project_deleted, sender=Project, dispatch_uid="cache.project_deleted")
    post_save.connect(_task_saved, sender=Task, dispatch_uid="cache.task_saved")
    post_delete.connect(_task_deleted, sender=Task, dispatch_uid="cache.task_deleted")
    post_save.connect(_comment_saved, sender=Comment, dispatch_uid="cache.comment_saved")
    post_save.connect(_membership_changed, sender=Membership, dispatch_uid="cache.member_saved")
    post_delete.connect(_membership_changed, sender=Membership, dispatch_uid="cache.member_deleted")
