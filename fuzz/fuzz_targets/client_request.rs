#![no_main]
//! What clients send the proxy is input it did not write: the request-head
//! parser must never panic, take only the bytes of the head it returns,
//! and read the same head whether it arrived whole or in two pieces.
use bytes::BytesMut;
use deployment_manager::deploy::proxy::client_wire::parse_request_head;
use libfuzzer_sys::fuzz_target;

/// What a parse found, with the bytes it took, in a form that compares.
fn summary(buf: &mut BytesMut) -> Option<Option<(String, usize)>> {
    let before = buf.len();
    match parse_request_head(buf) {
        Err(_) => None,
        Ok(None) => Some(None),
        Ok(Some(h)) => Some(Some((
            format!(
                "{} {} {:?} {:?} {:?} ka={} up={} exp={}",
                h.parts.method,
                h.parts.uri,
                h.parts.version,
                h.parts.headers,
                h.framing,
                h.keep_alive,
                h.upgrade,
                h.expect_continue,
            ),
            before - buf.len(),
        ))),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, wire)) = data.split_first() else {
        return;
    };
    let got = summary(&mut BytesMut::from(wire));
    if let Some(Some((_, used))) = &got {
        assert!(*used > 0 && *used <= wire.len());
    }
    // The first piece alone, then the rest appended to what it left.
    let split = usize::from(first) % (wire.len() + 1);
    let mut pieces = BytesMut::from(&wire[..split]);
    let head = match summary(&mut pieces) {
        // An error may come sooner with more bytes (a limit), so only a
        // head is compared.
        None => return,
        Some(Some(early)) => Some(early),
        Some(None) => {
            pieces.extend_from_slice(&wire[split..]);
            match summary(&mut pieces) {
                Some(Some(later)) => Some(later),
                _ => None,
            }
        }
    };
    if let (Some(Some(whole)), Some(head)) = (&got, &head) {
        assert_eq!(whole, head);
    }
});
