//! Classifying Vault's answers into [`ProviderError`]s.
//!
//! Messages name the request (method and path) and quote Vault's own `errors` strings, which
//! describe what failed and never carry secret data; they are shortened and scrubbed of every
//! credential the connection knows (its token and login material) as a second line of defence.
//! Response bodies of failed requests are never quoted otherwise.

use kuvert_core::provider::ProviderError;
use reqwest::StatusCode;

/// The longest a quoted Vault error message may be.
const MAX_MESSAGE: usize = 240;

/// Replaces every occurrence of each of `secrets` in `text` with `<redacted>`.
pub(crate) fn scrub(text: &str, secrets: &[&[u8]]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        if secret.len() < 4 {
            continue;
        }
        if let Ok(s) = std::str::from_utf8(secret)
            && out.contains(s)
        {
            out = out.replace(s, "<redacted>");
        }
    }
    out
}

/// Vault's `errors` strings of a failed answer, joined and shortened.
pub(crate) fn vault_errors(body: &[u8]) -> String {
    let parsed: Option<Vec<String>> = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errors").cloned())
        .and_then(|e| serde_json::from_value(e).ok());
    let mut text = match parsed {
        Some(errors) if !errors.is_empty() => errors.join("; "),
        _ => String::new(),
    };
    if text.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Maps a non-2xx answer to `what` (e.g. `GET secret/data/app`) into an error.
pub(crate) fn classify(what: &str, status: StatusCode, errors: &str) -> ProviderError {
    let detail = if errors.is_empty() {
        String::new()
    } else {
        format!(": {errors}")
    };
    match status.as_u16() {
        404 => ProviderError::NotFound {
            key: format!("vault path {what}"),
        },
        401 => ProviderError::Unauthenticated {
            message: format!("{what}: vault rejected the credentials{detail}"),
        },
        403 => ProviderError::Forbidden {
            message: format!("{what}{detail}"),
        },
        400 if errors.contains("check-and-set") => ProviderError::Conflict {
            message: format!("{what}{detail}"),
        },
        400 | 405 => ProviderError::InvalidSpec {
            field: what.to_owned(),
            message: format!("vault refused the request ({status}){detail}"),
        },
        code => ProviderError::Unavailable {
            message: format!("{what}: vault answered {code}{detail}"),
            source: None,
        },
    }
}

/// A login that Vault refused: any client error is bad credentials or a wrong role.
pub(crate) fn login_failed(what: &str, status: StatusCode, errors: &str) -> ProviderError {
    if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
        ProviderError::Unauthenticated {
            message: format!("{what}: vault refused the login ({status}): {errors}"),
        }
    } else {
        classify(what, status, errors)
    }
}

/// A request that did not get an answer.
pub(crate) fn unreachable(what: &str, error: reqwest::Error) -> ProviderError {
    let cause = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_decode() || error.is_body() {
        "could not read the answer"
    } else {
        "failed"
    };
    ProviderError::Unavailable {
        message: format!("{what}: the request to vault {cause}"),
        // The URL names the server and path only; credentials travel in headers.
        source: Some(Box::new(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_replaces_every_known_secret() {
        let text = "token hvs.abcdef was refused, hvs.abcdef again";
        assert_eq!(
            scrub(text, &[b"hvs.abcdef"]),
            "token <redacted> was refused, <redacted> again"
        );
    }

    #[test]
    fn vault_errors_are_joined_and_shortened() {
        let body = serde_json::json!({ "errors": ["one", "x".repeat(500)] }).to_string();
        let text = vault_errors(body.as_bytes());
        assert!(text.starts_with("one; xxx"));
        assert!(text.len() <= MAX_MESSAGE + '…'.len_utf8());
    }

    #[test]
    fn status_codes_map_to_categories() {
        let c = |code: u16, errors: &str| {
            classify(
                "GET secret/data/app",
                StatusCode::from_u16(code).unwrap(),
                errors,
            )
            .reason()
        };
        assert_eq!(c(404, ""), "NotFound");
        assert_eq!(c(403, "permission denied"), "Forbidden");
        assert_eq!(c(401, ""), "Unauthenticated");
        assert_eq!(
            c(
                400,
                "check-and-set parameter did not match the current version"
            ),
            "Conflict"
        );
        assert_eq!(c(400, "invalid version"), "InvalidSpec");
        assert_eq!(c(503, "Vault is sealed"), "Unavailable");
        assert_eq!(c(429, ""), "Unavailable");
    }
}
