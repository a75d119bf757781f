//! Hand-written MessagePack for the frames the server builds piece by piece
//! (the shared-body `welcome`, `file_data` read straight from disk), where
//! serde would need the whole message at once. Each writer emits the
//! smallest form, as rmp-serde does, so the bytes match serde's encoding.

/// A str in its smallest form.
pub(crate) fn put_str(b: &mut Vec<u8>, s: &str) {
    let n = s.len();
    if n < 32 {
        b.push(0xa0 | n as u8);
    } else if n < 256 {
        b.extend_from_slice(&[0xd9, n as u8]);
    } else if n < 65_536 {
        b.push(0xda);
        b.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        b.push(0xdb);
        b.extend_from_slice(&(n as u32).to_be_bytes());
    }
    b.extend_from_slice(s.as_bytes());
}

/// A uint in its smallest form.
pub(crate) fn put_uint(b: &mut Vec<u8>, v: u64) {
    if v < 128 {
        b.push(v as u8);
    } else if v < 256 {
        b.extend_from_slice(&[0xcc, v as u8]);
    } else if v < 65_536 {
        b.push(0xcd);
        b.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v < 1 << 32 {
        b.push(0xce);
        b.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        b.push(0xcf);
        b.extend_from_slice(&v.to_be_bytes());
    }
}

/// An array header for `n` elements.
pub(crate) fn put_array_len(b: &mut Vec<u8>, n: usize) {
    if n < 16 {
        b.push(0x90 | n as u8);
    } else if n < 65_536 {
        b.push(0xdc);
        b.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        b.push(0xdd);
        b.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// A map header for `n` key-value pairs.
pub(crate) fn put_map_len(b: &mut Vec<u8>, n: usize) {
    if n < 16 {
        b.push(0x80 | n as u8);
    } else if n < 65_536 {
        b.push(0xde);
        b.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        b.push(0xdf);
        b.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// A uint always in its 8-byte form (`0xcf`), for fields patched or sized
/// before their value is known (`file_data` offsets).
#[cfg(any(feature = "server", test))]
pub(crate) fn put_u64_fixed(b: &mut Vec<u8>, v: u64) {
    b.push(0xcf);
    b.extend_from_slice(&v.to_be_bytes());
}
