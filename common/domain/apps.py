from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common.domain"
    label = "common"
    verbose_name = "Taskwire core"

    def ready(self) -> None:
        from common.domain import revocation

        revocation.connect()
