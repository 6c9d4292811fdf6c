//! Store record decoding must turn any bytes into a value or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use substrate::store::{codec, AliasRecord, CheckpointRecord, InstanceRecord, SpaceRecord};

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<InstanceRecord>(data);
    let _ = codec::decode::<SpaceRecord>(data);
    let _ = codec::decode::<CheckpointRecord>(data);
    let _ = codec::decode::<AliasRecord>(data);
});
