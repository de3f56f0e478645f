//! From a `VaultDynamicSecret` spec to the request it makes, checked without I/O.

use std::time::Duration;

use kuvert_core::api::{VaultDynamicSecretMethod, VaultDynamicSecretSpec};
use kuvert_core::engine::status::parse_go_duration;
use kuvert_core::provider::ProviderError;
use kuvert_provider_vault::connection::Method;
use serde_json::Value;

/// Default wait between retries (`retrySettings.retryInterval`), as for stores.
const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::InvalidSpec {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The call a generator makes, ready to send.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Request {
    pub method: Method,
    /// After `/v1/`, without surrounding slashes.
    pub path: String,
    /// Query parameters (`GET`: the `parameters`).
    pub query: Vec<(String, String)>,
    /// JSON body (`POST`/`PUT`: the `parameters`, `{}` when none).
    pub body: Option<Value>,
    /// Retries of a transient failure.
    pub retries: u32,
    pub retry_interval: Duration,
}

impl Request {
    /// `METHOD path`, as messages name the call.
    pub fn what(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Checks the spec and builds its request.
pub(crate) fn build(spec: &VaultDynamicSecretSpec) -> Result<Request, ProviderError> {
    let path = spec.path.trim().trim_matches('/');
    let path = path.strip_prefix("v1/").unwrap_or(path);
    if path.is_empty() {
        return Err(invalid(
            "spec.path",
            "is required (e.g. database/creds/app)",
        ));
    }
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
        || path.contains(['?', '#'])
    {
        return Err(invalid(
            "spec.path",
            format!("{path:?} is not a Vault path (empty, '.' or '..' segments, '?' or '#')"),
        ));
    }
    let params = match &spec.parameters {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => {
            return Err(invalid(
                "spec.parameters",
                "must be a map of parameter names to values",
            ));
        }
    };
    let method = spec.method.unwrap_or_default();
    let (query, body) = match method {
        VaultDynamicSecretMethod::Get => {
            let mut query = Vec::new();
            for (name, value) in params.into_iter().flatten() {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(_) | Value::Bool(_) => value.to_string(),
                    _ => {
                        return Err(invalid(
                            &format!("spec.parameters.{name}"),
                            "a GET request sends parameters in the query: only strings, numbers \
                             and booleans fit (use method POST for structured parameters)",
                        ));
                    }
                };
                query.push((name.clone(), text));
            }
            (query, None)
        }
        VaultDynamicSecretMethod::Post | VaultDynamicSecretMethod::Put => (
            Vec::new(),
            Some(Value::Object(params.cloned().unwrap_or_default())),
        ),
    };
    let (retries, retry_interval) = match &spec.retry_settings {
        None => (0, DEFAULT_RETRY_INTERVAL),
        Some(r) => {
            let retries = u32::try_from(r.max_retries.unwrap_or(0))
                .map_err(|_| invalid("spec.retrySettings.maxRetries", "must not be negative"))?;
            let interval = match &r.retry_interval {
                None => DEFAULT_RETRY_INTERVAL,
                Some(text) => parse_go_duration(text).ok_or_else(|| {
                    invalid(
                        "spec.retrySettings.retryInterval",
                        format!("{text:?} is not a duration such as 1s or 500ms"),
                    )
                })?,
            };
            (retries, interval)
        }
    };
    Ok(Request {
        method: match method {
            VaultDynamicSecretMethod::Get => Method::GET,
            VaultDynamicSecretMethod::Post => Method::POST,
            VaultDynamicSecretMethod::Put => Method::PUT,
        },
        path: path.to_owned(),
        query,
        body,
        retries,
        retry_interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuvert_core::api::RetrySettings;
    use serde_json::json;

    fn spec(path: &str) -> VaultDynamicSecretSpec {
        serde_json::from_value(json!({
            "path": path,
            "provider": {
                "server": "http://127.0.0.1:8200",
                "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}
            }
        }))
        .unwrap()
    }

    fn field_of(e: ProviderError) -> (String, String) {
        match e {
            ProviderError::InvalidSpec { field, message } => (field, message),
            other => panic!("not InvalidSpec: {other}"),
        }
    }

    #[test]
    fn a_get_without_parameters_reads_the_trimmed_path() {
        let r = build(&spec("/v1/database/creds/app/")).unwrap();
        assert_eq!(r.what(), "GET database/creds/app");
        assert_eq!(r.query, vec![]);
        assert_eq!(r.body, None);
        assert_eq!((r.retries, r.retry_interval), (0, Duration::from_secs(1)));
    }

    #[test]
    fn post_parameters_become_the_body_and_get_parameters_the_query() {
        let mut s = spec("pki/issue/web");
        s.method = Some(VaultDynamicSecretMethod::Post);
        s.parameters =
            Some(json!({"common_name": "a.example.com", "ttl": "1h", "alt_names": ["x"]}));
        let r = build(&s).unwrap();
        assert_eq!(r.what(), "POST pki/issue/web");
        assert_eq!(r.body, s.parameters);

        s.method = Some(VaultDynamicSecretMethod::Put);
        s.parameters = None;
        assert_eq!(build(&s).unwrap().body, Some(json!({})));

        s.method = None;
        s.parameters = Some(json!({"role": "app", "ttl": 60, "exact": true}));
        let r = build(&s).unwrap();
        assert_eq!(
            r.query,
            vec![
                ("exact".to_owned(), "true".to_owned()),
                ("role".to_owned(), "app".to_owned()),
                ("ttl".to_owned(), "60".to_owned())
            ]
        );
    }

    #[test]
    fn bad_paths_parameters_and_retry_settings_name_their_field() {
        for path in ["", "/", "database//creds", "database/../sys/raw", "a?b=c"] {
            assert_eq!(
                field_of(build(&spec(path)).unwrap_err()).0,
                "spec.path",
                "{path:?}"
            );
        }
        let mut s = spec("database/creds/app");
        s.parameters = Some(json!(["not", "a", "map"]));
        assert_eq!(field_of(build(&s).unwrap_err()).0, "spec.parameters");
        s.parameters = Some(json!({"names": ["a"]}));
        assert_eq!(field_of(build(&s).unwrap_err()).0, "spec.parameters.names");

        let mut s = spec("database/creds/app");
        s.retry_settings = Some(RetrySettings {
            max_retries: Some(-1),
            retry_interval: None,
        });
        assert_eq!(
            field_of(build(&s).unwrap_err()),
            (
                "spec.retrySettings.maxRetries".to_owned(),
                "must not be negative".to_owned()
            )
        );
        s.retry_settings = Some(RetrySettings {
            max_retries: Some(2),
            retry_interval: Some("soon".to_owned()),
        });
        assert_eq!(
            field_of(build(&s).unwrap_err()).0,
            "spec.retrySettings.retryInterval"
        );
        s.retry_settings = Some(RetrySettings {
            max_retries: Some(2),
            retry_interval: Some("250ms".to_owned()),
        });
        let r = build(&s).unwrap();
        assert_eq!(
            (r.retries, r.retry_interval),
            (2, Duration::from_millis(250))
        );
    }
}
