//! Readiness (`/readyz`): each backend this process depends on is checked,
//! at the same time, and a failure names the backend and why ("the
//! credential backend (vault): Vault is sealed").

use crate::{ServiceError, Tessera};

/// What a process depends on, as `/readyz` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// The metadata store.
    Store,
    /// The credential backend.
    Secrets,
    /// The key provider.
    Keyring,
}

impl Component {
    /// The key `/readyz` reports this component under.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Secrets => "secrets",
            Self::Keyring => "keyring",
        }
    }

    /// The component in an operator's words.
    fn described(self) -> &'static str {
        match self {
            Self::Store => "the metadata store",
            Self::Secrets => "the credential backend",
            Self::Keyring => "the keyring",
        }
    }
}

/// One backend's check.
#[derive(Debug)]
pub struct ReadinessCheck {
    /// Which dependency this is.
    pub component: Component,
    /// Which implementation: `sqlite`, `postgres`, `vault`, `local`, `vault-transit`, ...
    pub backend: String,
    /// Why it is not usable, if it is not.
    pub error: Option<ServiceError>,
}

impl ReadinessCheck {
    fn describe(&self) -> String {
        let what = self.component.described();
        let why = self.error.as_ref().map_or("", |e| e.message.as_str());
        format!("{what} ({}): {why}", self.backend)
    }
}

/// Every check, in a fixed order.
#[derive(Debug)]
pub struct Readiness {
    /// Store, credential backend, keyring.
    pub checks: Vec<ReadinessCheck>,
}

impl Readiness {
    /// Ok when every check passed; else one error with the first failure's
    /// code and a message naming every failing backend.
    pub fn into_result(self) -> Result<Self, ServiceError> {
        let failed: Vec<&ReadinessCheck> = self.checks.iter().filter(|c| c.error.is_some()).collect();
        let Some(first) = failed.first().and_then(|c| c.error.as_ref()) else { return Ok(self) };
        let message = format!("not ready: {}", failed.iter().map(|c| c.describe()).collect::<Vec<_>>().join("; "));
        Err(ServiceError::new(first.kind, first.code, message))
    }
}

impl Tessera {
    /// Checks the metadata store (a ping), the credential backend (its own
    /// check: Vault reachable, unsealed, logged in) and the key provider (a
    /// wrap and unwrap of a check value), concurrently.
    pub async fn readiness(&self) -> Readiness {
        let store = async { self.store.ping().await.map_err(ServiceError::from) };
        let secrets = self.secrets.ready();
        let keyring = async {
            let check = self.keyring.provider().check_value().await?;
            self.keyring.provider().verify_check_value(&check).await
        };
        let (store, secrets, keyring) = futures::join!(store, secrets, keyring);
        Readiness {
            checks: vec![
                ReadinessCheck {
                    component: Component::Store,
                    backend: self.store.backend_name().to_owned(),
                    error: store.err(),
                },
                ReadinessCheck {
                    component: Component::Secrets,
                    backend: self.secrets.name().to_owned(),
                    error: secrets.err(),
                },
                ReadinessCheck {
                    component: Component::Keyring,
                    // The provider's kind only: /readyz is public, the key's id is not for everyone.
                    backend: self.keyring.provider().kek_id().split(':').next().unwrap_or_default().to_owned(),
                    error: keyring.err(),
                },
            ],
        }
    }

    /// Readiness as one result: every backend usable, or an error naming the ones that are not.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        self.readiness().await.into_result().map(|_| ())
    }
}
