//! The one place records become bytes and back.
//!
//! Every value is one format-version byte followed by its bincode 2 (serde)
//! encoding. The version byte lets a later release recognise values written
//! in an older layout instead of misreading them.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The format byte written in front of every value.
pub const FORMAT_VERSION: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty value")]
    Empty,
    #[error("unknown value format {0} (this build reads format {FORMAT_VERSION})")]
    UnknownFormat(u8),
    #[error("undecodable value: {0}")]
    Decode(String),
    #[error("{0} trailing bytes after the value")]
    Trailing(usize),
    #[error("cannot encode value: {0}")]
    Encode(String),
}

/// No record comes near this; a corrupt length prefix must not make the
/// decoder try to allocate gigabytes (found by fuzzing `record_decode`).
const MAX_RECORD_BYTES: usize = 1 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![FORMAT_VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, config()).map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnknownFormat(version));
    }
    let (value, used) =
        bincode::serde::decode_from_slice(body, config()).map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != body.len() {
        return Err(CodecError::Trailing(body.len() - used));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CheckpointId, SpaceId};
    use crate::store::records::*;
    use proptest::prelude::*;

    fn space_id() -> impl Strategy<Value = SpaceId> {
        any::<u128>().prop_map(|n| format!("sp-{}", ulid::Ulid(n >> 2)).parse().unwrap())
    }
    fn ckpt_id() -> impl Strategy<Value = CheckpointId> {
        any::<u128>().prop_map(|n| format!("ckpt-{}", ulid::Ulid(n >> 2)).parse().unwrap())
    }
    fn state() -> impl Strategy<Value = InstanceState> {
        prop_oneof![
            Just(InstanceState::Starting),
            Just(InstanceState::Ready),
            Just(InstanceState::Stopping),
            Just(InstanceState::Paused)
        ]
    }

    prop_compose! {
        fn instance()(service in ".*", container_id in proptest::option::of("[0-9a-f]{64}"),
                      container_name in ".*", address in proptest::option::of(".*"), port in any::<u16>(),
                      state in state(), definition_digest in ".*", created_at in any::<u64>(),
                      last_request_at in any::<u64>()) -> InstanceRecord {
            InstanceRecord { service, container_id, container_name, address, port, state,
                             definition_digest, created_at, last_request_at }
        }
    }
    prop_compose! {
        fn space()(id in space_id(), created_at in any::<u64>(),
                   forked_from in proptest::option::of((proptest::option::of(space_id()), proptest::option::of(ckpt_id()))),
                   name in proptest::option::of(".*"), size_hint in any::<u64>(), api in any::<bool>(),
                   deleted in any::<bool>()) -> SpaceRecord {
            SpaceRecord { id, created_at, forked_from: forked_from.map(|(space, checkpoint)| ForkedFrom { space, checkpoint }),
                          name, size_hint, origin: if api { SpaceOrigin::Api } else { SpaceOrigin::Redirect }, deleted }
        }
    }
    prop_compose! {
        fn checkpoint()(id in ckpt_id(), space in space_id(), parent in proptest::option::of(ckpt_id()),
                        message in proptest::option::of(".*"), created_at in any::<u64>(), reflink in any::<bool>()) -> CheckpointRecord {
            CheckpointRecord { id, space, parent, message, created_at,
                               method: if reflink { CopyMethod::Reflink } else { CopyMethod::Copy } }
        }
    }

    fn round_trips<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
        let bytes = encode(v).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        let back: T = decode(&bytes).unwrap();
        assert_eq!(&back, v);
    }

    proptest! {
        #[test]
        fn instance_round_trips(v in instance()) { round_trips(&v) }
        #[test]
        fn space_round_trips(v in space()) { round_trips(&v) }
        #[test]
        fn checkpoint_round_trips(v in checkpoint()) { round_trips(&v) }
        #[test]
        fn alias_round_trips(space in space_id(), first_used_at in any::<u64>()) {
            round_trips(&AliasRecord { space, first_used_at })
        }
        #[test]
        fn meta_round_trips(schema_version in any::<u32>(), namespace in ".*", created_at in any::<u64>()) {
            round_trips(&MetaRecord { schema_version, namespace, created_at })
        }
        /// Random bytes decode to an error or a value, never a panic.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode::<SpaceRecord>(&bytes);
            let _ = decode::<InstanceRecord>(&bytes);
        }
    }

    #[test]
    fn huge_length_prefix_is_an_error_not_an_allocation() {
        // From fuzzing: a string length of ~2^62 right after the format byte.
        let bytes = [1, 0xfd, 0xff, 0xff, 0x01, 0xfd, 0xff, 0xff, 0xff, 0xff, 0x5b];
        assert!(decode::<SpaceRecord>(&bytes).is_err());
        assert!(decode::<InstanceRecord>(&bytes).is_err());
        let mut big = vec![1u8, 0xfc];
        big.extend_from_slice(&(u32::MAX).to_le_bytes());
        assert!(decode::<InstanceRecord>(&big).is_err());
    }

    #[test]
    fn wrong_format_byte_is_reported() {
        let mut bytes = encode(&AliasRecord {
            space: SpaceId::generate(),
            first_used_at: 1,
        })
        .unwrap();
        bytes[0] = 9;
        assert!(matches!(
            decode::<AliasRecord>(&bytes),
            Err(CodecError::UnknownFormat(9))
        ));
        assert!(matches!(decode::<AliasRecord>(&[]), Err(CodecError::Empty)));
    }
}
