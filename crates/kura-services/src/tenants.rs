//! Tenants: operator provisioning (TEN-1), settings and contacts (TEN-5).

use crate::auth::AuthContext;
use crate::users::NewUser;
use crate::{Actor, Event, RequestCtx, Result, ServiceError, Services};
use kura_domain::authz::{BuiltinRole, Scope};
use kura_domain::tenant::{TenantSettings, TenantStatus};
use kura_domain::{
    validate_email, validate_name, validate_slug, Action, ContactId, Resource, TenantId,
};
use kura_store::tenants::{self, Contact, Tenant};
use kura_store::users::User;
use kura_store::SYSTEM_TENANT;

/// What `kura tenant create` needs.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: String,
    pub name: String,
    pub admin_email: String,
    pub admin_name: String,
    /// `ja` (default) or `en`: the tenant's default console language and the invitation's.
    pub locale: String,
    pub time_zone: Option<String>,
}

/// A created tenant with its contract admin's invitation link (shown to the operator once,
/// and mailed).
pub struct CreatedTenant {
    pub tenant: Tenant,
    pub admin: User,
    pub invitation_link: String,
}

impl Services {
    /// Operator: creates a tenant and invites its contract admin (TEN-1).
    pub async fn create_tenant(&self, input: NewTenant, ctx: &RequestCtx) -> Result<CreatedTenant> {
        self.create_tenant_as(input, &Actor::Operator, true, ctx)
            .await
    }

    /// Creates a tenant for `actor` (the operator, or a self-service sign-up); the contract
    /// admin's invitation is mailed when `mail_invitation` (a sign-up sets the password at
    /// once and gets a welcome mail instead).
    pub(crate) async fn create_tenant_as(
        &self,
        input: NewTenant,
        actor: &Actor<'_>,
        mail_invitation: bool,
        ctx: &RequestCtx,
    ) -> Result<CreatedTenant> {
        let slug = validate_slug(&input.slug)?;
        let name = validate_name("name", &input.name)?;
        let email = validate_email(&input.admin_email)?;
        kura_domain::tenant::validate_locale(&input.locale)?;
        let mut settings = TenantSettings {
            default_locale: input.locale.clone(),
            ..TenantSettings::default()
        };
        if let Some(tz) = input.time_zone {
            settings.time_zone = tz;
        }
        settings.validate()?;
        let tenant = Tenant {
            id: TenantId::generate(),
            slug,
            name,
            status: TenantStatus::Active,
            settings,
            created_at: self.now(),
        };
        let mut tx = self.store.tenant_tx(&tenant.id).await?;
        tenants::insert(&mut tx, &tenant).await?;
        self.audit(
            &mut tx,
            &tenant.id,
            actor,
            ctx,
            Event::new("tenant.create")
                .target("tenant", &tenant.id)
                .details(serde_json::json!({ "slug": tenant.slug, "name": tenant.name })),
        )
        .await?;
        let (admin, link) = self
            .invite_in_tx(
                &mut tx,
                &tenant,
                actor,
                ctx,
                NewUser {
                    email,
                    display_name: input.admin_name,
                    // The admin's console follows their browser until they choose; the
                    // invitation is written in the tenant's language.
                    locale: None,
                    role: Some((
                        BuiltinRole::ContractAdmin.as_str().to_string(),
                        Scope::Tenant,
                    )),
                    max_label: None,
                },
                mail_invitation,
            )
            .await?;
        tx.commit().await?;
        Ok(CreatedTenant {
            tenant,
            admin,
            invitation_link: link,
        })
    }

    /// Operator: every tenant. The listing itself is an audited operator action.
    pub async fn operator_list_tenants(&self, ctx: &RequestCtx) -> Result<Vec<Tenant>> {
        let mut tx = self.store.system_tx().await?;
        let list = tenants::list_all(&mut tx).await?;
        self.audit(
            &mut tx,
            &TenantId::from_string(SYSTEM_TENANT),
            &Actor::Operator,
            ctx,
            Event::new("operator.tenant.list"),
        )
        .await?;
        tx.commit().await?;
        Ok(list)
    }

    /// Operator: one tenant by slug, with its user count (never its data).
    pub async fn operator_show_tenant(
        &self,
        slug: &str,
        ctx: &RequestCtx,
    ) -> Result<(Tenant, i64)> {
        let tenant = self.operator_find_tenant(slug).await?;
        let mut tx = self.store.tenant_tx(&tenant.id).await?;
        let users = kura_store::users::count(&mut tx, &tenant.id).await?;
        self.audit(
            &mut tx,
            &tenant.id,
            &Actor::Operator,
            ctx,
            Event::new("operator.tenant.show").target("tenant", &tenant.id),
        )
        .await?;
        tx.commit().await?;
        Ok((tenant, users))
    }

    pub async fn operator_find_tenant(&self, slug: &str) -> Result<Tenant> {
        let mut tx = self.store.system_read().await?;
        tenants::find_by_slug(&mut tx, &slug.trim().to_lowercase())
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// The caller's tenant (any member may read its name and settings).
    pub async fn tenant_of(&self, auth: &AuthContext) -> Result<Tenant> {
        let mut tx = self.store.tenant_read(&auth.tenant.id).await?;
        Ok(tenants::get(&mut tx, &auth.tenant.id).await?)
    }

    /// Contract admin: changes the tenant's settings (time zone, language, password and
    /// session policies).
    /// Contract admin: the tenant's settings, to edit them (the console's security page).
    /// Asks `require` like every other use case, so a denial is audited.
    pub async fn settings_for_edit(
        &self,
        auth: &AuthContext,
        ctx: &RequestCtx,
    ) -> Result<kura_domain::tenant::TenantSettings> {
        let t = &auth.tenant.id;
        self.require(
            &auth.principal,
            Action::TenantManage,
            &Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        let mut tx = self.store.tenant_read(t).await?;
        Ok(tenants::get(&mut tx, t).await?.settings)
    }

    pub async fn update_settings(
        &self,
        auth: &AuthContext,
        settings: TenantSettings,
        confirm_lockout: bool,
        ctx: &RequestCtx,
    ) -> Result<Tenant> {
        let t = &auth.tenant.id;
        self.require(
            &auth.principal,
            Action::TenantManage,
            &Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        settings.validate()?;
        let here = ctx.ip.as_deref().and_then(|i| i.parse().ok());
        if !confirm_lockout && !settings.ip_allowed(here, &auth.builtin_roles()) {
            return Err(ServiceError::Conflict(format!(
                "this IP allowlist would lock out your current address ({}); send it again with confirm_lockout=true to save it anyway",
                ctx.ip.as_deref().unwrap_or("unknown")
            )));
        }
        let mut tx = self.store.tenant_tx(t).await?;
        let before = tenants::get(&mut tx, t).await?;
        tenants::update_settings(&mut tx, t, &settings, self.now()).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("tenant.settings.update")
                .target("tenant", t)
                .details(serde_json::json!({ "before": before.settings, "after": settings })),
        )
        .await?;
        let updated = tenants::get(&mut tx, t).await?;
        tx.commit().await?;
        Ok(updated)
    }

    pub async fn list_contacts(
        &self,
        auth: &AuthContext,
        ctx: &RequestCtx,
    ) -> Result<Vec<Contact>> {
        let t = &auth.tenant.id;
        self.require(
            &auth.principal,
            Action::TenantManage,
            &Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        let mut tx = self.store.tenant_read(t).await?;
        Ok(tenants::list_contacts(&mut tx, t).await?)
    }

    /// Contract admin: adds a contact who receives notices (TEN-5).
    pub async fn add_contact(
        &self,
        auth: &AuthContext,
        name: &str,
        email: &str,
        purpose: &str,
        ctx: &RequestCtx,
    ) -> Result<Contact> {
        let t = &auth.tenant.id;
        self.require(
            &auth.principal,
            Action::TenantManage,
            &Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        let purpose = purpose.trim();
        if !["notices", "security", "billing", "technical"].contains(&purpose) {
            return Err(ServiceError::invalid(
                "purpose",
                "must be one of notices, security, billing, technical",
            ));
        }
        let contact = Contact {
            id: ContactId::generate(),
            name: validate_name("name", name)?,
            email: validate_email(email)?,
            purpose: purpose.to_string(),
            created_at: self.now(),
        };
        let mut tx = self.store.tenant_tx(t).await?;
        tenants::insert_contact(&mut tx, t, &contact).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("tenant.contact.add")
                .target("contact", &contact.id)
                .details(serde_json::json!({ "email": contact.email, "purpose": contact.purpose })),
        )
        .await?;
        tx.commit().await?;
        Ok(contact)
    }

    pub async fn delete_contact(
        &self,
        auth: &AuthContext,
        id: &ContactId,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let exists = tenants::list_contacts(&mut tx, t)
            .await?
            .iter()
            .any(|c| &c.id == id);
        drop(tx);
        if !exists {
            return Err(self
                .not_found(&auth.principal, "contact", id.as_str(), ctx)
                .await);
        }
        self.require(
            &auth.principal,
            Action::TenantManage,
            &Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        let mut tx = self.store.tenant_tx(t).await?;
        match tenants::delete_contact(&mut tx, t, id).await {
            Ok(()) => {}
            Err(kura_store::StoreError::NotFound) => {
                drop(tx);
                return Err(self
                    .not_found(&auth.principal, "contact", id.as_str(), ctx)
                    .await);
            }
            Err(e) => return Err(e.into()),
        }
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("tenant.contact.delete").target("contact", id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
