//! Seeding OpenBao's dynamic secrets engines (database against a [`Postgres`]) and reading
//! leases back, for the VaultDynamicSecret tests.

use serde_json::{Value, json};

use crate::{OpenBao, Postgres};

impl OpenBao {
    /// Mounts the database engine at `database`, connected to `pg` as its superuser, with a role
    /// `role` whose credentials last `default_ttl` (at most `max_ttl`). The role's creation
    /// statement makes a login role valid until the lease's expiry.
    pub async fn database_engine(
        &self,
        pg: &Postgres,
        role: &str,
        default_ttl: &str,
        max_ttl: &str,
    ) {
        self.mount("database", "database", json!({})).await;
        self.write(
            "database/config/pg",
            json!({
                "plugin_name": "postgresql-database-plugin",
                "connection_url": pg.vault_connection_url(),
                "username": pg.superuser(),
                "password": pg.superuser_password(),
                "allowed_roles": [role],
                "verify_connection": true
            }),
        )
        .await;
        self.write(
            &format!("database/roles/{role}"),
            json!({
                "db_name": "pg",
                "creation_statements": [
                    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
                ],
                "default_ttl": default_ttl,
                "max_ttl": max_ttl
            }),
        )
        .await;
    }

    /// Mounts the PKI engine at `pki` with a root CA and a role `role` for `domain` and its
    /// subdomains (and IP SANs), EC keys; returns the root certificate (PEM).
    pub async fn pki_engine(&self, role: &str, domain: &str) -> String {
        self.mount("pki", "pki", json!({})).await;
        self.write("sys/mounts/pki/tune", json!({"max_lease_ttl": "87600h"}))
            .await;
        let root = self
            .write(
                "pki/root/generate/internal",
                json!({"common_name": "kuvert test root", "ttl": "8760h", "key_type": "ec"}),
            )
            .await;
        self.write(
            &format!("pki/roles/{role}"),
            json!({
                "allowed_domains": [domain],
                "allow_subdomains": true,
                "allow_ip_sans": true,
                "key_type": "ec",
                "max_ttl": "72h"
            }),
        )
        .await;
        root["data"]["certificate"]
            .as_str()
            .expect("root certificate")
            .to_owned()
    }

    /// Creates the AppRole role `name` with `options` (`token_policies`, `token_ttl`, ...),
    /// enabling the AppRole method at `approle` first if needed; returns its role ID and a new
    /// secret ID.
    pub async fn approle(&self, name: &str, options: Value) -> (String, String) {
        if self.read("sys/auth").await["data"]["approle/"].is_null() {
            self.enable_auth("approle", "approle").await;
        }
        self.write(&format!("auth/approle/role/{name}"), options)
            .await;
        let role_id = self
            .read(&format!("auth/approle/role/{name}/role-id"))
            .await["data"]["role_id"]
            .as_str()
            .expect("role_id")
            .to_owned();
        let secret_id = self
            .write(&format!("auth/approle/role/{name}/secret-id"), json!({}))
            .await["data"]["secret_id"]
            .as_str()
            .expect("secret_id")
            .to_owned();
        (role_id, secret_id)
    }

    /// `sys/leases/lookup` of `lease_id` as root: its data (`ttl`, `expire_time`, ...), or the
    /// status and body of the refusal (400 `invalid lease` once it is gone).
    pub async fn lease_lookup(&self, lease_id: &str) -> Result<Value, (u16, String)> {
        self.api_as(
            self.root_token(),
            None,
            "PUT",
            "sys/leases/lookup",
            Some(json!({ "lease_id": lease_id })),
        )
        .await
        .map(|v| v["data"].clone())
    }
}
