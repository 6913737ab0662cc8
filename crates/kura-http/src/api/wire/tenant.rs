//! The tenant, its settings and contacts.

use super::*;

#[derive(Serialize, JsonSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: TenantStatus,
    pub settings: TenantSettings,
    pub created_at: Timestamp,
}

impl From<kura_store::tenants::Tenant> for Tenant {
    fn from(t: kura_store::tenants::Tenant) -> Self {
        Tenant {
            id: t.id,
            slug: t.slug,
            name: t.name,
            status: t.status,
            settings: t.settings,
            created_at: t.created_at,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct Contact {
    pub id: ContactId,
    pub name: String,
    pub email: String,
    /// What the contact is for: `notices`, `security`, `billing`, `technical`.
    pub purpose: String,
    pub created_at: Timestamp,
}

impl From<kura_store::tenants::Contact> for Contact {
    fn from(c: kura_store::tenants::Contact) -> Self {
        Contact {
            id: c.id,
            name: c.name,
            email: c.email,
            purpose: c.purpose,
            created_at: c.created_at,
        }
    }
}
