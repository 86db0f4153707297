from django.apps import AppConfig


class ScanningConfig(AppConfig):
    name = "bastion.scanning"
    label = "scanning"

    def ready(self) -> None:
        from bastion.scanning import scheduling, signals
        from bastion.scanning.reports import tally

        signals.connect()
        scheduling.connect()  # also registers the 'scan' schedule handler
        tally.connect()
