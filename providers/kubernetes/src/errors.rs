//! Classifying kube-rs errors into [`ProviderError`]s, without quoting anything the server sent
//! back beyond its status message (which never holds Secret data).

use kuvert_core::provider::ProviderError;

/// Maps an error of a call about `what` (e.g. `Secret remote/db`).
pub(crate) fn classify(what: &str, error: kube::Error) -> ProviderError {
    match error {
        kube::Error::Api(status) => match status.code {
            404 => ProviderError::NotFound {
                key: what.to_owned(),
            },
            401 => ProviderError::Unauthenticated {
                message: format!("{what}: the remote API server rejected the credentials"),
            },
            403 => ProviderError::Forbidden {
                message: format!("{what}: {}", status.message),
            },
            409 => ProviderError::Conflict {
                message: format!("{what}: {}", status.message),
            },
            code => ProviderError::Unavailable {
                message: format!(
                    "{what}: the remote API server answered {code}: {}",
                    status.message
                ),
                source: None,
            },
        },
        other => ProviderError::Unavailable {
            message: format!("{what}: the remote API server could not be reached"),
            source: Some(Box::new(other)),
        },
    }
}
