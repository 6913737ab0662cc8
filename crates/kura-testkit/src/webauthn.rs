//! A software WebAuthn authenticator for the Rust tests, written from the W3C WebAuthn
//! Level 2 and CTAP2 texts and independent of webauthn-rs: ES256 (P-256) keys from
//! aws-lc-rs, `none` attestation, CBOR encoded by hand. It makes what a browser would send
//! to the server (binary fields base64url), and can be told to misbehave: another origin,
//! a counter that went backwards.

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

/// A CBOR value (the subset WebAuthn needs).
enum Cbor {
    Int(i64),
    Bytes(Vec<u8>),
    Text(&'static str),
    Map(Vec<(Cbor, Cbor)>),
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n < 0x100 {
        out.push(m | 24);
        out.push(n as u8);
    } else if n < 0x1_0000 {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn encode(v: &Cbor, out: &mut Vec<u8>) {
    match v {
        Cbor::Int(i) if *i >= 0 => head(out, 0, *i as u64),
        Cbor::Int(i) => head(out, 1, (-1 - *i) as u64),
        Cbor::Bytes(b) => {
            head(out, 2, b.len() as u64);
            out.extend_from_slice(b);
        }
        Cbor::Text(t) => {
            head(out, 3, t.len() as u64);
            out.extend_from_slice(t.as_bytes());
        }
        Cbor::Map(kv) => {
            head(out, 5, kv.len() as u64);
            for (k, v) in kv {
                encode(k, out);
                encode(v, out);
            }
        }
    }
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .expect("base64url in options")
}

/// One credential the authenticator holds (discoverable: it remembers the user handle).
pub struct SoftCredential {
    pub id: Vec<u8>,
    key: EcdsaKeyPair,
    pub user_handle: Vec<u8>,
    pub counter: u32,
}

/// How an answer should go wrong, for negative tests.
#[derive(Debug, Clone, Default)]
pub struct Misbehave {
    /// Sign for this origin instead of the server's.
    pub origin: Option<String>,
    /// Report this counter instead of the next one.
    pub counter: Option<u32>,
    /// Leave out user verification (UV flag off).
    pub no_user_verification: bool,
}

pub struct SoftAuthenticator {
    origin: String,
    rp_id: String,
    pub credentials: Vec<SoftCredential>,
}

impl SoftAuthenticator {
    /// An authenticator for the site at `origin` (e.g. `http://localhost:8080`).
    pub fn new(origin: &str) -> Self {
        let url = reqwest::Url::parse(origin).expect("origin");
        SoftAuthenticator {
            origin: url.origin().ascii_serialization(),
            rp_id: url.host_str().expect("host").to_string(),
            credentials: Vec::new(),
        }
    }

    fn client_data(&self, kind: &str, challenge: &str, m: &Misbehave) -> Vec<u8> {
        let origin = m.origin.clone().unwrap_or_else(|| self.origin.clone());
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": origin,
            "crossOrigin": false,
        }))
        .expect("json")
    }

    fn flags(m: &Misbehave) -> u8 {
        // UP (user present) and UV (user verified).
        if m.no_user_verification {
            0x01
        } else {
            0x05
        }
    }

    /// Answers `navigator.credentials.create(options)`: a new credential with `none`
    /// attestation. `options` is what the server sent (`{"publicKey": …}`).
    pub fn register(&mut self, options: &Value, m: &Misbehave) -> Value {
        let pk = &options["publicKey"];
        assert_eq!(pk["rp"]["id"], self.rp_id, "relying party id");
        let challenge = pk["challenge"].as_str().expect("challenge");
        let user_handle = unb64(pk["user"]["id"].as_str().expect("user id"));
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("key generation");
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).expect("key");
        let point = key.public_key().as_ref().to_vec(); // 0x04 ‖ x ‖ y
        let id = aws_lc_rs::rand::generate::<[u8; 32]>(&rng)
            .expect("rng")
            .expose()
            .to_vec();
        let cose = Cbor::Map(vec![
            (Cbor::Int(1), Cbor::Int(2)),  // kty: EC2
            (Cbor::Int(3), Cbor::Int(-7)), // alg: ES256
            (Cbor::Int(-1), Cbor::Int(1)), // crv: P-256
            (Cbor::Int(-2), Cbor::Bytes(point[1..33].to_vec())),
            (Cbor::Int(-3), Cbor::Bytes(point[33..65].to_vec())),
        ]);
        let mut auth_data = digest(&SHA256, self.rp_id.as_bytes()).as_ref().to_vec();
        auth_data.push(Self::flags(m) | 0x40); // AT: attested credential data follows
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
        auth_data.extend_from_slice(&(id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&id);
        encode(&cose, &mut auth_data);
        let mut att = Vec::new();
        encode(
            &Cbor::Map(vec![
                (Cbor::Text("fmt"), Cbor::Text("none")),
                (Cbor::Text("attStmt"), Cbor::Map(vec![])),
                (Cbor::Text("authData"), Cbor::Bytes(auth_data)),
            ]),
            &mut att,
        );
        let client_data = self.client_data("webauthn.create", challenge, m);
        let answer = json!({
            "id": b64(&id),
            "rawId": b64(&id),
            "type": "public-key",
            "extensions": {},
            "response": {
                "attestationObject": b64(&att),
                "clientDataJSON": b64(&client_data),
                "transports": ["internal"],
            },
        });
        self.credentials.push(SoftCredential {
            id,
            key,
            user_handle,
            counter: 0,
        });
        answer
    }

    /// Answers `navigator.credentials.get(options)` with credential `index`, as a
    /// discoverable credential would (with its user handle).
    pub fn assert(&mut self, options: &Value, index: usize, m: &Misbehave) -> Value {
        let pk = &options["publicKey"];
        let challenge = pk["challenge"].as_str().expect("challenge").to_string();
        let client_data = self.client_data("webauthn.get", &challenge, m);
        let rp_hash = digest(&SHA256, self.rp_id.as_bytes());
        let flags = Self::flags(m);
        let cred = &mut self.credentials[index];
        cred.counter += 1;
        let counter = m.counter.unwrap_or(cred.counter);
        let mut auth_data = rp_hash.as_ref().to_vec();
        auth_data.push(flags);
        auth_data.extend_from_slice(&counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend_from_slice(digest(&SHA256, &client_data).as_ref());
        let sig = cred
            .key
            .sign(&SystemRandom::new(), &signed)
            .expect("signature");
        json!({
            "id": b64(&cred.id),
            "rawId": b64(&cred.id),
            "type": "public-key",
            "extensions": {},
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(sig.as_ref()),
                "userHandle": b64(&cred.user_handle),
            },
        })
    }
}
