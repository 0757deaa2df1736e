//! Builds JSON documents that carry decrypted secret values in zeroizing
//! buffers, so plaintext is not left behind in ordinary heap strings.

use serde_json::Value;
use zeroize::Zeroizing;

/// A JSON object under construction whose bytes zeroize on drop.
pub struct SecretJson {
    buf: Zeroizing<Vec<u8>>,
    first: bool,
}

impl Default for SecretJson {
    fn default() -> Self {
        Self::new()
    }
}

impl SecretJson {
    /// Starts `{`.
    pub fn new() -> Self {
        let mut buf = Zeroizing::new(Vec::with_capacity(256));
        buf.push(b'{');
        Self { buf, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        serde_json::to_writer(&mut *self.buf, key).expect("writing a string to a Vec cannot fail");
        self.buf.push(b':');
    }

    /// Adds a public value.
    pub fn public(&mut self, key: &str, value: &Value) {
        self.key(key);
        serde_json::to_writer(&mut *self.buf, value).expect("writing JSON to a Vec cannot fail");
    }

    /// Adds a value that is already JSON text (a decrypted secret).
    pub fn raw(&mut self, key: &str, json: &[u8]) {
        self.key(key);
        self.buf.extend_from_slice(json);
    }

    /// Adds a nested object built the same way.
    pub fn object(&mut self, key: &str, inner: SecretJson) {
        let inner = inner.finish();
        self.raw(key, &inner);
    }

    /// Ends `}` and returns the bytes.
    pub fn finish(mut self) -> Zeroizing<Vec<u8>> {
        self.buf.push(b'}');
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_valid_json_with_raw_and_nested_values() {
        let mut inner = SecretJson::new();
        inner.public("base_url", &json!("https://x"));
        inner.raw("api_key", br#""s3cr\"et""#);
        let mut outer = SecretJson::new();
        outer.public("tenantId", &json!("acme"));
        outer.object("config", inner);
        let v: Value = serde_json::from_slice(&outer.finish()).expect("valid JSON");
        assert_eq!(v, json!({"tenantId": "acme", "config": {"base_url": "https://x", "api_key": "s3cr\"et"}}));
    }
}
