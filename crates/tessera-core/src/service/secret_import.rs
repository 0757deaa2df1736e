//! Importing tenant secrets from another secrets manager (`tessera import
//! --format dotenv|infisical-json`, `--from-vault`): a write that is a new
//! version only when the value differs from the newest one, so running an
//! import twice changes nothing the second time.
//!
//! Built from the same use cases the API has: the newest version is read as
//! `GET /tenants/{t}/secrets/{path}` reads it (audited `secret.read`), and a
//! different value is written as `PUT` writes it (audited `secret.write`),
//! with check-and-set on the version that was compared, so a concurrent
//! writer is never overwritten unseen.

use subtle::ConstantTimeEq;

use super::{Ctx, SecretPayload, SecretWrite, Tessera};
use crate::error::ServiceError;
use crate::ErrorCode;

/// What importing one secret did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    /// There was no secret at the path: version 1 (or the next after a
    /// removed one) was written.
    Created {
        /// The new version.
        version: u32,
    },
    /// The newest version held another value (or was deleted or
    /// destroyed): a new version was written.
    Updated {
        /// The version compared against.
        previous: u32,
        /// The new version.
        version: u32,
    },
    /// The newest version already holds this value: nothing written.
    Unchanged {
        /// The newest version.
        version: u32,
    },
}

impl Tessera {
    /// Writes `payload` at `path` of `tenant` unless the newest version
    /// already holds exactly it (same kind, same JSON bytes, compared in
    /// constant time).
    pub async fn import_secret(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
        payload: SecretPayload,
    ) -> Result<ImportOutcome, ServiceError> {
        let current = match self.read_secret_version(ctx, tenant, path, None).await {
            Ok(read) => Some(read),
            Err(e) if e.code == ErrorCode::SecretNotFound => None,
            Err(e) => return Err(e),
        };
        let wanted = payload.plaintext();
        let cas = match &current {
            Some(read) => {
                let same = read.kind == payload.kind()
                    && read.plaintext.as_ref().is_some_and(|p| bool::from(p.as_slice().ct_eq(wanted.as_slice())));
                if same {
                    return Ok(ImportOutcome::Unchanged { version: read.version });
                }
                read.version
            }
            None => 0,
        };
        drop(wanted);
        let written = self
            .put_secret(ctx, tenant, path, SecretWrite { payload, cas: Some(cas), rotate_after_days: None })
            .await?;
        Ok(match current {
            Some(read) => ImportOutcome::Updated { previous: read.version, version: written.version },
            None => ImportOutcome::Created { version: written.version },
        })
    }
}
