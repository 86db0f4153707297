from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "bastion.pipelines"
    label = "pipelines"

    def ready(self) -> None:
        from bastion.pipelines import scheduling, signals

        signals.connect()
        scheduling.connect()  # also registers the pipelines.build schedule handler
