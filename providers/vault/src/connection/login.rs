//! How a connection gets its token: a static token, or a login request to an auth method.

use kuvert_core::secret::SecretBytes;
use serde_json::{Value, json};

/// Resolved credentials of one auth method, ready to log in with.
#[derive(Clone)]
pub enum Login {
    /// A static token; never renewed, never revoked (it belongs to whoever created it).
    Token(SecretBytes),
    /// `POST auth/{mount}/login` with `role_id` and `secret_id`.
    AppRole {
        /// Mount path of the method.
        mount: String,
        /// The role ID.
        role_id: String,
        /// The secret ID.
        secret_id: SecretBytes,
    },
    /// `POST auth/{mount}/login` with `role` and a ServiceAccount token as `jwt`.
    Kubernetes {
        /// Mount path of the method.
        mount: String,
        /// Vault role.
        role: String,
        /// The ServiceAccount token.
        jwt: SecretBytes,
    },
    /// `POST auth/{mount}/login` with `role` and `jwt`.
    Jwt {
        /// Mount path of the method.
        mount: String,
        /// Vault role; `None` uses the method's default role.
        role: Option<String>,
        /// The JWT.
        jwt: SecretBytes,
    },
    /// `POST auth/{mount}/login/{username}` with `password`.
    UserPass {
        /// Mount path of the method.
        mount: String,
        /// User name.
        username: String,
        /// Password.
        password: SecretBytes,
    },
    /// `POST auth/{mount}/login/{username}` with `password` (LDAP method).
    Ldap {
        /// Mount path of the method.
        mount: String,
        /// User name.
        username: String,
        /// Password.
        password: SecretBytes,
    },
    /// `POST auth/{mount}/login` (optionally naming a certificate role); the credential is the
    /// TLS client certificate of the connection.
    Cert {
        /// Mount path of the method.
        mount: String,
        /// Certificate role name.
        name: Option<String>,
    },
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login({})", self.method())
    }
}

/// A login request: path (after `/v1/`) and JSON body. The body holds credentials.
pub struct LoginRequest {
    /// e.g. `auth/approle/login`.
    pub path: String,
    /// The request body.
    pub body: Value,
}

fn text(bytes: &SecretBytes) -> Value {
    Value::String(String::from_utf8_lossy(bytes.expose()).into_owned())
}

impl Login {
    /// The auth method's name, for messages and metrics.
    pub fn method(&self) -> &'static str {
        match self {
            Login::Token(_) => "token",
            Login::AppRole { .. } => "appRole",
            Login::Kubernetes { .. } => "kubernetes",
            Login::Jwt { .. } => "jwt",
            Login::UserPass { .. } => "userPass",
            Login::Ldap { .. } => "ldap",
            Login::Cert { .. } => "cert",
        }
    }

    /// Whether tokens come from a login (and so may be renewed, re-obtained and revoked).
    pub fn logs_in(&self) -> bool {
        !matches!(self, Login::Token(_))
    }

    /// The login request; `None` for a static token.
    pub fn request(&self) -> Option<LoginRequest> {
        let (path, body) = match self {
            Login::Token(_) => return None,
            Login::AppRole {
                mount,
                role_id,
                secret_id,
            } => (
                format!("auth/{mount}/login"),
                json!({ "role_id": role_id, "secret_id": text(secret_id) }),
            ),
            Login::Kubernetes { mount, role, jwt } => (
                format!("auth/{mount}/login"),
                json!({ "role": role, "jwt": text(jwt) }),
            ),
            Login::Jwt { mount, role, jwt } => {
                let mut body = json!({ "jwt": text(jwt) });
                if let Some(role) = role {
                    body["role"] = json!(role);
                }
                (format!("auth/{mount}/login"), body)
            }
            Login::UserPass {
                mount,
                username,
                password,
            }
            | Login::Ldap {
                mount,
                username,
                password,
            } => (
                format!("auth/{mount}/login/{username}"),
                json!({ "password": text(password) }),
            ),
            Login::Cert { mount, name } => {
                let body = match name {
                    Some(name) => json!({ "name": name }),
                    None => json!({}),
                };
                (format!("auth/{mount}/login"), body)
            }
        };
        Some(LoginRequest { path, body })
    }

    /// The secret material of these credentials, scrubbed from any message.
    pub(crate) fn secrets(&self) -> Vec<&[u8]> {
        match self {
            Login::Token(t) => vec![t.expose()],
            Login::AppRole { secret_id, .. } => vec![secret_id.expose()],
            Login::Kubernetes { jwt, .. } | Login::Jwt { jwt, .. } => vec![jwt.expose()],
            Login::UserPass { password, .. } | Login::Ldap { password, .. } => {
                vec![password.expose()]
            }
            Login::Cert { .. } => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_logs_in_where_vault_expects() {
        let cases = [
            (
                Login::AppRole {
                    mount: "approle".into(),
                    role_id: "r-1".into(),
                    secret_id: "s-1".into(),
                },
                "auth/approle/login",
                json!({"role_id": "r-1", "secret_id": "s-1"}),
            ),
            (
                Login::Kubernetes {
                    mount: "k8s".into(),
                    role: "app".into(),
                    jwt: "ey.j.w".into(),
                },
                "auth/k8s/login",
                json!({"role": "app", "jwt": "ey.j.w"}),
            ),
            (
                Login::Jwt {
                    mount: "jwt".into(),
                    role: None,
                    jwt: "ey.j.w".into(),
                },
                "auth/jwt/login",
                json!({"jwt": "ey.j.w"}),
            ),
            (
                Login::UserPass {
                    mount: "userpass".into(),
                    username: "ann".into(),
                    password: "pw".into(),
                },
                "auth/userpass/login/ann",
                json!({"password": "pw"}),
            ),
            (
                Login::Ldap {
                    mount: "corp-ldap".into(),
                    username: "ann".into(),
                    password: "pw".into(),
                },
                "auth/corp-ldap/login/ann",
                json!({"password": "pw"}),
            ),
            (
                Login::Cert {
                    mount: "cert".into(),
                    name: Some("web".into()),
                },
                "auth/cert/login",
                json!({"name": "web"}),
            ),
        ];
        for (login, path, body) in cases {
            let req = login.request().expect("a login request");
            assert_eq!(req.path, path, "{}", login.method());
            assert_eq!(req.body, body, "{}", login.method());
        }
        assert!(Login::Token("t".into()).request().is_none());
    }

    #[test]
    fn debug_names_only_the_method() {
        let login = Login::UserPass {
            mount: "userpass".into(),
            username: "ann".into(),
            password: "hunter2-password".into(),
        };
        assert_eq!(format!("{login:?}"), "Login(userPass)");
    }
}
