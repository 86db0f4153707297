from django.apps import AppConfig


class ScanningConfig(AppConfig):
    name = "bastion.scanning"
    label = "scanning"
