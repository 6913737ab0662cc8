//! The permission model and the one function that decides access: [`authorize`].
//!
//! A user holds *grants*: a role (a set of [`Action`]s) at a [`Scope`] — the whole tenant, a
//! folder (and everything below it), or one project. A grant covers a [`Resource`] when its
//! scope contains the resource. Every API route and console page reaches the data through
//! `authorize`; handlers never decide permissions themselves.
//!
//! Decisions are shaped so that nothing leaks: a resource in another tenant, or one the
//! principal cannot even view, is [`Decision::NotFound`] — the same answer as an id that does
//! not exist. [`Decision::Forbidden`] is only given where the principal can already see the
//! resource.

use crate::ids::{FolderId, ProjectId, TenantId, UserId};
use serde::{Deserialize, Serialize};

/// Everything a user can be allowed to do. Custom roles are built from these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// See folders, projects and (later) files in scope.
    View,
    /// Create folders (at tenant scope: top-level; at folder scope: sub-folders).
    FolderCreate,
    /// Rename, move and delete folders in scope.
    FolderManage,
    /// Create projects in folders in scope.
    ProjectCreate,
    /// Rename, move and delete projects in scope.
    ProjectManage,
    /// Upload and change files in scope.
    ContentWrite,
    /// Approve work in scope (the "approver" custom role).
    Approve,
    /// Grant and revoke roles within scope (never beyond the granter's own rights).
    GrantManage,
    /// List the tenant's users.
    UserRead,
    /// Invite, freeze, unfreeze and delete users.
    UserManage,
    /// Define custom roles.
    RoleManage,
    /// Read the tenant's audit and access logs.
    AuditRead,
    /// Tenant settings, contacts and contract matters (contract admin only).
    TenantManage,
}

impl Action {
    pub const ALL: [Action; 13] = [
        Action::View,
        Action::FolderCreate,
        Action::FolderManage,
        Action::ProjectCreate,
        Action::ProjectManage,
        Action::ContentWrite,
        Action::Approve,
        Action::GrantManage,
        Action::UserRead,
        Action::UserManage,
        Action::RoleManage,
        Action::AuditRead,
        Action::TenantManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::FolderCreate => "folder_create",
            Action::FolderManage => "folder_manage",
            Action::ProjectCreate => "project_create",
            Action::ProjectManage => "project_manage",
            Action::ContentWrite => "content_write",
            Action::Approve => "approve",
            Action::GrantManage => "grant_manage",
            Action::UserRead => "user_read",
            Action::UserManage => "user_manage",
            Action::RoleManage => "role_manage",
            Action::AuditRead => "audit_read",
            Action::TenantManage => "tenant_manage",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Actions that only make sense for the whole tenant; a grant at a folder or project
    /// scope never confers them.
    pub fn is_tenant_only(self) -> bool {
        TENANT_ONLY.contains(self)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// The actions only a tenant-scope grant confers (see [`Action::is_tenant_only`]).
const TENANT_ONLY: ActionSet = ActionSet(
    (1 << Action::UserRead as u32)
        | (1 << Action::UserManage as u32)
        | (1 << Action::RoleManage as u32)
        | (1 << Action::AuditRead as u32)
        | (1 << Action::TenantManage as u32),
);

/// A set of actions (a role's permissions), as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ActionSet(u32);

impl ActionSet {
    pub fn of(actions: &[Action]) -> Self {
        Self(actions.iter().fold(0, |acc, a| acc | a.bit()))
    }
    pub fn all() -> Self {
        Self::of(&Action::ALL)
    }
    pub fn contains(self, a: Action) -> bool {
        self.0 & a.bit() != 0
    }
    pub fn is_subset_of(self, other: ActionSet) -> bool {
        self.0 & !other.0 == 0
    }
    pub fn union(self, other: ActionSet) -> Self {
        Self(self.0 | other.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn actions(self) -> Vec<Action> {
        Action::ALL
            .into_iter()
            .filter(|a| self.contains(*a))
            .collect()
    }
}

/// The roles every tenant has (IAM-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinRole {
    /// Everything, including contract matters. Granted at tenant scope only.
    ContractAdmin,
    /// Everything inside the scope it is granted at (at tenant scope: users and roles too).
    Admin,
    /// "General user": view, create projects, change content.
    Member,
    /// View only.
    Guest,
}

impl BuiltinRole {
    pub const ALL: [BuiltinRole; 4] = [
        BuiltinRole::ContractAdmin,
        BuiltinRole::Admin,
        BuiltinRole::Member,
        BuiltinRole::Guest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BuiltinRole::ContractAdmin => "contract_admin",
            BuiltinRole::Admin => "admin",
            BuiltinRole::Member => "member",
            BuiltinRole::Guest => "guest",
        }
    }

    pub fn parse(s: &str) -> Option<BuiltinRole> {
        BuiltinRole::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn actions(self) -> ActionSet {
        use Action::*;
        match self {
            BuiltinRole::ContractAdmin => ActionSet::all(),
            BuiltinRole::Admin => ActionSet::of(&[
                View,
                FolderCreate,
                FolderManage,
                ProjectCreate,
                ProjectManage,
                ContentWrite,
                Approve,
                GrantManage,
                UserRead,
                UserManage,
                RoleManage,
                AuditRead,
            ]),
            BuiltinRole::Member => ActionSet::of(&[View, ProjectCreate, ContentWrite]),
            BuiltinRole::Guest => ActionSet::of(&[View]),
        }
    }
}

/// Where a grant applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Scope {
    Tenant,
    Folder(FolderId),
    Project(ProjectId),
}

impl Scope {
    /// The one parser of a scope, for the API and the console alike: `tenant` (no id),
    /// `folder` or `project` (with an id). Anything else is refused, never read as
    /// tenant-wide.
    pub fn parse(kind: &str, id: Option<&str>) -> Result<Scope, crate::DomainError> {
        match (kind, id) {
            ("tenant", None) => Ok(Scope::Tenant),
            ("folder", Some(id)) => Ok(Scope::Folder(FolderId::from_string(id))),
            ("project", Some(id)) => Ok(Scope::Project(ProjectId::from_string(id))),
            _ => Err(crate::DomainError::invalid(
                "scope",
                "type must be tenant (no id), folder or project (with id)",
            )),
        }
    }

    /// A scope written as one value, as the console's forms send it: `tenant`,
    /// `folder:<id>` or `project:<id>`; see [`Scope::parse`].
    pub fn parse_field(value: &str) -> Result<Scope, crate::DomainError> {
        match value.split_once(':') {
            Some((kind, id)) => Scope::parse(kind, Some(id)),
            None => Scope::parse(value, None),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Tenant => "tenant",
            Scope::Folder(_) => "folder",
            Scope::Project(_) => "project",
        }
    }
    pub fn id(&self) -> Option<&str> {
        match self {
            Scope::Tenant => None,
            Scope::Folder(f) => Some(f.as_str()),
            Scope::Project(p) => Some(p.as_str()),
        }
    }
}

/// One effective grant of a principal: the actions of its role at its scope, optionally
/// capped at a classification level (DATA-3): items labelled above the cap are outside the
/// grant altogether.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub actions: ActionSet,
    pub scope: Scope,
    /// Highest label rank this grant reaches (`None`: no cap).
    pub max_level: Option<u8>,
}

/// An authenticated, active user of one tenant, with their grants resolved.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub grants: Vec<Grant>,
}

/// What an action is done to. Folder and project resources carry their ancestor folders
/// (outermost first, the folder itself last for a folder) so that a grant on any ancestor
/// covers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Tenant(TenantId),
    Folder {
        tenant_id: TenantId,
        /// Ancestors then the folder itself; never empty.
        path: Vec<FolderId>,
        /// Effective classification rank (own label or inherited).
        level: u8,
    },
    Project {
        tenant_id: TenantId,
        /// The folder the project is in, and that folder's ancestors, outermost first.
        folders: Vec<FolderId>,
        project_id: ProjectId,
        /// Effective classification rank of the project (or of the file being reached).
        level: u8,
    },
}

impl Resource {
    pub fn tenant_id(&self) -> &TenantId {
        match self {
            Resource::Tenant(t) => t,
            Resource::Folder { tenant_id, .. } | Resource::Project { tenant_id, .. } => tenant_id,
        }
    }

    /// The effective classification rank (0 for the tenant itself).
    pub fn level(&self) -> u8 {
        match self {
            Resource::Tenant(_) => 0,
            Resource::Folder { level, .. } | Resource::Project { level, .. } => *level,
        }
    }

    fn is_covered_by(&self, scope: &Scope) -> bool {
        match (scope, self) {
            (Scope::Tenant, _) => true,
            (Scope::Folder(f), Resource::Folder { path, .. }) => path.contains(f),
            (Scope::Folder(f), Resource::Project { folders, .. }) => folders.contains(f),
            (Scope::Project(p), Resource::Project { project_id, .. }) => p == project_id,
            _ => false,
        }
    }
}

/// The answer of [`authorize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The principal may see the resource but not do this to it (HTTP 403).
    Forbidden,
    /// The resource does not exist for this principal (HTTP 404) — also for other tenants'
    /// resources, so that guessing ids reveals nothing.
    NotFound,
}

impl Principal {
    /// The actions this principal holds on a resource (union of every covering grant).
    pub fn actions_on(&self, resource: &Resource) -> ActionSet {
        self.actions_on_up_to(resource, Some(resource.level()))
    }

    /// The actions this principal holds on `resource` *and on everything in it up to
    /// `level`* (`None`: at every level — only uncapped grants reach that far). What a
    /// grant, an invitation or a service account capped at `level` may receive from them.
    pub fn actions_on_up_to(&self, resource: &Resource, level: Option<u8>) -> ActionSet {
        if resource.tenant_id() != &self.tenant_id {
            return ActionSet::default();
        }
        let needed = level.map(|l| l.max(resource.level()));
        self.grants
            .iter()
            .filter(|g| resource.is_covered_by(&g.scope))
            .filter(|g| match (g.max_level, needed) {
                (None, _) => true,
                (Some(cap), Some(n)) => n <= cap,
                (Some(_), None) => false,
            })
            .fold(ActionSet::default(), |acc, g| {
                if g.scope == Scope::Tenant {
                    acc.union(g.actions)
                } else {
                    // Tenant-wide powers never come from a narrower grant.
                    acc.union(ActionSet(g.actions.0 & !TENANT_ONLY.0))
                }
            })
    }
}

/// The one place where access is decided.
pub fn authorize(principal: &Principal, action: Action, resource: &Resource) -> Decision {
    if resource.tenant_id() != &principal.tenant_id {
        return Decision::NotFound;
    }
    let held = principal.actions_on(resource);
    if held.contains(action) {
        Decision::Allow
    } else if held.contains(Action::View) || matches!(resource, Resource::Tenant(_)) {
        // Members of a tenant know their tenant exists.
        Decision::Forbidden
    } else {
        Decision::NotFound
    }
}

/// May `principal` grant a role with `role_actions` at the scope whose resource is
/// `scope_resource`, capped at `max_level` (`None`: uncapped)? They need `GrantManage` there
/// and must already hold every action they hand out, up to that cap — no escalation in
/// actions, scope or label: someone capped at `internal` hands out nothing uncapped or
/// above `internal`. Contract admin can only be granted at tenant scope by someone who
/// holds `TenantManage`.
pub fn authorize_grant(
    principal: &Principal,
    role_actions: ActionSet,
    scope_resource: &Resource,
    max_level: Option<u8>,
) -> Decision {
    match authorize(principal, Action::GrantManage, scope_resource) {
        Decision::Allow => {}
        other => return other,
    }
    if role_actions.is_subset_of(principal.actions_on_up_to(scope_resource, max_level)) {
        Decision::Allow
    } else {
        Decision::Forbidden
    }
}

/// Does `principal` hold at least what every one of `target` (another user's grants) gives,
/// at tenant scope and up to each grant's cap? If not, the target "holds more" and only
/// someone with `TenantManage` may act on them (freeze, delete, end sessions, issue or
/// revoke a service account's tokens).
pub fn holds_at_least(principal: &Principal, target: &[Grant]) -> bool {
    let tenant = Resource::Tenant(principal.tenant_id.clone());
    target.iter().all(|g| {
        g.actions
            .is_subset_of(principal.actions_on_up_to(&tenant, g.max_level))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use Decision::*;

    fn t(s: &str) -> TenantId {
        TenantId::from_string(s)
    }
    fn f(s: &str) -> FolderId {
        FolderId::from_string(s)
    }
    fn p(s: &str) -> ProjectId {
        ProjectId::from_string(s)
    }

    fn principal(actions: ActionSet, scope: Scope) -> Principal {
        Principal {
            tenant_id: t("A"),
            user_id: UserId::from_string("u"),
            grants: vec![Grant {
                actions,
                scope,
                max_level: None,
            }],
        }
    }

    /// Folder tree of tenant A: F1 ⊃ F2 ⊃ project P2; F1 ⊃ project P1; F3 ⊃ P3.
    fn resources() -> Vec<(&'static str, Resource)> {
        vec![
            ("tenant", Resource::Tenant(t("A"))),
            (
                "F1",
                Resource::Folder {
                    tenant_id: t("A"),
                    path: vec![f("F1")],
                    level: 0,
                },
            ),
            (
                "F2",
                Resource::Folder {
                    tenant_id: t("A"),
                    path: vec![f("F1"), f("F2")],
                    level: 0,
                },
            ),
            (
                "P1",
                Resource::Project {
                    tenant_id: t("A"),
                    folders: vec![f("F1")],
                    project_id: p("P1"),
                    level: 0,
                },
            ),
            (
                "P2",
                Resource::Project {
                    tenant_id: t("A"),
                    folders: vec![f("F1"), f("F2")],
                    project_id: p("P2"),
                    level: 0,
                },
            ),
            (
                "F3",
                Resource::Folder {
                    tenant_id: t("A"),
                    path: vec![f("F3")],
                    level: 0,
                },
            ),
            (
                "P3",
                Resource::Project {
                    tenant_id: t("A"),
                    folders: vec![f("F3")],
                    project_id: p("P3"),
                    level: 0,
                },
            ),
            ("otherTenant", Resource::Tenant(t("B"))),
            (
                "otherF1",
                Resource::Folder {
                    tenant_id: t("B"),
                    path: vec![f("F1")],
                    level: 0,
                },
            ),
        ]
    }

    #[test]
    fn nobody_grants_above_their_label_cap() {
        let admin = BuiltinRole::Admin.actions();
        let capped = Principal {
            tenant_id: t("A"),
            user_id: UserId::from_string("u"),
            grants: vec![Grant {
                actions: admin,
                scope: Scope::Tenant,
                max_level: Some(1),
            }],
        };
        let tenant = Resource::Tenant(t("A"));
        // Within the cap: yes; at a higher cap or uncapped: no.
        assert_eq!(authorize_grant(&capped, admin, &tenant, Some(0)), Allow);
        assert_eq!(authorize_grant(&capped, admin, &tenant, Some(1)), Allow);
        assert_eq!(authorize_grant(&capped, admin, &tenant, Some(2)), Forbidden);
        assert_eq!(authorize_grant(&capped, admin, &tenant, None), Forbidden);
        // An uncapped admin may give any cap.
        let free = principal(admin, Scope::Tenant);
        assert_eq!(authorize_grant(&free, admin, &tenant, None), Allow);
        assert_eq!(authorize_grant(&free, admin, &tenant, Some(3)), Allow);
        // "Holds at least": the capped admin does not cover an uncapped member or an admin
        // capped higher, but does cover one capped lower.
        let member = BuiltinRole::Member.actions();
        let g = |actions, max_level| Grant {
            actions,
            scope: Scope::Tenant,
            max_level,
        };
        assert!(!holds_at_least(&capped, &[g(member, None)]));
        assert!(!holds_at_least(&capped, &[g(admin, Some(2))]));
        assert!(holds_at_least(&capped, &[g(member, Some(1))]));
        assert!(holds_at_least(&free, &[g(admin, None)]));
        assert!(!holds_at_least(
            &free,
            &[g(BuiltinRole::ContractAdmin.actions(), None)]
        ));
    }

    fn drone_operator() -> ActionSet {
        ActionSet::of(&[View, ProjectCreate])
    }
    fn approver() -> ActionSet {
        ActionSet::of(&[View, Approve])
    }

    /// Roles × scopes × actions × resources. Each row: role, grant scope, action, then the
    /// expected decision on each resource of `resources()` in order:
    /// tenant, F1, F2, P1, P2, F3, P3, otherTenant, otherF1.
    #[test]
    fn decision_table() {
        let a = Allow;
        let x = Forbidden;
        let n = NotFound;
        let ca = BuiltinRole::ContractAdmin.actions();
        let ad = BuiltinRole::Admin.actions();
        let me = BuiltinRole::Member.actions();
        let gu = BuiltinRole::Guest.actions();
        let ten = Scope::Tenant;
        let f1 = Scope::Folder(f("F1"));
        let f2 = Scope::Folder(f("F2"));
        let p1 = Scope::Project(p("P1"));
        #[rustfmt::skip]
        let table: Vec<(&str, ActionSet, Scope, Action, [Decision; 9])> = vec![
            // role        actions  scope        action          ten F1 F2 P1 P2 F3 P3 oT oF
            ("contract",   ca, ten.clone(), TenantManage,  [a, a, a, a, a, a, a, n, n]),
            ("contract",   ca, ten.clone(), UserManage,    [a, a, a, a, a, a, a, n, n]),
            ("contract",   ca, ten.clone(), FolderManage,  [a, a, a, a, a, a, a, n, n]),
            ("admin@T",    ad, ten.clone(), TenantManage,  [x, x, x, x, x, x, x, n, n]),
            ("admin@T",    ad, ten.clone(), UserManage,    [a, a, a, a, a, a, a, n, n]),
            ("admin@T",    ad, ten.clone(), ProjectManage, [a, a, a, a, a, a, a, n, n]),
            ("admin@F1",   ad, f1.clone(),  ProjectManage, [x, a, a, a, a, n, n, n, n]),
            ("admin@F1",   ad, f1.clone(),  UserManage,    [x, x, x, x, x, n, n, n, n]),
            ("admin@F1",   ad, f1.clone(),  AuditRead,     [x, x, x, x, x, n, n, n, n]),
            ("admin@F2",   ad, f2.clone(),  View,          [x, n, a, n, a, n, n, n, n]),
            ("member@T",   me, ten.clone(), View,          [a, a, a, a, a, a, a, n, n]),
            ("member@T",   me, ten.clone(), ContentWrite,  [a, a, a, a, a, a, a, n, n]),
            ("member@T",   me, ten.clone(), FolderManage,  [x, x, x, x, x, x, x, n, n]),
            ("member@T",   me, ten.clone(), UserRead,      [x, x, x, x, x, x, x, n, n]),
            ("member@F1",  me, f1.clone(),  ProjectCreate, [x, a, a, a, a, n, n, n, n]),
            ("member@P1",  me, p1.clone(),  View,          [x, n, n, a, n, n, n, n, n]),
            ("member@P1",  me, p1.clone(),  ContentWrite,  [x, n, n, a, n, n, n, n, n]),
            ("guest@T",    gu, ten.clone(), View,          [a, a, a, a, a, a, a, n, n]),
            ("guest@T",    gu, ten.clone(), ContentWrite,  [x, x, x, x, x, x, x, n, n]),
            ("guest@T",    gu, ten.clone(), ProjectCreate, [x, x, x, x, x, x, x, n, n]),
            ("guest@F1",   gu, f1.clone(),  View,          [x, a, a, a, a, n, n, n, n]),
            ("drone@F1",   drone_operator(), f1.clone(), ProjectCreate, [x, a, a, a, a, n, n, n, n]),
            ("drone@F1",   drone_operator(), f1.clone(), ProjectManage, [x, x, x, x, x, n, n, n, n]),
            ("drone@F1",   drone_operator(), f1.clone(), ContentWrite,  [x, x, x, x, x, n, n, n, n]),
            ("approver@T", approver(), ten.clone(), Approve,       [a, a, a, a, a, a, a, n, n]),
            ("approver@T", approver(), ten.clone(), ContentWrite,  [x, x, x, x, x, x, x, n, n]),
        ];
        let res = resources();
        for (name, actions, scope, action, expected) in table {
            let pr = principal(actions, scope);
            for ((rname, r), want) in res.iter().zip(expected) {
                assert_eq!(
                    authorize(&pr, action, r),
                    want,
                    "{name} {action:?} on {rname}"
                );
            }
        }
    }

    #[test]
    fn no_grants_sees_nothing() {
        let pr = Principal {
            tenant_id: t("A"),
            user_id: UserId::from_string("u"),
            grants: vec![],
        };
        for (name, r) in resources() {
            let want = if name == "tenant" {
                Forbidden
            } else {
                NotFound
            };
            assert_eq!(authorize(&pr, View, &r), want, "{name}");
        }
    }

    #[test]
    fn tenant_only_actions_never_come_from_narrow_grants() {
        let pr = principal(BuiltinRole::ContractAdmin.actions(), Scope::Folder(f("F1")));
        let r = resources()[1].1.clone();
        assert_eq!(authorize(&pr, TenantManage, &r), Forbidden);
        assert_eq!(authorize(&pr, FolderManage, &r), Allow);
    }

    #[test]
    fn grants_cannot_escalate() {
        let tenant = Resource::Tenant(t("A"));
        let folder = resources()[1].1.clone();
        let admin_t = principal(BuiltinRole::Admin.actions(), Scope::Tenant);
        assert_eq!(
            authorize_grant(&admin_t, BuiltinRole::Member.actions(), &folder, None),
            Allow
        );
        assert_eq!(
            authorize_grant(
                &admin_t,
                BuiltinRole::ContractAdmin.actions(),
                &tenant,
                None
            ),
            Forbidden
        );
        let admin_f1 = principal(BuiltinRole::Admin.actions(), Scope::Folder(f("F1")));
        assert_eq!(
            authorize_grant(&admin_f1, BuiltinRole::Guest.actions(), &folder, None),
            Allow
        );
        assert_eq!(
            authorize_grant(&admin_f1, BuiltinRole::Guest.actions(), &tenant, None),
            Forbidden
        );
        let member = principal(BuiltinRole::Member.actions(), Scope::Tenant);
        assert_eq!(
            authorize_grant(&member, BuiltinRole::Guest.actions(), &folder, None),
            Forbidden
        );
    }

    #[test]
    fn action_names_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        for r in BuiltinRole::ALL {
            assert_eq!(BuiltinRole::parse(r.as_str()), Some(r));
        }
        assert_eq!(Action::parse("root"), None);
    }
}

#[cfg(test)]
mod label_tests {
    use super::*;
    use Action::*;
    use Decision::*;

    /// Roles × label levels × operations (DATA-3). Levels: 0 public, 1 internal,
    /// 2 confidential, 3 secret.
    #[test]
    fn capped_grants_do_not_reach_higher_labels() {
        let t = TenantId::from_string("A");
        let folder = |level| Resource::Folder {
            tenant_id: t.clone(),
            path: vec![FolderId::from_string("F")],
            level,
        };
        let project = |level| Resource::Project {
            tenant_id: t.clone(),
            folders: vec![FolderId::from_string("F")],
            project_id: ProjectId::from_string("P"),
            level,
        };
        let who = |role: BuiltinRole, cap: Option<u8>| Principal {
            tenant_id: t.clone(),
            user_id: UserId::from_string("u"),
            grants: vec![Grant {
                actions: role.actions(),
                scope: Scope::Tenant,
                max_level: cap,
            }],
        };
        #[rustfmt::skip]
        let table: Vec<(BuiltinRole, Option<u8>, Action, [Decision; 4])> = vec![
            // role                   cap      action         public internal confid. secret
            (BuiltinRole::Guest,      Some(1), View,          [Allow, Allow, NotFound, NotFound]),
            (BuiltinRole::Guest,      None,    View,          [Allow, Allow, Allow, Allow]),
            (BuiltinRole::Member,     Some(2), ContentWrite,  [Allow, Allow, Allow, NotFound]),
            (BuiltinRole::Member,     Some(0), View,          [Allow, NotFound, NotFound, NotFound]),
            (BuiltinRole::Admin,      Some(2), ProjectManage, [Allow, Allow, Allow, NotFound]),
            (BuiltinRole::Member,     Some(3), FolderManage,  [Forbidden, Forbidden, Forbidden, Forbidden]),
        ];
        for (role, cap, action, want) in table {
            let p = who(role, cap);
            for (level, w) in want.iter().enumerate() {
                assert_eq!(
                    authorize(&p, action, &folder(level as u8)),
                    *w,
                    "{role:?} cap {cap:?} {action:?} folder level {level}"
                );
                assert_eq!(
                    authorize(&p, action, &project(level as u8)),
                    *w,
                    "{role:?} cap {cap:?} {action:?} project level {level}"
                );
            }
        }
        // A second, uncapped grant on the folder opens what the capped tenant grant does not.
        let mut p = who(BuiltinRole::Guest, Some(1));
        p.grants.push(Grant {
            actions: BuiltinRole::Guest.actions(),
            scope: Scope::Folder(FolderId::from_string("F")),
            max_level: None,
        });
        assert_eq!(authorize(&p, View, &project(3)), Allow);
        // The tenant itself is level 0: caps never hide the tenant.
        assert_eq!(
            authorize(
                &who(BuiltinRole::Admin, Some(0)),
                UserRead,
                &Resource::Tenant(t.clone())
            ),
            Allow
        );
    }
}

#[cfg(test)]
mod scope_parse_tests {
    use super::*;

    #[test]
    fn one_parser_for_api_and_console() {
        assert_eq!(Scope::parse("tenant", None).unwrap(), Scope::Tenant);
        assert_eq!(
            Scope::parse("folder", Some("f1")).unwrap(),
            Scope::Folder(FolderId::from_string("f1"))
        );
        assert_eq!(
            Scope::parse_field("project:p1").unwrap(),
            Scope::Project(ProjectId::from_string("p1"))
        );
        assert_eq!(Scope::parse_field("tenant").unwrap(), Scope::Tenant);
        for bad in ["", "tenant:x", "folder", "project", "team:1", "Folder:1"] {
            assert!(Scope::parse_field(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Scope::parse("tenant", Some("x")).is_err());
        assert!(Scope::parse("folder", None).is_err());
    }
}
