//! Secret records kept in memory by the backends that are not SQL: the same
//! versioning rules as the database backend (check-and-set, pruning).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tessera_core::ports::{SecretRecord, SecretVersionRecord};
use tessera_core::secret_store::{check_cas, NewVersion};
use tessera_core::ServiceError;

/// Every secret, by tenant then path.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Secrets {
    pub(crate) tenants: BTreeMap<String, BTreeMap<String, Entry>>,
}

/// One secret and its kept versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entry {
    pub(crate) current_version: u32,
    pub(crate) max_versions: u32,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) versions: Vec<Version>,
}

/// One version: ciphertext only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Version {
    pub(crate) version: u32,
    pub(crate) kind: String,
    pub(crate) ciphertext: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) created_by: String,
    pub(crate) deleted_at: Option<i64>,
}

fn time(m: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(m).unwrap_or_default()
}

impl Secrets {
    pub(crate) fn entry(&self, tenant: &str, path: &str) -> Option<&Entry> {
        self.tenants.get(tenant)?.get(path)
    }

    pub(crate) fn head(&self, tenant: &str, path: &str) -> Option<SecretRecord> {
        self.entry(tenant, path).map(|e| SecretRecord {
            tenant_id: tenant.to_owned(),
            path: path.to_owned(),
            current_version: e.current_version,
            max_versions: e.max_versions,
            created_at: time(e.created_at),
            updated_at: time(e.updated_at),
        })
    }

    pub(crate) fn versions(&self, tenant: &str, path: &str) -> Vec<SecretVersionRecord> {
        self.entry(tenant, path).map(|e| e.versions.iter().map(Version::record).collect()).unwrap_or_default()
    }

    pub(crate) fn append(
        &mut self,
        tenant: &str,
        path: &str,
        new: NewVersion,
        cas: Option<u32>,
        max: u32,
    ) -> Result<u32, ServiceError> {
        let at = new.created_at.timestamp_micros();
        // Checked before anything changes: a refused append leaves no empty entry behind.
        check_cas(cas, self.entry(tenant, path).map_or(0, |e| e.current_version))?;
        let entry = self.tenants.entry(tenant.to_owned()).or_default().entry(path.to_owned()).or_insert_with(|| {
            Entry { current_version: 0, max_versions: max, created_at: at, updated_at: at, versions: Vec::new() }
        });
        entry.current_version += 1;
        entry.max_versions = max;
        entry.updated_at = at;
        entry.versions.push(Version {
            version: entry.current_version,
            kind: new.kind,
            ciphertext: Some(new.ciphertext),
            created_at: at,
            created_by: new.created_by,
            deleted_at: new.deleted_at.map(|t| t.timestamp_micros()),
        });
        let keep_from = entry.current_version.saturating_sub(max) + 1;
        entry.versions.retain(|v| v.version >= keep_from);
        Ok(entry.current_version)
    }

    pub(crate) fn change(&mut self, tenant: &str, path: &str, versions: &[u32], f: impl Fn(&mut Version)) {
        if let Some(e) = self.tenants.get_mut(tenant).and_then(|t| t.get_mut(path)) {
            e.versions.iter_mut().filter(|v| versions.contains(&v.version)).for_each(f);
        }
    }

    pub(crate) fn paths(&self, tenant: &str, prefix: &str) -> Vec<String> {
        self.tenants
            .get(tenant)
            .map(|t| t.keys().filter(|p| p.starts_with(prefix)).cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn remove(&mut self, tenant: &str, path: &str) {
        if let Some(t) = self.tenants.get_mut(tenant) {
            t.remove(path);
        }
    }

    pub(crate) fn remove_prefix(&mut self, prefix: &str) {
        for t in self.tenants.values_mut() {
            t.retain(|p, _| !p.starts_with(prefix));
        }
    }
}

impl Version {
    pub(crate) fn record(&self) -> SecretVersionRecord {
        SecretVersionRecord {
            version: self.version,
            kind: self.kind.clone(),
            ciphertext: self.ciphertext.clone(),
            created_at: time(self.created_at),
            created_by: self.created_by.clone(),
            deleted_at: self.deleted_at.map(time),
        }
    }
}
