//! Turning rendered output into bytes, so binary values survive a template.
//!
//! minijinja renders text. A bytes value printed with `{{ }}` is written by [`formatter`] as one
//! marker character per byte, taken from the end of Unicode's private use plane
//! (U+10FF00..=U+10FFFF); [`decode`] turns each marker back into its byte after rendering. A string
//! that itself contains such a character is written as markers of its UTF-8 bytes, so it decodes to
//! itself; only template *source* text cannot contain them ([`check_source`]).

use std::io;

use minijinja::value::{Value, ValueKind};
use minijinja::{Error, Output, State};

use super::TemplateError;

const MARKER_BASE: u32 = 0x10_FF00;

fn is_marker(c: char) -> bool {
    (c as u32) >= MARKER_BASE
}

fn marker(byte: u8) -> char {
    // MARKER_BASE + 0..=255 is always a valid scalar value (plane 16).
    char::from_u32(MARKER_BASE + u32::from(byte)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Each output byte is at most 4 raw bytes while rendering (a marker is 4 UTF-8 bytes).
pub(super) fn raw_limit(limit: usize) -> usize {
    limit.saturating_mul(4)
}

/// Refuses template source containing marker characters (they would decode to raw bytes).
pub(super) fn check_source(source: &str) -> Result<(), TemplateError> {
    if let Some(offset) = source.find(is_marker) {
        let line = source[..offset].matches('\n').count() + 1;
        return Err(TemplateError::Syntax {
            line,
            detail: "the template contains a reserved character (U+10FF00..U+10FFFF)".to_string(),
        });
    }
    Ok(())
}

/// Writes a printed value: bytes as markers, strings as themselves, anything else as minijinja
/// prints it (undefined values fail there, as strict mode wants).
pub(super) fn formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Bytes => {
            let bytes = value.as_bytes().unwrap_or_default();
            write_markers(out, bytes)
        }
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default();
            if text.contains(is_marker) {
                write_markers(out, text.as_bytes())
            } else {
                out.write_str(text).map_err(Error::from)
            }
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

fn write_markers(out: &mut Output, bytes: &[u8]) -> Result<(), Error> {
    let mut buf = String::with_capacity(bytes.len() * 4);
    buf.extend(bytes.iter().map(|b| marker(*b)));
    out.write_str(&buf).map_err(Error::from)
}

/// The rendered text with markers turned back into bytes.
pub(super) fn decode(raw: &[u8]) -> Vec<u8> {
    // The sink only ever receives what minijinja wrote, which is UTF-8.
    let text = String::from_utf8_lossy(raw);
    if !text.contains(is_marker) {
        return raw.to_vec();
    }
    let mut bytes = Vec::with_capacity(text.len());
    let mut utf8 = [0u8; 4];
    for c in text.chars() {
        if is_marker(c) {
            // Markers are MARKER_BASE + one byte.
            bytes.push((c as u32 - MARKER_BASE) as u8);
        } else {
            bytes.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
    bytes
}

/// A writer that stops accepting bytes past its limit, so a runaway template fails early instead
/// of filling memory.
pub(super) struct BoundedSink {
    buf: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl BoundedSink {
    pub(super) fn new(limit: usize) -> Self {
        BoundedSink {
            buf: Vec::new(),
            limit,
            overflowed: false,
        }
    }

    pub(super) fn overflowed(&self) -> bool {
        self.overflowed
    }

    pub(super) fn into_inner(self) -> Vec<u8> {
        self.buf
    }
}

impl io::Write for BoundedSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.overflowed = true;
            return Err(io::Error::other("template output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
