//! Offline verification of an exported audit log (LOG-5): `kura audit verify FILE
//! --public-key K`. Needs only the file and the deployment's public key.
//!
//! An export is JSON Lines: a `header`; for a contiguous export (no filter but time) an
//! `anchor` — the signed chain state just before the first entry; the `event`s, each with
//! its hash, and after an event any stored `checkpoint` signed at that point; a final
//! signed `checkpoint` of the last entry; the chain's `newest_checkpoint` when it lies past
//! the last entry (an export that ends early); and a `trailer` signing the SHA-256 of every
//! line before it. New checkpoints (anchor, final) are signed only when the server verified
//! the whole chain first; the header says whether it did (`chain_verified`), and an export
//! of a chain that failed is refused here. So an edited line fails its own hash, a removed or reordered line breaks the
//! chain (or the order), re-computed hashes contradict the signed checkpoints, and a file
//! re-signed with another key fails against the deployment's public key.

use crate::chain::AuditRecord;
use crate::sign;
use sha2::{Digest, Sha256};
use std::io::BufRead;

/// What a good export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub tenant_id: String,
    pub events: u64,
    pub checkpoints: u64,
    pub contiguous: bool,
    /// First and last seq of the entries.
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
}

/// The first line that does not verify, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ExportError {
    pub line: u64,
    pub reason: String,
}

fn err(line: u64, reason: impl Into<String>) -> ExportError {
    ExportError {
        line,
        reason: reason.into(),
    }
}

#[derive(serde::Deserialize)]
struct SignedPoint {
    tenant_id: String,
    seq: i64,
    hash: String,
    at: i64,
    signature: String,
}

fn check_point(
    v: &serde_json::Value,
    pk: &str,
    line: u64,
    tenant: &str,
) -> Result<SignedPoint, ExportError> {
    let p: SignedPoint = serde_json::from_value(v.clone())
        .map_err(|e| err(line, format!("malformed checkpoint: {e}")))?;
    if p.tenant_id != tenant {
        return Err(err(line, "checkpoint of another tenant"));
    }
    if !sign::verify(
        pk,
        &sign::checkpoint_message(&p.tenant_id, p.seq, &p.hash, p.at),
        &p.signature,
    ) {
        return Err(err(
            line,
            "checkpoint signature does not verify with this public key",
        ));
    }
    Ok(p)
}

/// Verifies an export read line by line (constant memory).
pub fn verify_export(
    input: impl BufRead,
    public_key_hex: &str,
) -> Result<ExportSummary, ExportError> {
    let pk = public_key_hex.trim();
    let mut hasher = Sha256::new();
    let mut n: u64 = 0;
    let mut tenant = String::new();
    let mut contiguous = false;
    let mut prev: Option<(i64, String)> = None;
    let mut events = 0u64;
    let mut checkpoints = 0u64;
    let mut first_seq = None;
    let mut trailer_seen = false;
    let mut final_checkpoint = false;
    for raw in input.lines() {
        n += 1;
        let raw = raw.map_err(|e| err(n, format!("unreadable: {e}")))?;
        if trailer_seen {
            return Err(err(n, "lines after the trailer"));
        }
        let v: serde_json::Value =
            serde_json::from_str(&raw).map_err(|e| err(n, format!("not JSON: {e}")))?;
        let kind = v["type"].as_str().unwrap_or_default();
        if n == 1 && kind != "header" {
            return Err(err(n, "the first line must be the export header"));
        }
        match kind {
            "header" if n == 1 => {
                if v["format"] != "kura-audit-export/1" {
                    return Err(err(n, "unknown export format"));
                }
                tenant = v["tenant_id"].as_str().unwrap_or_default().to_string();
                contiguous = v["contiguous"].as_bool().unwrap_or(false);
                if v["chain_verified"] == false {
                    return Err(err(
                        n,
                        format!(
                            "the server's audit chain did not verify when this was exported: {}",
                            v["chain_error"].as_str().unwrap_or("no reason given")
                        ),
                    ));
                }
            }
            "anchor" => {
                if !contiguous || prev.is_some() || events > 0 {
                    return Err(err(
                        n,
                        "an anchor belongs before the first entry of a contiguous export",
                    ));
                }
                let p = check_point(&v, pk, n, &tenant)?;
                prev = Some((p.seq, p.hash));
            }
            "event" => {
                let rec: AuditRecord = serde_json::from_value(v.clone())
                    .map_err(|e| err(n, format!("malformed entry: {e}")))?;
                let hash = v["hash"].as_str().unwrap_or_default();
                if rec.tenant_id != tenant {
                    return Err(err(n, "entry of another tenant"));
                }
                if rec.compute_hash() != hash {
                    return Err(err(
                        n,
                        format!(
                            "entry seq {} was altered (its content does not match its hash)",
                            rec.seq
                        ),
                    ));
                }
                match &prev {
                    Some((ps, ph)) if contiguous => {
                        if rec.seq != ps + 1 {
                            return Err(err(n, format!("entry seq {} follows seq {ps}: an entry is missing or out of order", rec.seq)));
                        }
                        if &rec.prev_hash != ph {
                            return Err(err(
                                n,
                                format!("entry seq {} does not link to the one before it", rec.seq),
                            ));
                        }
                    }
                    Some((ps, _)) if rec.seq <= *ps => {
                        return Err(err(
                            n,
                            format!("entry seq {} after seq {ps}: out of order", rec.seq),
                        ));
                    }
                    Some(_) => {}
                    None if contiguous => {
                        return Err(err(
                            n,
                            "a contiguous export must start with its signed anchor",
                        ));
                    }
                    None => {}
                }
                first_seq.get_or_insert(rec.seq);
                prev = Some((rec.seq, hash.to_string()));
                events += 1;
                final_checkpoint = false;
            }
            "checkpoint" => {
                let p = check_point(&v, pk, n, &tenant)?;
                match &prev {
                    Some((ps, ph)) if *ps == p.seq => {
                        if *ph != p.hash {
                            return Err(err(n, format!("the signed checkpoint at seq {} disagrees with the entry before it (entries were rewritten)", p.seq)));
                        }
                    }
                    _ => return Err(err(n, "a checkpoint must follow the entry it signs")),
                }
                checkpoints += 1;
                final_checkpoint = true;
            }
            "newest_checkpoint" => {
                // The chain's newest signed state when exported, past the last entry here.
                let p = check_point(&v, pk, n, &tenant)?;
                if prev.as_ref().is_some_and(|(ps, _)| p.seq <= *ps) {
                    return Err(err(n, "the newest checkpoint must lie past the last entry"));
                }
                checkpoints += 1;
            }
            "trailer" => {
                let lines = v["lines"].as_u64().unwrap_or(u64::MAX);
                let sha = v["sha256"].as_str().unwrap_or_default();
                if lines != n - 1 {
                    return Err(err(
                        n,
                        format!("the trailer counts {lines} lines, the file has {}", n - 1),
                    ));
                }
                let digest = hex::encode(hasher.clone().finalize());
                if digest != sha {
                    return Err(err(
                        n,
                        "the lines before the trailer are not the ones it signed",
                    ));
                }
                if !sign::verify(
                    pk,
                    &sign::export_message(lines, sha),
                    v["signature"].as_str().unwrap_or_default(),
                ) {
                    return Err(err(
                        n,
                        "trailer signature does not verify with this public key",
                    ));
                }
                trailer_seen = true;
                continue;
            }
            other => return Err(err(n, format!("unknown line type {other:?}"))),
        }
        hasher.update(raw.as_bytes());
        hasher.update(b"\n");
    }
    if !trailer_seen {
        return Err(err(n + 1, "no signed trailer: the export is truncated"));
    }
    if contiguous && events > 0 && !final_checkpoint {
        return Err(err(
            n,
            "a contiguous export must end with a signed checkpoint of its last entry",
        ));
    }
    Ok(ExportSummary {
        tenant_id: tenant,
        events,
        checkpoints,
        contiguous,
        first_seq,
        last_seq: prev.map(|p| p.0),
    })
}
