//! Arbitrary bytes through the CUE lexer, parser, evaluator and exporter:
//! errors are fine, panics, hangs and stack overflows are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let _ = substrate::defs::eval_sources(&[("fuzz.cue".to_string(), src.to_string())]);
    let _ = substrate::defs::eval_str_lenient(src);
});
