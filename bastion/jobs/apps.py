from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "bastion.jobs"
    label = "jobs"
    verbose_name = "Jobs and agents"

    def ready(self) -> None:
        from bastion.core.blobs import delete_files_with
        from bastion.core.middleware import BodySizeLimitMiddleware
        from bastion.jobs.artifacts import UPLOAD_PATH_PREFIX, artifact_max_bytes
        from bastion.jobs.models import Artifact

        delete_files_with(Artifact, "file")

        # Room for the multipart envelope around the largest artifact we accept.
        BodySizeLimitMiddleware.LARGE_BODY_PREFIXES[UPLOAD_PATH_PREFIX] = (
            artifact_max_bytes() + 64 * 1024
        )
