//! User accounts: invitations, service accounts, listing, changes of status or role (never by
//! someone outranked), the user's own locale.

use super::*;

/// A user to invite.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    pub locale: Option<String>,
    /// A first role to grant: a built-in role name (`member`) or a custom role id, at a scope.
    pub role: Option<(String, Scope)>,
    /// A classification cap on that first grant (DATA-3), e.g. `internal` for guests.
    pub max_label: Option<String>,
}

/// Freeze, unfreeze or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    Freeze,
    Unfreeze,
    Delete,
}

impl UserChange {
    fn action(self) -> &'static str {
        match self {
            UserChange::Freeze => "user.freeze",
            UserChange::Unfreeze => "user.unfreeze",
            UserChange::Delete => "user.delete",
        }
    }
}

impl Services {
    /// Admin: creates a service account — a user that cannot log in (no password, no
    /// mail) and acts only through API tokens an admin issues for it, with the roles
    /// granted to it. Its e-mail is a generated, undeliverable `…@service.invalid`.
    pub async fn create_service_account(
        &self,
        auth: &AuthContext,
        name: &str,
        role: Option<(String, Scope)>,
        max_label: Option<String>,
        ctx: &RequestCtx,
    ) -> Result<User> {
        let t = &auth.tenant.id;
        self.require(
            &auth.principal,
            Action::UserManage,
            &Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        let display_name = validate_name("name", name)?;
        let now = self.now();
        let id = UserId::generate();
        let tail: String = id.as_str().chars().rev().take(12).collect();
        let user = User {
            email: format!("svc-{tail}@service.invalid"),
            id,
            tenant_id: t.clone(),
            display_name,
            locale: None,
            status: UserStatus::Active,
            kind: UserKind::Service,
            password_hash: None,
            created_at: now,
        };
        let input = NewUser {
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            locale: None,
            role,
            max_label,
        };
        let actor = Actor::User(&auth.principal);
        let mut tx = self.store.tenant_tx(t).await?;
        users::insert(&mut tx, &user).await?;
        let role_label = self
            .grant_first_role(&mut tx, &auth.tenant, &actor, &user, &input, now)
            .await?;
        self.audit(
            &mut tx,
            t,
            &actor,
            ctx,
            Event::new("user.service_account.create")
                .target("user", &user.id)
                .details(serde_json::json!({
                    "name": user.display_name,
                    "role": role_label,
                    "scope": input.role.as_ref().map(|(_, s)| s),
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    pub(crate) async fn invite_in_tx(
        &self,
        tx: &mut Tx,
        tenant: &Tenant,
        actor: &Actor<'_>,
        ctx: &RequestCtx,
        input: NewUser,
        send_mail: bool,
    ) -> Result<(User, String)> {
        let email = validate_email(&input.email)?;
        let display_name = if input.display_name.trim().is_empty() {
            email.split('@').next().unwrap_or_default().to_string()
        } else {
            validate_name("display_name", &input.display_name)?
        };
        let locale = match input.locale.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(l) => {
                kura_domain::tenant::validate_locale(l)?;
                Some(l.to_string())
            }
        };
        let now = self.now();
        let user = User {
            id: UserId::generate(),
            tenant_id: tenant.id.clone(),
            email,
            display_name,
            locale,
            status: UserStatus::Invited,
            kind: UserKind::Person,
            password_hash: None,
            created_at: now,
        };
        users::insert(tx, &user).await?;
        let role_label = self
            .grant_first_role(tx, tenant, actor, &user, &input, now)
            .await?;
        let crate::auth::IssuedLink {
            url: link,
            expires_at,
        } = self
            .issue_link(tx, tenant, &user, crate::auth::LinkPurpose::Invite)
            .await?;
        let locale = user
            .locale
            .clone()
            .unwrap_or_else(|| tenant.settings.default_locale.clone());
        let (subject, body) = mail::invitation(&mail::Invitation {
            locale: &locale,
            tenant_name: &tenant.name,
            link: &link,
            expires: &expires_at.format_in_zone(&tenant.settings.time_zone),
            role: &role_label,
        });
        if send_mail {
            self.enqueue_mail(
                tx,
                Some(&tenant.id),
                &user.email,
                subject,
                body,
                now,
                expires_at,
            )
            .await?;
        }
        self.audit(
            tx,
            &tenant.id,
            actor,
            ctx,
            Event::new("user.invite")
                .target("user", &user.id)
                .details(serde_json::json!({
                    "email": user.email,
                    "role": role_label,
                    "scope": input.role.as_ref().map(|(_, s)| s),
                })),
        )
        .await?;
        Ok((user, link))
    }

    /// Admin: invites a user (the link goes to their mailbox).
    pub async fn invite_user(
        &self,
        auth: &AuthContext,
        input: NewUser,
        ctx: &RequestCtx,
    ) -> Result<User> {
        let t = &auth.tenant.id;
        self.require(
            &auth.principal,
            Action::UserManage,
            &Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        let mut tx = self.store.tenant_tx(t).await?;
        let (user, _link) = self
            .invite_in_tx(
                &mut tx,
                &auth.tenant,
                &Actor::User(&auth.principal),
                ctx,
                input,
                true,
            )
            .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Operator: creates a user in a tenant by invitation; returns the link.
    pub async fn operator_create_user(
        &self,
        slug: &str,
        input: NewUser,
        ctx: &RequestCtx,
    ) -> Result<(User, String)> {
        let tenant = self.operator_find_tenant(slug).await?;
        let mut tx = self.store.tenant_tx(&tenant.id).await?;
        let out = self
            .invite_in_tx(&mut tx, &tenant, &Actor::Operator, ctx, input, true)
            .await?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn list_users(&self, auth: &AuthContext, ctx: &RequestCtx) -> Result<Vec<User>> {
        let t = &auth.tenant.id;
        self.require(
            &auth.principal,
            Action::UserRead,
            &Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        let mut tx = self.store.tenant_read(t).await?;
        Ok(users::list(&mut tx, t).await?)
    }

    /// Looks a user up for a request; an unknown id is audited as a denial. Only call it with
    /// a read transaction (the audit needs the writer).
    pub(crate) async fn load_user(
        &self,
        auth: &AuthContext,
        tx: &mut Tx,
        id: &UserId,
        ctx: &RequestCtx,
    ) -> Result<User> {
        match users::get(tx, &auth.tenant.id, id).await {
            Ok(u) => Ok(u),
            Err(StoreError::NotFound) => Err(self
                .not_found(&auth.principal, "user", id.as_str(), ctx)
                .await),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_user(
        &self,
        auth: &AuthContext,
        id: &UserId,
        ctx: &RequestCtx,
    ) -> Result<(User, Vec<GrantRow>)> {
        let t = &auth.tenant.id;
        // Look the id up first: an id from another tenant is "not found" for everyone.
        let mut tx = self.store.tenant_read(t).await?;
        let user = self.load_user(auth, &mut tx, id, ctx).await?;
        let grants = roles::grants_of_user(&mut tx, t, id).await?;
        drop(tx);
        if id != &auth.user.id {
            self.require(
                &auth.principal,
                Action::UserRead,
                &Resource::Tenant(t.clone()),
                ctx,
            )
            .await?;
        }
        Ok((user, grants))
    }

    /// Freezes, unfreezes or deletes a user. Freezing and deleting end their sessions in the
    /// same transaction (IAM-1, IAM-8). Nobody can do this to themselves, and the last
    /// active contract admin stays.
    pub async fn change_user(
        &self,
        auth: &AuthContext,
        id: &UserId,
        change: UserChange,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        self.load_user(auth, &mut tx, id, ctx).await?;
        drop(tx);
        self.require(
            &auth.principal,
            Action::UserManage,
            &Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        if id == &auth.user.id && change != UserChange::Unfreeze {
            return Err(ServiceError::Conflict(
                "you cannot freeze or delete your own account".into(),
            ));
        }
        let mut tx = self.store.tenant_tx(t).await?;
        // (A write transaction: a missing user is not audited here, which would need a second
        // writer; the lookup above already audited unknown ids.)
        let user = users::get(&mut tx, t, id).await?;
        // An admin may not act on a user who holds more than they do (e.g. a contract admin,
        // or anyone reaching higher labels than the admin's cap).
        drop(tx);
        self.require_not_outranked(auth, id, ctx).await?;
        let mut tx = self.store.tenant_tx(t).await?;
        self.apply_user_change(
            &mut tx,
            &auth.tenant.id,
            &user,
            change,
            &Actor::User(&auth.principal),
            ctx,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn apply_user_change(
        &self,
        tx: &mut Tx,
        t: &TenantId,
        user: &User,
        change: UserChange,
        actor: &Actor<'_>,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let now = self.now();
        if change != UserChange::Unfreeze && user.status == UserStatus::Active {
            let grants = roles::grants_of_user(tx, t, &user.id).await?;
            let is_ca = grants.iter().any(|g| {
                g.scope == Scope::Tenant
                    && g.role
                        == (RoleRef::Builtin {
                            role: BuiltinRole::ContractAdmin,
                        })
            });
            if is_ca && roles::count_active_contract_admins(tx, t).await? <= 1 {
                return Err(ServiceError::Conflict(
                    "this is the tenant's last active contract admin".into(),
                ));
            }
        }
        let ended = match change {
            UserChange::Freeze => {
                if user.status == UserStatus::Frozen {
                    return Err(ServiceError::Conflict("the user is already frozen".into()));
                }
                users::set_status(tx, t, &user.id, UserStatus::Frozen, now).await?;
                sessions::delete_for_user(tx, t, &user.id).await?
            }
            UserChange::Unfreeze => {
                if user.status != UserStatus::Frozen {
                    return Err(ServiceError::Conflict("the user is not frozen".into()));
                }
                // A service account never has a password; it was active before.
                let status = if user.password_hash.is_some() || user.kind == UserKind::Service {
                    UserStatus::Active
                } else {
                    UserStatus::Invited
                };
                users::set_status(tx, t, &user.id, status, now).await?;
                0
            }
            UserChange::Delete => {
                let n = sessions::delete_for_user(tx, t, &user.id).await?;
                users::delete(tx, t, &user.id).await?;
                n
            }
        };
        self.audit(
            tx,
            t,
            actor,
            ctx,
            Event::new(change.action())
                .target("user", &user.id)
                .details(serde_json::json!({ "email": user.email, "sessions_ended": ended })),
        )
        .await
    }

    /// Operator: freezes, unfreezes or deletes a user by e-mail.
    pub async fn operator_change_user(
        &self,
        slug: &str,
        email: &str,
        change: UserChange,
        ctx: &RequestCtx,
    ) -> Result<User> {
        let tenant = self.operator_find_tenant(slug).await?;
        let mut tx = self.store.tenant_tx(&tenant.id).await?;
        let user = users::find_by_email(&mut tx, &tenant.id, &validate_email(email)?)
            .await?
            .ok_or(ServiceError::NotFound)?;
        self.apply_user_change(&mut tx, &tenant.id, &user, change, &Actor::Operator, ctx)
            .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// The user sets their own console language (`ja`, `en`, or none to follow the browser).
    pub async fn set_my_locale(
        &self,
        auth: &AuthContext,
        locale: Option<&str>,
        ctx: &RequestCtx,
    ) -> Result<()> {
        if let Some(l) = locale {
            kura_domain::tenant::validate_locale(l)?;
        }
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_tx(t).await?;
        users::set_locale(&mut tx, t, &auth.user.id, locale, self.now()).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("user.locale")
                .target("user", &auth.user.id)
                .details(serde_json::json!({ "locale": locale })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Users with their grants (one query for all grants), for the console's user page.
    pub async fn list_users_with_grants(
        &self,
        auth: &AuthContext,
        ctx: &RequestCtx,
    ) -> Result<Vec<(User, Vec<GrantRow>)>> {
        let list = self.list_users(auth, ctx).await?;
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let grants = roles::grants_of_tenant(&mut tx, t).await?;
        Ok(list
            .into_iter()
            .map(|u| {
                let g = grants
                    .iter()
                    .filter(|g| g.user_id == u.id)
                    .cloned()
                    .collect();
                (u, g)
            })
            .collect())
    }
}
