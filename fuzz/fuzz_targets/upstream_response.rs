#![no_main]
//! What a target answers the proxy is input it did not write: the
//! response-head parser and the chunked decoder must never panic, a head
//! never claims more bytes than it was given, and a chunked body decodes
//! to the same bytes and trailers however its bytes arrive.
use bytes::BytesMut;
use deployment_manager::deploy::proxy::http1_wire::{ChunkedDecoder, Decoded, parse_response_head};
use libfuzzer_sys::fuzz_target;

/// Decodes `wire` fed `step` bytes at a time; what came out, and whether
/// it ended (`None`: an error).
fn decode(wire: &[u8], step: usize) -> Option<(Vec<u8>, Vec<String>, bool)> {
    let mut d = ChunkedDecoder::default();
    let mut buf = BytesMut::new();
    let (mut body, mut trailers, mut fed) = (Vec::new(), Vec::new(), 0);
    loop {
        match d.next(&mut buf) {
            Err(_) => return None,
            Ok(Some(Decoded::Data(b))) => body.extend_from_slice(&b),
            Ok(Some(Decoded::Trailers(t))) => {
                trailers.extend(t.iter().map(|(k, v)| format!("{k}: {v:?}")))
            }
            Ok(Some(Decoded::End)) => return Some((body, trailers, true)),
            Ok(None) if fed == wire.len() => return Some((body, trailers, false)),
            Ok(None) => {
                let n = step.min(wire.len() - fed);
                buf.extend_from_slice(&wire[fed..fed + n]);
                fed += n;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, wire)) = data.split_first() else {
        return;
    };
    if let Ok(Some((_, used))) = parse_response_head(wire, first & 1 == 1) {
        assert!(used <= wire.len());
    }
    let whole = decode(wire, wire.len().max(1));
    let split = decode(wire, usize::from(first % 16) + 1);
    // A body that decodes whole decodes the same in pieces; one that
    // fails whole may fail sooner or wait for more in pieces.
    if let Some(whole @ (_, _, true)) = whole {
        assert_eq!(split, Some(whole));
    }
});
