from django.apps import AppConfig


class ScanningConfig(AppConfig):
    name = "bastion.scanning"
    label = "scanning"

    def ready(self) -> None:
        from bastion.scanning import signals

        signals.connect()
