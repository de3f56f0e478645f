//! PEM filters: `filter_pem`.

use minijinja::{Error, Value};

use super::{filter_error, input_text};

/// Parses every PEM block of `text`. Text outside blocks is allowed (as in bundles with comments),
/// a block that does not decode is an error.
pub(super) fn parse_blocks(filter: &'static str, text: &str) -> Result<Vec<::pem::Pem>, Error> {
    ::pem::parse_many(text).map_err(|err| filter_error(filter, pem_reason(&err)))
}

fn pem_reason(err: &::pem::PemError) -> &'static str {
    match err {
        ::pem::PemError::MismatchedTags(..) => "invalid PEM: BEGIN and END labels differ",
        ::pem::PemError::MalformedFraming => "invalid PEM: malformed BEGIN/END lines",
        ::pem::PemError::MissingBeginTag => "invalid PEM: missing BEGIN line",
        ::pem::PemError::MissingEndTag => "invalid PEM: missing END line",
        ::pem::PemError::MissingData => "invalid PEM: a block has no data",
        ::pem::PemError::InvalidData(_) => "invalid PEM: a block's base64 does not decode",
        ::pem::PemError::NotUtf8(_) => "invalid PEM: not UTF-8 text",
        _ => "invalid PEM",
    }
}

/// Encodes blocks as PEM text: LF line endings, 64-character lines, each block ending in a newline.
pub(super) fn encode_blocks<'a>(blocks: impl IntoIterator<Item = &'a ::pem::Pem>) -> String {
    let config = ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF);
    blocks
        .into_iter()
        .map(|block| ::pem::encode_config(block, config))
        .collect()
}

/// Keeps the PEM blocks whose label is `kind` (case-insensitive), e.g. `CERTIFICATE`. No match
/// renders as an empty string (as ESO's `filterPEM`).
pub(super) fn filter_pem(value: Value, kind: String) -> Result<Value, Error> {
    let text = input_text("filter_pem", &value)?;
    let blocks = parse_blocks("filter_pem", &text)?;
    let kept = blocks
        .iter()
        .filter(|block| block.tag().eq_ignore_ascii_case(kind.trim()));
    Ok(Value::from(encode_blocks(kept)))
}
