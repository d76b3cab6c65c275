"""Every core table. Importing this package registers them on ``Base.metadata``."""

from gakwaya.db.models.audit import AuditHead, AuditRecord
from gakwaya.db.models.deploy import App, AppEnvVar, Deployment, Environment, Project, Release
from gakwaya.db.models.domains import Domain
from gakwaya.db.models.events import StoredEvent
from gakwaya.db.models.identity import (
    LoginThrottle,
    RecoveryCode,
    SetupToken,
    User,
    UserSession,
)
from gakwaya.db.models.jobs import Job, JobLog
from gakwaya.db.models.orgs import ApiKey, Invitation, Membership, Organization
from gakwaya.db.models.plugin_settings import PluginSetting
from gakwaya.db.models.plugins import PluginState

__all__ = [
    "ApiKey",
    "App",
    "AppEnvVar",
    "AuditHead",
    "AuditRecord",
    "Deployment",
    "Domain",
    "Environment",
    "Invitation",
    "Job",
    "JobLog",
    "LoginThrottle",
    "Membership",
    "Organization",
    "PluginSetting",
    "PluginState",
    "Project",
    "RecoveryCode",
    "Release",
    "SetupToken",
    "StoredEvent",
    "User",
    "UserSession",
]
