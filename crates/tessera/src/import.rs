//! `tessera import --format fernet|aes-gcm-hex`: secrets encrypted by another system, re-encrypted
//! under Tessera's keys. (`--format dotenv|infisical-json` and `--from-vault`, plain keys from other
//! secrets managers, are `import_secrets`.)
//!
//! The input is JSON Lines, one record a line:
//!
//! - `{"tenantId","path","ciphertext"}`: a tenant secret, stored as `{"value": plaintext}`;
//! - `{"tenantId","integration","field","ciphertext"}`: a secret config field of a
//!   connection, or of the integration's global defaults when `tenantId` is `_platform`.
//!
//! Formats: `fernet` (seeds 003/004: Fernet tokens, the key 32 bytes of url-safe base64)
//! and `aes-gcm-hex` (seed 002: `ivHex:cipherHex:tagHex`, AES-256-GCM, the key 32 bytes as
//! 64 hex characters or base64). Token lifetimes are ignored: old tokens import.
//!
//! Each line stands alone: a bad line is reported on stderr as `line N: reason` and the
//! others still import. A reason never contains a plaintext, a ciphertext or the key.
//! Plaintexts stay in zeroizing buffers until handed to the service layer.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use base64::Engine as _;
use serde_json::{Map, Value};
use tessera_core::ids::PLATFORM_TENANT;
use tessera_core::schema::ConfigSchema;
use tessera_core::service::{SecretPayload, SecretWrite};
use tessera_core::{Ctx, ServiceError, Tessera};
use tessera_crypto::legacy::{LegacyCipher, LegacyFormat};
use zeroize::{Zeroize, Zeroizing};

use crate::service::open_service;
use crate::settings::Settings;

/// Arguments of `tessera import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// `fernet` or `aes-gcm-hex` (records encrypted by an older system: with
    /// --key and --input), `dotenv` or `infisical-json` (a file of keys: with
    /// --tenant and FILE).
    #[arg(long)]
    pub format: Option<String>,
    /// The old key (base64 or hex). Also read from TESSERA_IMPORT_KEY, which
    /// keeps it out of the process list.
    #[arg(long, env = "TESSERA_IMPORT_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// A JSON Lines file of encrypted records (fernet, aes-gcm-hex).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// The tenant the keys become secrets of (dotenv, infisical-json, --from-vault).
    #[arg(long)]
    pub tenant: Option<String>,
    /// A folder the secrets go under: --prefix stripe puts KEY at stripe/KEY.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Copies a Vault or OpenBao KV v2 subtree (VAULT_ADDR, VAULT_TOKEN,
    /// VAULT_NAMESPACE) into the tenant, each secret's fields as one secret.
    #[arg(long)]
    pub from_vault: bool,
    /// With --from-vault: the KV v2 mount.
    #[arg(long, default_value = "secret")]
    pub mount: String,
    /// With --from-vault: the subtree (a folder or one secret) under the mount; default all of it.
    #[arg(long, default_value = "")]
    pub path: String,
    /// The file to import (dotenv, infisical-json).
    pub file: Option<PathBuf>,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    use crate::import_secrets::Source;
    let format = args.format.as_deref().map(str::trim);
    let needs_tenant = || args.tenant.as_deref().ok_or_else(|| anyhow::anyhow!("--tenant is required"));
    if args.from_vault {
        if format.is_some() || args.file.is_some() || args.input.is_some() {
            bail!("--from-vault reads Vault: it takes no --format, --input or FILE");
        }
        let source = Source::Vault { mount: args.mount.clone(), path: args.path.clone() };
        return crate::import_secrets::run(source, needs_tenant()?, args.prefix.as_deref()).await;
    }
    match format {
        Some(f @ ("dotenv" | "infisical-json")) => {
            let Some(file) = args.file.clone() else { bail!("--format {f} needs the FILE to import") };
            let source = if f == "dotenv" { Source::Dotenv(file) } else { Source::Infisical(file) };
            crate::import_secrets::run(source, needs_tenant()?, args.prefix.as_deref()).await
        }
        Some(f @ ("fernet" | "aes-gcm-hex")) => {
            let (Some(key), Some(input)) = (args.key, args.input) else {
                bail!("--format {f} needs --key (or TESSERA_IMPORT_KEY) and --input");
            };
            run_legacy(f, key, input).await
        }
        Some(other) => {
            bail!("unknown --format {:?}: expected fernet, aes-gcm-hex, dotenv or infisical-json", truncate(other))
        }
        None => bail!("--format is required (fernet, aes-gcm-hex, dotenv, infisical-json), or --from-vault"),
    }
}

async fn run_legacy(format: &str, key: String, input_path: PathBuf) -> anyhow::Result<ExitCode> {
    crate::init_logging()?;
    // Arguments first: a bad format, key or file stops before the store is touched.
    let key = Zeroizing::new(key);
    let decrypter = Decrypter::new(format, &key)?;
    drop(key);
    let input = std::fs::read(&input_path).with_context(|| format!("cannot read {}", input_path.display()))?;
    let mut settings = Settings::from_env()?;
    let svc = open_service(&mut settings).await?;
    let ctx = Ctx::cli();
    let (mut imported, mut failed) = (0usize, 0usize);
    for (i, raw) in input.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match import_line(&svc, &ctx, &decrypter, raw).await {
            Ok(()) => imported += 1,
            Err(reason) => {
                failed += 1;
                eprintln!("line {}: {reason:#}", i + 1);
            }
        }
    }
    println!("imported {imported}, failed {failed}");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Where one record goes.
enum Target {
    Secret { path: String },
    Field { integration: String, field: String },
}

/// One parsed line (the ciphertext is not secret, the plaintext it holds is).
struct Record {
    tenant: String,
    target: Target,
    ciphertext: String,
}

/// Imports one line; the error is the reason to print (it names no value).
async fn import_line(svc: &Tessera, ctx: &Ctx, decrypter: &Decrypter, raw: &[u8]) -> anyhow::Result<()> {
    let record = parse_record(raw)?;
    let plaintext = decrypter.decrypt(&record.ciphertext)?;
    let result = match &record.target {
        Target::Secret { path } => {
            let write = SecretWrite {
                payload: SecretPayload::Value(Value::String(plaintext.to_string())),
                cas: None,
                rotate_after_days: None,
            };
            svc.put_secret(ctx, &record.tenant, path, write).await.map(drop)
        }
        Target::Field { integration, field } => {
            if plaintext.is_empty() {
                // The service reads an empty string as "remove this field".
                bail!("the decrypted value is empty; an empty value would remove the field");
            }
            require_secret_field(svc, ctx, integration, field).await?;
            let mut config = Map::new();
            config.insert(field.clone(), Value::String(plaintext.to_string()));
            if record.tenant == PLATFORM_TENANT {
                svc.put_defaults(ctx, integration, config).await.map(drop)
            } else {
                svc.put_connection_config(ctx, &record.tenant, integration, config, None).await.map(drop)
            }
        }
    };
    result.map_err(|e| describe(&e, &plaintext))
}

/// Refuses a field the schema does not mark secret: a value that was encrypted
/// must not become plain config (stored, listed and logged in clear).
async fn require_secret_field(svc: &Tessera, ctx: &Ctx, integration: &str, field: &str) -> anyhow::Result<()> {
    let view = svc.get_integration(ctx, integration).await.map_err(|e| describe(&e, ""))?;
    let schema = ConfigSchema::from_stored(&view.config_schema).map_err(|e| describe(&e, ""))?;
    if schema.field(field).is_none() {
        bail!("{field} is not a property of integration {integration}");
    }
    if !schema.is_secret(field) {
        bail!(
            "{field} of integration {integration} is not a secret field; refusing to store a decrypted value as plain config"
        );
    }
    Ok(())
}

/// A service error as a reason; the plaintext is masked should a message ever echo it.
fn describe(e: &ServiceError, plaintext: &str) -> anyhow::Error {
    let mut reason = format!("{} ({})", e.message, e.code);
    if !plaintext.is_empty() && reason.contains(plaintext) {
        reason = reason.replace(plaintext, "[SECRET]");
    }
    anyhow::Error::msg(reason)
}

const KEYS: [&str; 5] = ["tenantId", "path", "integration", "field", "ciphertext"];

/// Parses one line. Reasons name keys and positions, never values.
/// (serde's own message is not kept: it can quote the line.)
fn parse_record(raw: &[u8]) -> anyhow::Result<Record> {
    let value: Value = serde_json::from_slice(raw)
        .map_err(|e| anyhow::anyhow!("malformed JSON ({:?} error at column {})", e.classify(), e.column()))?;
    let Value::Object(mut obj) = value else {
        bail!("expected a JSON object");
    };
    if let Some(unknown) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
        bail!("unknown key {:?} (expected {})", truncate(unknown), KEYS.join(", "));
    }
    let mut take = |key: &str| -> anyhow::Result<Option<String>> {
        match obj.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => bail!("{key} must be a string"),
        }
    };
    let tenant = take("tenantId")?.context("missing tenantId")?;
    let ciphertext = take("ciphertext")?.context("missing ciphertext")?;
    let target = match (take("path")?, take("integration")?, take("field")?) {
        (Some(path), None, None) => Target::Secret { path },
        (None, Some(integration), Some(field)) => Target::Field { integration, field },
        _ => bail!("expected either path, or integration and field"),
    };
    Ok(Record { tenant, target, ciphertext })
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The old system's cipher, keyed (the cipher itself lives in
/// `tessera_crypto::legacy`: no cipher code outside that crate).
struct Decrypter(LegacyCipher);

impl Decrypter {
    /// Checks the format and key (errors here are bad arguments: exit 2).
    fn new(format: &str, key: &str) -> anyhow::Result<Self> {
        let (format, key_context) = match format {
            "fernet" => (LegacyFormat::Fernet, "--key must be the Fernet key: 32 bytes as url-safe base64"),
            "aes-gcm-hex" => (LegacyFormat::AesGcmHex, "--key must be 32 bytes as 64 hex characters or base64"),
            other => bail!("unknown --format {:?}: expected fernet or aes-gcm-hex", truncate(other)),
        };
        let bytes = decode_key(key).context(key_context)?;
        let cipher = LegacyCipher::new(format, &bytes).map_err(|e| anyhow::anyhow!("--key: {e}"))?;
        Ok(Self(cipher))
    }

    /// Decrypts one value into a zeroizing UTF-8 string.
    fn decrypt(&self, ciphertext: &str) -> anyhow::Result<Zeroizing<String>> {
        into_utf8(self.0.decrypt(ciphertext)?)
    }
}

/// Moves decrypted bytes into a zeroizing string; invalid UTF-8 is wiped and
/// refused (the UTF-8 error is not kept: it holds the bytes).
fn into_utf8(mut bytes: Zeroizing<Vec<u8>>) -> anyhow::Result<Zeroizing<String>> {
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(e) => {
            e.into_bytes().zeroize();
            bail!("the decrypted value is not UTF-8 text")
        }
    }
}

/// A 32-byte key: 64 hex characters, or base64 (standard or url-safe, padding optional).
fn decode_key(key: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let key = key.trim();
    let bytes = if key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(key).ok()
    } else {
        let unpadded = key.trim_end_matches('=');
        URL_SAFE_NO_PAD.decode(unpadded).or_else(|_| STANDARD_NO_PAD.decode(unpadded)).ok()
    };
    match bytes.map(Zeroizing::new) {
        Some(b) if b.len() == 32 => Ok(b),
        Some(_) => bail!("the key is not 32 bytes long"),
        None => bail!("the key is neither hex nor base64"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any line, bytes or JSON, parses or is refused with a reason that
        /// names no value (the reasons quote keys, never values).
        #[test]
        fn any_import_line_parses_or_is_refused_without_quoting_values(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            value in "[a-zA-Z0-9]{12,20}",
            keys in proptest::collection::vec(prop_oneof![
                Just("tenantId"), Just("path"), Just("integration"), Just("field"), Just("ciphertext"), Just("other")
            ], 0..6),
        ) {
            let _ = parse_record(&bytes);
            let obj: serde_json::Map<String, Value> =
                keys.iter().map(|k| ((*k).to_owned(), Value::String(value.clone()))).collect();
            let line = serde_json::to_vec(&Value::Object(obj)).expect("json");
            if let Err(reason) = parse_record(&line) {
                let reason = format!("{reason:#}");
                prop_assert!(!reason.contains(&value), "{}", reason);
            }
        }
    }

    #[test]
    fn keys_decode_from_hex_and_both_base64_alphabets() {
        let raw: Vec<u8> = (0u8..32).map(|b| b.wrapping_mul(37).wrapping_add(250)).collect();
        let hex_key = hex::encode(&raw);
        let std_key = base64::engine::general_purpose::STANDARD.encode(&raw);
        let url_key = base64::engine::general_purpose::URL_SAFE.encode(&raw);
        assert_ne!(std_key, url_key, "the test key must use both alphabets' distinct characters");
        for k in [&hex_key, &std_key, &url_key] {
            assert_eq!(&*decode_key(k).expect("decodes"), &raw);
        }
        assert!(decode_key("abcd").is_err());
        assert!(decode_key("not base64 at all!").is_err());
    }

    #[test]
    fn records_are_parsed_without_echoing_values() {
        let r = parse_record(br#"{"tenantId":"t1","path":"a/b","ciphertext":"x"}"#).expect("secret");
        assert!(matches!(r.target, Target::Secret { ref path } if path == "a/b"));
        let r = parse_record(br#"{"tenantId":"t1","integration":"i","field":"f","ciphertext":"x"}"#).expect("field");
        assert!(matches!(r.target, Target::Field { .. }));
        for bad in [
            &br#"{"tenantId":"t1","path":"a","ciphertext":"s3cr3t-token"#[..],
            br#"["s3cr3t-token"]"#,
            br#"{"tenantId":"t1","ciphertext":"s3cr3t-token"}"#,
            br#"{"tenantId":"t1","path":"a","field":"f","ciphertext":"s3cr3t-token"}"#,
            br#"{"tenantId":1,"path":"a","ciphertext":"s3cr3t-token"}"#,
        ] {
            let reason = format!("{:#}", parse_record(bad).err().expect("refused"));
            assert!(!reason.contains("s3cr3t"), "{reason}");
        }
    }

    #[test]
    fn gcm_hex_shapes_are_checked() {
        let d = Decrypter::new("aes-gcm-hex", &"11".repeat(32)).expect("key");
        for bad in ["", "00:00", "zz:00:00", &format!("{}:00:{}", "00".repeat(12), "00".repeat(8))] {
            assert!(d.decrypt(bad).is_err());
        }
        assert!(d.decrypt(&format!("{}:00:{}", "00".repeat(12), "00".repeat(16))).is_err());
        assert!(Decrypter::new("nope", &"11".repeat(32)).is_err());
        assert!(Decrypter::new("fernet", "short").is_err());
    }
}
