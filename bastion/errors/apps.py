from django.apps import AppConfig


class ErrorsConfig(AppConfig):
    name = "bastion.errors"
    label = "errors"

    def ready(self) -> None:
        from django.conf import settings

        from bastion.errors import digest, dogfood  # noqa: F401 - digest registers its schedule

        dogfood.setup(settings.CONFIG.dogfood_dsn)
