from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"
    label = "common"
    verbose_name = "Taskwire core"

    def ready(self) -> None:
        from common.cache import connect_invalidation

        connect_invalidation()
