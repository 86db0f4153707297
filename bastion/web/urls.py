"""URLs of the web UI. Everything about one organization lives under ``/o/<org>/``."""

from django.urls import include, path

from bastion.browser import urls as browser_urls
from bastion.jobs import queue_views
from bastion.pipelines import urls as pipeline_urls
from bastion.web.views import (
    account,
    agents,
    audit,
    auth,
    browser_results,
    browser_schedules,
    errors,
    healthz,
    home,
    inbox,
    invitations,
    notifications,
    scanning,
    scanning_findings,
    settings,
)

app_name = "web"

org_patterns = [
    path("", home.dashboard, name="dashboard"),
    *scanning.patterns,
    *scanning_findings.patterns,
    *browser_urls.patterns,
    *inbox.patterns,
    *browser_schedules.patterns,
    *browser_results.patterns,
    *pipeline_urls.patterns,
    path("errors/", errors.landing, name="errors"),
    path("agents/", agents.agents, name="agents"),
    path("agents/live/", agents.agents_live, name="agents-live"),
    path("queues/", queue_views.queues, name="queues"),
    path("jobs/<int:job_id>/", agents.job_detail, name="job"),
    path("jobs/<int:job_id>/log/", agents.job_log, name="job-log"),
    path("jobs/<int:job_id>/cancel/", agents.job_cancel, name="job-cancel"),
    path("audit/", audit.audit_log, name="audit"),
    path("audit/export.csv", audit.audit_export_csv, name="audit-csv"),
    path("audit/export.json", audit.audit_export_json, name="audit-json"),
    path("settings/", settings.general, name="settings"),
    path("settings/organization/", settings.organization_rename, name="org-rename"),
    path("settings/projects/", settings.project_create, name="project-create"),
    path("settings/members/", settings.members, name="members"),
    path("settings/members/invite/", settings.invite, name="invite"),
    path("settings/members/<int:membership_id>/role/", settings.member_role, name="member-role"),
    path(
        "settings/members/<int:membership_id>/remove/",
        settings.member_remove,
        name="member-remove",
    ),
    path(
        "settings/invitations/<int:invitation_id>/revoke/",
        settings.invitation_revoke,
        name="invitation-revoke",
    ),
    path("settings/tokens/", settings.tokens, name="tokens"),
    path("settings/tokens/new/", settings.token_create, name="token-create"),
    path("settings/tokens/<int:token_id>/revoke/", settings.token_revoke, name="token-revoke"),
    path("settings/notifications/", notifications.channels, name="notifications"),
    path("settings/notifications/new/", notifications.channel_create, name="notification-create"),
    path(
        "settings/notifications/<int:channel_id>/test/",
        notifications.channel_test,
        name="notification-test",
    ),
    path(
        "settings/notifications/<int:channel_id>/toggle/",
        notifications.channel_toggle,
        name="notification-toggle",
    ),
    path(
        "settings/notifications/<int:channel_id>/delete/",
        notifications.channel_delete,
        name="notification-delete",
    ),
    path("settings/clusters/", settings.clusters, name="clusters"),
    path("settings/clusters/new/", settings.cluster_create, name="cluster-create"),
    path("settings/clusters/<slug:cluster>/", settings.cluster_detail, name="cluster"),
    path("settings/clusters/<slug:cluster>/queues/", settings.queue_create, name="queue-create"),
    path(
        "settings/clusters/<slug:cluster>/tokens/",
        settings.agent_token_create,
        name="agent-token-create",
    ),
    path(
        "settings/clusters/<slug:cluster>/tokens/<int:token_id>/revoke/",
        settings.agent_token_revoke,
        name="agent-token-revoke",
    ),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("", home.root, name="root"),
    path("login/", auth.login_view, name="login"),
    path("login/verify/", auth.login_2fa_view, name="login-2fa"),
    path("logout/", auth.logout_view, name="logout"),
    path("account/", account.account, name="account"),
    path("account/password/", account.password_change, name="password-change"),
    path("account/2fa/enable/", account.totp_enable, name="totp-enable"),
    path("account/2fa/disable/", account.totp_disable, name="totp-disable"),
    path("orgs/new/", home.org_create, name="org-create"),
    path("invitations/<str:token>/", invitations.invitation, name="invitation"),
    path("o/<slug:org>/", include(org_patterns)),
]
