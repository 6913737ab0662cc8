//! Roles and grants: built-in and custom roles, granting (never more than the grantor holds, in
//! every dimension), revoking.

use super::*;

/// The rank of a grant's cap label (`None`: uncapped). Labels are checked before this is
/// asked; an unknown one ranks lowest (fail closed).
pub(crate) fn cap_level(
    settings: &kura_domain::tenant::TenantSettings,
    max_label: Option<&str>,
) -> Option<u8> {
    max_label.map(|l| match settings.label_rank(l) {
        u8::MAX => 0,
        r => r,
    })
}

impl Services {
    pub(crate) async fn resolve_role(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        spec: &str,
    ) -> Result<(RoleRef, ActionSet)> {
        if let Some(role) = BuiltinRole::parse(spec) {
            return Ok((RoleRef::Builtin { role }, role.actions()));
        }
        match roles::get_role(tx, tenant, &RoleId::from_string(spec)).await {
            Ok(r) => Ok((
                RoleRef::Custom {
                    role_id: r.id.clone(),
                    name: r.name.clone(),
                },
                ActionSet::of(&r.actions),
            )),
            Err(StoreError::NotFound) => Err(ServiceError::invalid(
                "role",
                "is neither a built-in role (contract_admin, admin, member, guest) nor a custom role id of this tenant",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Lets the caller act on user `target` (freeze, delete, end sessions, manage a service
    /// account's tokens) only if the target holds no more than they do — in actions and in
    /// label reach; otherwise only someone with `TenantManage` may. The refusal is audited.
    pub(crate) async fn require_not_outranked(
        &self,
        auth: &AuthContext,
        target: &UserId,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let grants: Vec<kura_domain::authz::Grant> = roles::grants_of_user(&mut tx, t, target)
            .await?
            .iter()
            .map(|g| g.effective(&auth.tenant.settings))
            .collect();
        drop(tx);
        if kura_domain::authz::holds_at_least(&auth.principal, &grants) {
            return Ok(());
        }
        self.require(
            &auth.principal,
            Action::TenantManage,
            &Resource::Tenant(t.clone()),
            ctx,
        )
        .await
    }

    /// Validates a grant: contract admin only at tenant scope, and the scope must exist.
    /// Validates a grant: contract admin only at tenant scope, an existing scope, and a cap
    /// that is one of the tenant's labels.
    pub(crate) async fn check_grant_shape(
        &self,
        tx: &mut Tx,
        settings: &kura_domain::tenant::TenantSettings,
        tenant: &TenantId,
        role: &RoleRef,
        scope: &Scope,
        max_label: Option<&str>,
    ) -> Result<Resource> {
        if let Some(l) = max_label {
            settings.check_label(l).map_err(|_| {
                ServiceError::invalid(
                    "max_label",
                    format!("must be one of: {}", settings.labels.join(", ")),
                )
            })?;
        }
        if matches!(
            role,
            RoleRef::Builtin {
                role: BuiltinRole::ContractAdmin
            }
        ) && *scope != Scope::Tenant
        {
            return Err(ServiceError::invalid(
                "scope",
                "contract_admin can only be granted for the whole tenant",
            ));
        }
        match self.scope_resource(tx, settings, tenant, scope).await {
            Ok(r) => Ok(r),
            Err(ServiceError::NotFound) => {
                Err(ServiceError::invalid("scope", "no such folder or project"))
            }
            Err(e) => Err(e),
        }
    }

    /// Creates an invited user, their first grant, an invitation link and its mail, inside
    /// `tx`. Authorization is the caller's.
    /// Grants a new user's first role (if asked), within the actor's own powers. Returns
    /// the role's name for the audit entry and mail (`-` for none).
    pub(crate) async fn grant_first_role(
        &self,
        tx: &mut Tx,
        tenant: &Tenant,
        actor: &Actor<'_>,
        user: &User,
        input: &NewUser,
        now: kura_domain::Timestamp,
    ) -> Result<String> {
        let Some((spec, scope)) = &input.role else {
            return Ok("-".into());
        };
        let (role, actions) = self.resolve_role(tx, &tenant.id, spec).await?;
        let resource = self
            .check_grant_shape(
                tx,
                &tenant.settings,
                &tenant.id,
                &role,
                scope,
                input.max_label.as_deref(),
            )
            .await?;
        if let Actor::User(p) = actor {
            let cap = cap_level(&tenant.settings, input.max_label.as_deref());
            if authorize_grant(p, actions, &resource, cap) != Decision::Allow {
                return Err(ServiceError::Forbidden);
            }
        }
        roles::insert_grant(
            tx,
            &tenant.id,
            NewGrant {
                id: &GrantId::generate(),
                user_id: &user.id,
                role: &role,
                scope,
                max_label: input.max_label.as_deref(),
                now,
            },
        )
        .await?;
        Ok(match &role {
            RoleRef::Builtin { role } => role.as_str().to_string(),
            RoleRef::Custom { name, .. } => name.clone(),
        })
    }

    /// Grants a role to a user at a scope. The granter needs `grant_manage` there and must hold
    /// every action of the role (no escalation).
    pub async fn add_grant(
        &self,
        auth: &AuthContext,
        user_id: &UserId,
        role_spec: &str,
        scope: Scope,
        max_label: Option<&str>,
        ctx: &RequestCtx,
    ) -> Result<GrantRow> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let user = self.load_user(auth, &mut tx, user_id, ctx).await?;
        let (role, actions) = self.resolve_role(&mut tx, t, role_spec).await?;
        let resource = self
            .check_grant_shape(&mut tx, &auth.tenant.settings, t, &role, &scope, max_label)
            .await?;
        drop(tx);
        let cap = cap_level(&auth.tenant.settings, max_label);
        match authorize_grant(&auth.principal, actions, &resource, cap) {
            Decision::Allow => {}
            _ => {
                self.require(&auth.principal, Action::GrantManage, &resource, ctx)
                    .await?;
                // They may manage grants here but not hand out this much.
                self.audit_alone(
                    t,
                    &Actor::User(&auth.principal),
                    ctx,
                    Event::new("access.denied").target("user", &user.id).result("denied").details(
                        serde_json::json!({ "action": "grant.add", "reason": "escalation", "role": role_spec }),
                    ),
                )
                .await?;
                return Err(ServiceError::Forbidden);
            }
        }
        let id = GrantId::generate();
        let mut tx = self.store.tenant_tx(t).await?;
        roles::insert_grant(
            &mut tx,
            t,
            NewGrant {
                id: &id,
                user_id: &user.id,
                role: &role,
                scope: &scope,
                max_label,
                now: self.now(),
            },
        )
        .await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("grant.add")
                .target("user", &user.id)
                .details(serde_json::json!({
                    "grant_id": id, "role": role.to_json(), "scope": scope,
                })),
        )
        .await?;
        let row = roles::get_grant(&mut tx, t, &id).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn remove_grant(
        &self,
        auth: &AuthContext,
        user_id: &UserId,
        grant_id: &GrantId,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let grant = match roles::get_grant(&mut tx, t, grant_id).await {
            Ok(g) if &g.user_id == user_id => g,
            Ok(_) | Err(StoreError::NotFound) => {
                drop(tx);
                return Err(self
                    .not_found(&auth.principal, "grant", grant_id.as_str(), ctx)
                    .await);
            }
            Err(e) => return Err(e.into()),
        };
        let resource = self
            .scope_resource(&mut tx, &auth.tenant.settings, t, &grant.scope)
            .await?;
        drop(tx);
        let cap = cap_level(&auth.tenant.settings, grant.max_label.as_deref());
        if authorize_grant(&auth.principal, grant.actions, &resource, cap) != Decision::Allow {
            self.require(&auth.principal, Action::GrantManage, &resource, ctx)
                .await?;
            return Err(ServiceError::Forbidden);
        }
        let mut tx = self.store.tenant_tx(t).await?;
        if grant.role
            == (RoleRef::Builtin {
                role: BuiltinRole::ContractAdmin,
            })
            && roles::count_active_contract_admins(&mut tx, t).await? <= 1
        {
            return Err(ServiceError::Conflict(
                "this is the tenant's last active contract admin".into(),
            ));
        }
        roles::delete_grant(&mut tx, t, grant_id).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("grant.remove")
                .target("user", user_id)
                .details(serde_json::json!({
                    "grant_id": grant_id, "role": grant.role.to_json(), "scope": grant.scope,
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_roles(
        &self,
        auth: &AuthContext,
        ctx: &RequestCtx,
    ) -> Result<Vec<CustomRole>> {
        let t = &auth.tenant.id;
        self.require(
            &auth.principal,
            Action::UserRead,
            &Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        let mut tx = self.store.tenant_read(t).await?;
        Ok(roles::list_roles(&mut tx, t).await?)
    }

    /// Defines a custom role, e.g. "drone operator" = view + project_create.
    pub async fn create_role(
        &self,
        auth: &AuthContext,
        name: &str,
        actions: &[String],
        ctx: &RequestCtx,
    ) -> Result<CustomRole> {
        let t = &auth.tenant.id;
        let tenant_res = Resource::Tenant(t.clone());
        self.require(&auth.principal, Action::RoleManage, &tenant_res, ctx)
            .await?;
        let name = validate_name("name", name)?;
        if BuiltinRole::parse(&name).is_some() {
            return Err(ServiceError::invalid(
                "name",
                "is the name of a built-in role",
            ));
        }
        let mut parsed = Vec::new();
        for a in actions {
            let act = Action::parse(a.trim())
                .ok_or_else(|| ServiceError::invalid("actions", format!("unknown action '{a}'")))?;
            if act == Action::TenantManage {
                return Err(ServiceError::invalid(
                    "actions",
                    "tenant_manage belongs to the contract admin only",
                ));
            }
            if !parsed.contains(&act) {
                parsed.push(act);
            }
        }
        if parsed.is_empty() {
            return Err(ServiceError::invalid(
                "actions",
                "must name at least one action",
            ));
        }
        let role = CustomRole {
            id: RoleId::generate(),
            name,
            actions: parsed,
            created_at: self.now(),
        };
        let mut tx = self.store.tenant_tx(t).await?;
        roles::insert_role(&mut tx, t, &role).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("role.create")
                .target("role", &role.id)
                .details(serde_json::json!({
                    "name": role.name, "actions": role.actions,
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(role)
    }

    pub async fn get_role(
        &self,
        auth: &AuthContext,
        id: &RoleId,
        ctx: &RequestCtx,
    ) -> Result<CustomRole> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        match roles::get_role(&mut tx, t, id).await {
            Ok(r) => {
                drop(tx);
                self.require(
                    &auth.principal,
                    Action::UserRead,
                    &Resource::Tenant(t.clone()),
                    ctx,
                )
                .await?;
                Ok(r)
            }
            Err(StoreError::NotFound) => {
                drop(tx);
                Err(self
                    .not_found(&auth.principal, "role", id.as_str(), ctx)
                    .await)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete_role(
        &self,
        auth: &AuthContext,
        id: &RoleId,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        if let Err(StoreError::NotFound) = roles::get_role(&mut tx, t, id).await {
            drop(tx);
            return Err(self
                .not_found(&auth.principal, "role", id.as_str(), ctx)
                .await);
        }
        drop(tx);
        self.require(
            &auth.principal,
            Action::RoleManage,
            &Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        let mut tx = self.store.tenant_tx(t).await?;
        match roles::delete_role(&mut tx, t, id).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => {
                drop(tx);
                return Err(self
                    .not_found(&auth.principal, "role", id.as_str(), ctx)
                    .await);
            }
            Err(e) => return Err(e.into()),
        }
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("role.delete").target("role", id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
