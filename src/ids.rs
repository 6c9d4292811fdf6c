//! Identifiers of the objects Substrate owns: spaces (`sp-<ULID>`) and
//! checkpoints (`ckpt-<ULID>`).
//!
//! An id is validated strictly when it is parsed — `sp-` or `ckpt-` followed
//! by exactly 26 Crockford base32 characters in upper case — so a value that
//! reaches the filesystem can never be a path (`sp-../../etc`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {shown:?}: expected {prefix} followed by 26 Crockford base32 characters")]
pub struct IdError {
    kind: &'static str,
    prefix: &'static str,
    /// The offending input, cut short so an error line stays readable.
    shown: String,
}

/// Checks `s` is `prefix` + a 26-character upper-case Crockford ULID.
fn validate(s: &str, prefix: &'static str, kind: &'static str) -> Result<(), IdError> {
    let ok = s.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 26 && ulid::Ulid::from_string(rest).is_ok() && rest.bytes().all(is_crockford)
    });
    if ok {
        Ok(())
    } else {
        Err(IdError {
            kind,
            prefix,
            shown: s.chars().take(64).collect(),
        })
    }
}

fn is_crockford(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'A'..=b'H' | b'J' | b'K' | b'M' | b'N' | b'P'..=b'T' | b'V'..=b'Z')
}

macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id; ULIDs sort by creation time.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, ulid::Ulid::new()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                validate(s, $prefix, $kind)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                validate(&s, $prefix, $kind)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

ulid_id!(
    /// A space: a directory tree owned by Substrate.
    SpaceId, "sp-", "space"
);
ulid_id!(
    /// An immutable checkpoint of a space.
    CheckpointId, "ckpt-", "checkpoint"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = SpaceId::generate();
        assert_eq!(id.as_str().parse::<SpaceId>(), Ok(id.clone()));
        let ck = CheckpointId::generate();
        assert_eq!(ck.as_str().parse::<CheckpointId>(), Ok(ck.clone()));
    }

    #[test]
    fn traversal_and_malformed_ids_are_rejected() {
        for bad in [
            "sp-../../etc",
            "sp-",
            "sp-01J0000000000000000000000",
            "sp-01j00000000000000000000000",
            "sp-01J000000000000000000000000",
            "/etc/passwd",
            "sp-01J0000000000000000000000U",
            "ckpt-01J00000000000000000000000",
            "sp-%2e%2e",
        ] {
            assert!(bad.parse::<SpaceId>().is_err(), "{bad} accepted");
        }
        assert!("sp-01J00000000000000000000000".parse::<SpaceId>().is_ok());
        assert!("sp-01J00000000000000000000000".parse::<CheckpointId>().is_err());
    }
}
