//! Known-answer vectors: fixed keys, nonces and owners give these exact
//! stored strings. What Tessera has stored must stay readable, so a change
//! that breaks one of these breaks every deployment's data: never update an
//! expected value to make a test pass; add a new format version instead.
//!
//! The expected strings were computed with Python's `cryptography` (AESGCM,
//! HMAC-SHA256) from the formats' description, not with this code.

use crate::keys::{check, wrap_aad, DataKey, KeyOwner, MasterKey, WrapFormat, WrappedDataKey};
use crate::value::{Aad, ValueFormat};

/// Data key bytes 0x00..0x1f, version 1.
fn data_key() -> DataKey {
    DataKey::from_bytes(1, &(0u8..32).collect::<Vec<_>>()).expect("32 bytes")
}

/// Master key bytes 0x20..0x3f.
fn master_key() -> MasterKey {
    MasterKey::from_bytes(&(0x20u8..0x40).collect::<Vec<_>>()).expect("32 bytes")
}

fn nonce(first: u8) -> [u8; 12] {
    std::array::from_fn(|i| first + i as u8)
}

const TENANT: &str = "acme";
const PATH: &str = "stripe/STRIPE_SECRET_KEY";
const FIELD: &str = "value";
const PLAINTEXT: &[u8] = b"sk_live_example";
const OWNER: KeyOwner<'static> = KeyOwner { tenant: TENANT, incarnation: "0f1e2d3c4b5a69788796a5b4c3d2e1f0" };

#[test]
fn value_associated_data_is_pinned() {
    let aad = Aad::new(TENANT, PATH, FIELD);
    assert_eq!(
        hex::encode(aad.bytes(ValueFormat::V1)),
        "746573736572612e76616c75652e76310061636d65007374726970652f5354524950455f5345435245545f4b45590076616c7565"
    );
    assert_eq!(
        hex::encode(aad.bytes(ValueFormat::V2)),
        "00000010746573736572612e76616c75652e76320000000461636d65000000187374726970652f5354524950455f53454352\
         45545f4b45590000000576616c7565"
    );
}

#[test]
fn value_ciphertexts_are_pinned_in_both_formats() {
    let dek = data_key();
    let aad = Aad::new(TENANT, PATH, FIELD);
    let v2 = "tsr:v1:f2:oKGio6SlpqeoqaqrlXMjQSy9Z+AHHea+dxalUJHoDr0VZm5VLsTPfNZiVQ==";
    let v1 = "tsr:v1:oKGio6SlpqeoqaqrlXMjQSy9Z+AHHea+dxalPCRwWtUoOMhPo55Rh8rMow==";
    assert_eq!(dek.encrypt_with_nonce(ValueFormat::V2, &aad, &nonce(0xa0), PLAINTEXT), v2);
    assert_eq!(dek.encrypt_with_nonce(ValueFormat::V1, &aad, &nonce(0xa0), PLAINTEXT), v1);
    assert_eq!(&dek.decrypt(&aad, v2).expect("format 2 reads")[..], PLAINTEXT);
    assert_eq!(&dek.decrypt(&aad, v1).expect("format 1 reads")[..], PLAINTEXT);
}

#[test]
fn the_master_key_id_is_pinned() {
    assert_eq!(master_key().id(), "56b481398c3d");
}

#[test]
fn data_key_wrap_associated_data_is_pinned() {
    assert_eq!(
        hex::encode(wrap_aad(WrapFormat::V1, OWNER, 1)),
        "746573736572612e64656b2d777261702e76310061636d650000000001"
    );
    assert_eq!(
        hex::encode(wrap_aad(WrapFormat::V2, OWNER, 1)),
        "00000013746573736572612e64656b2d777261702e76320000000461636d6500000020306631653264336334623561363937\
         38383739366135623463336432653166300000000400000001"
    );
}

#[test]
fn wrapped_data_keys_are_pinned_in_both_formats() {
    let kek = master_key();
    let dek = data_key();
    let v2 = "tsrk:v2:56b481398c3d:sLGys7S1tre4ubq7NvsoRJYmzgk6BBfxDzCTOYYisIieXYIm+F21Q8k6E8A/4TFqYtaUVkrG203fQsov";
    let v1 = "tsrk:56b481398c3d:sLGys7S1tre4ubq7NvsoRJYmzgk6BBfxDzCTOYYisIieXYIm+F21Q8k6E8D+UmJIFRX98RFGlGxwB8Ag";
    assert_eq!(kek.wrap_with_nonce(WrapFormat::V2, OWNER, 1, &dek, &nonce(0xb0)).0, v2);
    assert_eq!(kek.wrap_with_nonce(WrapFormat::V1, OWNER, 1, &dek, &nonce(0xb0)).0, v1);
    for text in [v2, v1] {
        let back = kek.unwrap(OWNER, 1, &WrappedDataKey(text.to_owned())).expect("unwraps");
        assert_eq!(back.expose_bytes(), dek.expose_bytes());
    }
    let external = WrappedDataKey::external_v2("vault:v1:abc");
    assert_eq!(external.0, "tsrx:v2:vault:v1:abc");
    assert_eq!(external.external(), (WrapFormat::V2, "vault:v1:abc"));
    assert_eq!(WrappedDataKey("vault:v1:abc".into()).external(), (WrapFormat::V1, "vault:v1:abc"));
}

#[test]
fn check_value_owners_are_pinned() {
    assert_eq!((check::LOCAL_OWNER.tenant, check::LOCAL_OWNER.incarnation), ("\u{0}kek-check", ""));
    assert_eq!((check::TRANSIT_OWNER.tenant, check::TRANSIT_OWNER.incarnation), ("\u{0}check", ""));
    assert_eq!((check::TRANSIT_KEY, check::VERSION), ("tessera-kek-check", 0));
}
