//! Integers in JSON bodies as JSON Schema counts them: `3` and `3.0` are
//! the same integer (a number whose fraction is zero), so a body the
//! OpenAPI document calls valid is read as such. serde alone refuses `3.0`
//! for an integer field. A fraction or a value out of range is still refused.
//! Use with `#[serde(deserialize_with = "...")]`.

use serde::de::{Deserializer, Error, Visitor};
use serde::Deserialize;

/// A whole JSON number, widened so every `u64` and `i64` fits.
struct Whole(i128);

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Whole;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<Whole, E> {
                Ok(Whole(v.into()))
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<Whole, E> {
                Ok(Whole(v.into()))
            }
            fn visit_f64<E: Error>(self, v: f64) -> Result<Whole, E> {
                // 2^64 is far beyond every field's range and well inside i128.
                if v.is_finite() && v.fract() == 0.0 && v.abs() < 18_446_744_073_709_551_616.0 {
                    #[allow(clippy::cast_possible_truncation)] // whole and in range: checked above
                    Ok(Whole(v as i128))
                } else {
                    Err(E::custom("a field has the wrong type: expected an integer"))
                }
            }
        }
        d.deserialize_any(V)
    }
}

fn narrow<T: TryFrom<i128>, E: Error>(w: Whole) -> Result<T, E> {
    T::try_from(w.0).map_err(|_| E::custom("a field has the wrong type: the integer is out of range"))
}

/// An integer field.
pub fn integer<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
    narrow(Whole::deserialize(d)?)
}

/// An optional integer field (`null` is none); pair with `#[serde(default)]`.
pub fn opt_integer<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<Whole>::deserialize(d)?.map(narrow).transpose()
}

/// A list of integers.
pub fn integers<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<Vec<T>, D::Error> {
    Vec::<Whole>::deserialize(d)?.into_iter().map(narrow).collect()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "super::opt_integer")]
        n: Option<u32>,
        #[serde(default, deserialize_with = "super::integers")]
        list: Vec<u32>,
    }

    fn parse(json: &str) -> Result<Body, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn a_number_without_fraction_is_an_integer_and_others_are_refused() {
        let b = parse(r#"{"n": 1042.0, "list": [1, 2.0]}"#).expect("whole numbers");
        assert_eq!((b.n, b.list), (Some(1042), vec![1, 2]));
        assert_eq!(parse(r#"{"n": null}"#).expect("null").n, None);
        assert_eq!(parse("{}").expect("absent").n, None);
        for bad in [r#"{"n": 1.5}"#, r#"{"n": -1}"#, r#"{"n": 4294967296}"#, r#"{"n": 1e300}"#, r#"{"n": "1"}"#] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
