from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "bastion.pipelines"
    label = "pipelines"
