//! No token, and no token's hash, reaches the log, whatever the request does with it (a
//! valid one, one in a query, one as a record's reference, a revoked one). Alone in its
//! test binary: the log subscriber is global, so it sees every event of the process.

use axum::body::Body;
use axum::http::{Request, header};
use dcrs_testkit::each_backend;
use dcrs_web::Settings;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};

mod common;
use common::{Browser, PASSWORD, app};

async fn make_token(b: &mut Browser) -> String {
    b.sign_in("trainer", PASSWORD).await;
    let csrf = b.get("/account/tokens").await.csrf();
    let made = b
        .post(
            "/account/tokens",
            &[
                ("csrf", csrf.as_str()),
                ("name", "log"),
                ("access", "write"),
                ("days", "1"),
            ],
        )
        .await;
    let at = made.body.find("<code class=\"token\">").expect("shown");
    let rest = &made.body[at + "<code class=\"token\">".len()..];
    rest[..rest.find('<').unwrap()].to_string()
}

async fn call(b: &mut Browser, method: &str, path: &str, token: &str, body: Option<Value>) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "dcrs.test")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map_or(Body::empty(), |v| Body::from(v.to_string())))
        .unwrap();
    b.send(req).await;
}

/// A writer the test can read back, for the log.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_token_never_reaches_the_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    each_backend!("web_api_log", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut b = Browser::new(&app);
        let tok = make_token(&mut b).await;
        call(&mut b, "GET", "/api/v1/services/S1/clients", &tok, None).await;
        call(
            &mut b,
            "POST",
            "/api/v1/services/S1/clients",
            &tok,
            Some(json!({"client_ref": "C5", "given_name": "Log", "date_of_birth": "1970-01-01"})),
        )
        .await;
        call(
            &mut b,
            "POST",
            "/api/v1/services/S1/clients",
            &tok,
            Some(json!({"client_ref": tok.clone(), "given_name": "x"})),
        )
        .await;
        call(
            &mut b,
            "GET",
            &format!("/api/v1/services/S1/clients?after={tok}"),
            &tok,
            None,
        )
        .await;
        sqlx::query("UPDATE api_tokens SET revoked_at = 1")
            .execute(t.db.pool())
            .await
            .unwrap();
        call(&mut b, "GET", "/api/v1/token", &tok, None).await;
        let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
        assert!(log.contains("api request"), "the log was captured: {log}");
        assert!(!log.contains(&tok[5..]), "the token reached the log");
        let hash = dcrs_web::auth::token_hash(&tok);
        assert!(!log.contains(&hash), "the token's hash reached the log");
    });
}
