//! The PostgreSQL harness itself: a cluster starts on loopback, checks passwords, and is gone
//! after drop.

use kuvert_testkit::Postgres;

#[tokio::test]
async fn postgres_accepts_the_superuser_refuses_a_wrong_password_and_is_removed_on_drop() {
    let pg = Postgres::start().await;
    assert_eq!(pg.query("SELECT current_user").await, "kuvert");
    assert!(pg.role_exists("kuvert").await);
    assert!(!pg.role_exists("nobody").await);

    let refused = pg
        .query_as(pg.superuser(), "wrong-password", "SELECT 1")
        .await
        .unwrap_err();
    assert!(
        refused.contains("password authentication failed for user \"kuvert\""),
        "{refused}"
    );

    let port = pg.port();
    drop(pg);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server still listens on {port} after drop"
    );
}
