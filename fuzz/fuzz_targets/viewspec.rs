//! The viewspec parser must answer any input with a viewspec or a reason,
//! and a parsed viewspec's canonical form must parse back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use substrate::viewspec::{split_path, PathSplit, Viewspec};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let PathSplit::Routed { viewspec, .. } | PathSplit::NeedsSlash { viewspec } = split_path(s) {
        let _ = Viewspec::parse(viewspec);
    }
    if let Ok(v) = Viewspec::parse(s) {
        let canonical = v.canonical();
        let back = Viewspec::parse(&canonical).expect("a canonical viewspec parses");
        assert_eq!(back, v);
        assert_eq!(back.canonical(), canonical);
    }
});
