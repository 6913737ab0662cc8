//! Backups (OPS-1, OPS-2). A generation holds, per tenant, a snapshot of its rows sealed
//! with that tenant's data key, the wrapped data keys (the vault, sealed by the master
//! key as in the database), and a manifest signed with the deployment key. Encrypted blobs
//! are copied to the backup store once and kept while a kept generation references them.
//! After every backup the generation is verified: manifest signature, every snapshot
//! decrypted and hashed and its rows counted, every blob copy hashed.
//!
//! Backup store layout (a second blob store: local directory or S3):
//! `gen-<id>/manifest`, `gen-<id>/vault`, `gen-<id>/snap-<tenant id>`, `<tenant id>/<blob id>`.
//!
//! Here: the manifest; `run` takes a generation, `verify` checks one, `retention` keeps and
//! prunes them, `restore` brings one back, `frames` writes and reads the sealed row snapshots.

use crate::{Result, ServiceError, Services};
use futures_util::StreamExt;
use kura_domain::{TenantId, Timestamp};
use kura_store::backup::{self, Generation, TENANT_TABLES};
use kura_store::blobs::Blobs;
use kura_store::tenants;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Where a generation's own objects live in the backup store.
fn gen_dir(id: &str) -> TenantId {
    TenantId::from_string(format!("gen-{id}"))
}

fn io(e: std::io::Error) -> ServiceError {
    ServiceError::internal(format!("backup store: {e}"))
}

fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// What the manifest says about one tenant.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TenantEntry {
    pub tenant_id: String,
    pub slug: String,
    pub key_version: i64,
    pub snapshot_sha256: String,
    /// Plaintext length of a `kura-backup/3` snapshot (sealed like every blob). Absent in
    /// older generations, which still read: then the number of sealed frames
    /// (`kura-backup/2`), or 0 for one sealed object (`kura-backup/1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_len: Option<u64>,
    /// Always written: the signature covers the manifest as re-serialized, so older
    /// manifests must come out byte for byte as they were signed.
    #[serde(default)]
    pub snapshot_chunks: u64,
    pub rows: BTreeMap<String, i64>,
    /// Blob id → SHA-256 of the encrypted bytes.
    pub blobs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: String,
    pub generation: String,
    pub created_at: Timestamp,
    pub region: String,
    pub tenants: Vec<TenantEntry>,
    pub vault_sha256: String,
    /// Tenants whose data keys were destroyed after this generation was written
    /// (crypto-shredding): their snapshots and blob copies can no longer be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shredded: Vec<String>,
}

mod frames;
mod restore;
mod retention;
mod run;
mod verify;
pub(crate) use frames::*;
pub use restore::*;
pub use retention::*;
pub(crate) use run::*;
pub(crate) use verify::*;
