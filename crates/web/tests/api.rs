//! The JSON API: tokens (made on the page, shown once, stored hashed, narrowed, expired,
//! revoked, refused out of scope), records (list with paging and filters, read, create,
//! update) checked by the dataset's rules with structured errors, writes audited as the
//! pages' are, reports under the same disclosure control. (The log is checked in
//! `api_log.rs`, alone in its binary so that its log captures every event.)

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use dcrs_store::Database;
use dcrs_testkit::each_backend;
use dcrs_web::Settings;
use serde_json::{Value, json};

mod common;
use common::{Browser, PASSWORD, app};

/// Signs in as `username` and makes a token on the page; returns it.
async fn make_token(b: &mut Browser, username: &str, form: &[(&str, &str)]) -> String {
    b.sign_in(username, PASSWORD).await;
    let page = b.get("/account/tokens").await;
    assert_eq!(page.status, 200);
    let csrf = page.csrf();
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend_from_slice(form);
    let made = b.post("/account/tokens", &fields).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let at = made
        .body
        .find("<code class=\"token\">")
        .unwrap_or_else(|| panic!("the token is shown: {}", made.body));
    let rest = &made.body[at + "<code class=\"token\">".len()..];
    let token = rest[..rest.find('<').unwrap()].to_string();
    assert!(token.starts_with("dcrs_") && token.len() > 60, "{token}");
    let again = b.get("/account/tokens").await;
    assert!(!again.body.contains(&token), "a token is shown only once");
    token
}

/// An API request: status, headers and JSON body.
async fn call(
    b: &mut Browser,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    call_with(b, method, path, token, body, &[]).await
}

/// An API request with headers of its own.
async fn call_with(
    b: &mut Browser,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "dcrs.test");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(v) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let page = b.send(req).await;
    let json = serde_json::from_str(&page.body)
        .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {}", page.body));
    (page.status, page.headers, json)
}

/// A GET of the API.
async fn get(
    b: &mut Browser,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    call(b, "GET", path, token, None).await
}

async fn last_audit(db: &Database) -> i64 {
    sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(audit_id) FROM audit_log")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .unwrap_or(0)
}

/// (actor, action, record_ref, detail) of every audit entry after `after`.
async fn audit_after(db: &Database, after: i64) -> Vec<(String, String, Option<String>, Value)> {
    let rows: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT actor, action, record_ref, detail FROM audit_log WHERE audit_id > $1 ORDER BY audit_id",
    )
    .bind(after)
    .fetch_all(db.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(a, b, c, d)| {
            (
                a,
                b,
                c,
                serde_json::from_str(&d.unwrap_or("null".into())).unwrap(),
            )
        })
        .collect()
}

fn client(reference: &str) -> Value {
    json!({
        "client_ref": reference, "given_name": "Cara", "family_name": "Api",
        "date_of_birth": "1975-03-02", "sex": "female", "ethnicity": "A",
        "postcode": null, "gp_registered": "yes", "employment": "employed",
        "disability": "no", "consent_to_record": "yes", "consent_to_share_with_gp": "no",
    })
}

#[tokio::test]
async fn tokens_are_shown_once_stored_hashed_and_refused_when_expired_revoked_or_out_of_scope() {
    each_backend!("web_api_tokens", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut b = Browser::new(&app);
        let write = make_token(
            &mut b,
            "trainer",
            &[("name", "sync-job-7"), ("access", "write"), ("days", "30")],
        )
        .await;
        let read = make_token(
            &mut b,
            "trainer",
            &[("name", "look"), ("access", "read"), ("days", "30")],
        )
        .await;

        // Only the hash is stored.
        let hashes: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
            .fetch_all(t.db.pool())
            .await
            .unwrap();
        assert_eq!(hashes.len(), 2);
        assert!(
            hashes
                .iter()
                .all(|h| h.len() == 64 && !h.contains(&write[5..]) && !h.contains(&read[5..]))
        );

        let (s, _, who) = get(&mut b, "/api/v1/token", Some(&read)).await;
        assert_eq!(s, 200);
        assert_eq!(who["username"], "trainer");
        assert_eq!(who["token"]["access"], "read");

        // No token, an unknown one, a malformed header: 401, asking for a bearer token.
        let (s, h, e) = get(&mut b, "/api/v1/services/S1/clients", None).await;
        assert_eq!(s, 401);
        assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(e["error"], "unauthorised");
        let unknown = format!("dcrs_{}", "0".repeat(64));
        assert_eq!(
            get(&mut b, "/api/v1/services/S1/clients", Some(&unknown))
                .await
                .0,
            401
        );

        // In scope: the trainer's own service. Out of scope: the other service, 404 as if
        // it did not exist, and the refusal is audited.
        let (s, _, page) = get(&mut b, "/api/v1/services/S1/clients", Some(&read)).await;
        assert_eq!(s, 200);
        assert_eq!(page["items"][0]["client_ref"], "C1");
        let before = last_audit(&t.db).await;
        let (s, _, e) = get(&mut b, "/api/v1/services/S2/clients", Some(&read)).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
        let (s, _, _) = get(&mut b, "/api/v1/services/NOPE/clients", Some(&read)).await;
        assert_eq!(s, 404, "a service that does not exist answers the same");
        let log = audit_after(&t.db, before).await;
        assert_eq!(log[0].1, "access.denied");
        // A trainer's token reads no reports; a read-only token writes nothing.
        assert_eq!(
            get(
                &mut b,
                "/api/v1/reports/activity?period=2010-11",
                Some(&write)
            )
            .await
            .0,
            404
        );
        let (s, _, e) = call(
            &mut b,
            "POST",
            "/api/v1/services/S1/clients",
            Some(&read),
            Some(client("C7")),
        )
        .await;
        assert_eq!(s, 403, "{e}");
        let (s, _, _) = call(
            &mut b,
            "POST",
            "/api/v1/services/S1/clients",
            Some(&write),
            Some(client("C7")),
        )
        .await;
        assert_eq!(s, 201);

        // A token narrowed to one service of an analyst's: the other is refused.
        let mut a = Browser::new(&app);
        let narrow = make_token(
            &mut a,
            "analyst_all",
            &[
                ("name", "S1 only"),
                ("access", "read"),
                ("days", "5"),
                ("services", "S1"),
            ],
        )
        .await;
        let (s, _, docs) = get(
            &mut a,
            "/api/v1/reports/activity?services=S1&period=2010-11",
            Some(&narrow),
        )
        .await;
        assert_eq!(s, 200, "{docs}");
        assert_eq!(docs["documents"][0]["policy"]["name"], "nhs_sub_national");
        assert_eq!(
            get(
                &mut a,
                "/api/v1/reports/activity?services=S2&period=2010-11",
                Some(&narrow)
            )
            .await
            .0,
            404
        );
        // An analyst may not ask for write access, nor a service outside their scope.
        let page = a.get("/account/tokens").await;
        let refused = a
            .post(
                "/account/tokens",
                &[
                    ("csrf", &page.csrf()),
                    ("name", "x"),
                    ("access", "write"),
                    ("days", "400"),
                    ("services", "S9"),
                ],
            )
            .await;
        assert!(refused.body.contains("Your role only reads"));
        assert!(refused.body.contains("from 1 to 366"));
        assert!(refused.body.contains("S9 is not one of your services"));

        // Expired: the clock passes its end (set in the database, as time would).
        sqlx::query("UPDATE api_tokens SET expires_at = $1 WHERE token_hash = $2")
            .bind(dcrs_web::auth::now() - 1)
            .bind(dcrs_web::auth::token_hash(&narrow))
            .execute(t.db.pool())
            .await
            .unwrap();
        let before = last_audit(&t.db).await;
        assert_eq!(get(&mut a, "/api/v1/token", Some(&narrow)).await.0, 401);
        let log = audit_after(&t.db, before).await;
        assert_eq!(
            (log[0].1.as_str(), log[0].3["reason"].as_str()),
            ("access.denied", Some("expired"))
        );

        // Revoked on the page: refused at once.
        let id: i64 = sqlx::query_scalar("SELECT token_id FROM api_tokens WHERE name = 'look'")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        let csrf = b.get("/account/tokens").await.csrf();
        let r = b
            .post(&format!("/account/tokens/{id}/revoke"), &[("csrf", &csrf)])
            .await;
        assert_eq!(r.status, 303);
        assert_eq!(get(&mut b, "/api/v1/token", Some(&read)).await.0, 401);
        assert_eq!(
            get(&mut b, "/api/v1/token", Some(&write)).await.0,
            200,
            "only that token"
        );
        // Another user cannot revoke it (404), nor see it listed.
        let csrf = a.get("/account/tokens").await.csrf();
        let wid: i64 =
            sqlx::query_scalar("SELECT token_id FROM api_tokens WHERE name = 'sync-job-7'")
                .fetch_one(t.db.pool())
                .await
                .unwrap();
        assert_eq!(
            a.post(&format!("/account/tokens/{wid}/revoke"), &[("csrf", &csrf)])
                .await
                .status,
            404
        );
        assert!(!a.get("/account/tokens").await.body.contains("sync-job-7"));

        // Disabling the account revokes its tokens.
        let mut admin = Browser::new(&app);
        admin.sign_in("admin", PASSWORD).await;
        let csrf = admin.token().await;
        let uid: i64 = sqlx::query_scalar("SELECT user_id FROM users WHERE username = 'trainer'")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        admin
            .post(&format!("/admin/users/{uid}/disable"), &[("csrf", &csrf)])
            .await;
        assert_eq!(get(&mut b, "/api/v1/token", Some(&write)).await.0, 401);

        // No token anywhere in the database: not in the audit log, not in the token table.
        let audit: Vec<String> =
            sqlx::query_scalar("SELECT COALESCE(detail, '') || actor || action FROM audit_log")
                .fetch_all(t.db.pool())
                .await
                .unwrap();
        for secret in [&write, &read, &narrow] {
            assert!(
                audit.iter().all(|a| !a.contains(&secret[5..])),
                "a token reached the audit log"
            );
        }
    });
}

#[tokio::test]
async fn records_are_checked_by_the_dataset_rules_and_audited_like_page_writes() {
    each_backend!("web_api_records", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut b = Browser::new(&app);
        let tok = make_token(
            &mut b,
            "trainer",
            &[("name", "sync"), ("access", "write"), ("days", "30")],
        )
        .await;
        let tok = Some(tok.as_str());

        // A create is audited as a page's is: record.add by the user, with the values.
        let before = last_audit(&t.db).await;
        let (s, h, made) = call(
            &mut b,
            "POST",
            "/api/v1/services/S1/clients",
            tok,
            Some(client("C9")),
        )
        .await;
        assert_eq!(s, 201, "{made}");
        assert_eq!(h[header::LOCATION], "/api/v1/services/S1/clients/C9");
        assert_eq!(
            made["record"]["service_ref"], "S1",
            "the service comes from the address"
        );
        assert_eq!(made["record"]["date_of_birth"], "1975-03-02");
        let api_log = audit_after(&t.db, before).await;
        let add = api_log
            .iter()
            .find(|e| e.1 == "record.add")
            .expect("audited");
        assert_eq!((add.0.as_str(), add.2.as_deref()), ("trainer", Some("C9")));
        assert_eq!(add.3["after"]["given_name"], "Cara");
        let via: String =
            sqlx::query_scalar("SELECT entered_via FROM clients WHERE client_ref = 'C9'")
                .fetch_one(t.db.pool())
                .await
                .unwrap();
        assert_eq!(via, "application");

        // The same client registered on the page leaves an entry of the same shape.
        let csrf = b.get("/services/S1/clients/new").await.csrf();
        let before_page = last_audit(&t.db).await;
        let saved = b
            .post(
                "/services/S1/clients/new",
                &[
                    ("csrf", csrf.as_str()),
                    ("do", "save"),
                    ("given_name", "Cara"),
                    ("family_name", "Page"),
                    ("date_of_birth", "1975-03-02"),
                    ("sex", "female"),
                    ("ethnicity", "A"),
                    ("gp_registered", "yes"),
                    ("employment", "employed"),
                    ("disability", "no"),
                    ("consent_to_record", "yes"),
                    ("consent_to_share_with_gp", "no"),
                ],
            )
            .await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let page_log = audit_after(&t.db, before_page).await;
        let page_add = page_log
            .iter()
            .find(|e| e.1 == "record.add")
            .expect("audited");
        assert_eq!(page_add.0, add.0);
        let keys = |v: &Value| {
            v["after"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(&page_add.3),
            keys(&add.3),
            "the same values are recorded"
        );

        // An update replaces the record and is audited with before and after.
        let mut changed = client("C9");
        changed["family_name"] = json!("Apiary");
        let before = last_audit(&t.db).await;
        let (s, _, upd) = call(
            &mut b,
            "PUT",
            "/api/v1/services/S1/clients/C9",
            tok,
            Some(changed),
        )
        .await;
        assert_eq!(s, 200, "{upd}");
        assert_eq!(upd["record"]["family_name"], "Apiary");
        let log = audit_after(&t.db, before).await;
        let u = log
            .iter()
            .find(|e| e.1 == "record.update")
            .expect("audited");
        assert_eq!(u.3["family_name"]["before"], "Api");
        assert_eq!(u.3["family_name"]["after"], "Apiary");

        // Bad values: 422 naming the record, field, value and reason; nothing stored.
        let count = || async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM clients")
                .fetch_one(t.db.pool())
                .await
                .unwrap()
        };
        let n = count().await;
        let mut bad = client("C10");
        bad["date_of_birth"] = json!("31/02/1975");
        bad["sex"] = json!("x");
        let (s, _, e) = call(
            &mut b,
            "POST",
            "/api/v1/services/S1/clients",
            tok,
            Some(bad),
        )
        .await;
        assert_eq!(s, 422, "{e}");
        let fields: Vec<&str> = e["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&"date_of_birth") && fields.contains(&"sex"),
            "{e}"
        );
        let dob = e["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["field"] == "date_of_birth")
            .unwrap();
        assert_eq!(dob["value"], "31/02/1975");
        assert_eq!(dob["record"], "C10");
        assert!(!dob["reason"].as_str().unwrap().is_empty());
        assert_eq!(count().await, n, "nothing was stored");
        // Wrong types, unknown fields, a control character, another service's reference.
        let (s, _, e) = call(&mut b, "POST", "/api/v1/services/S1/clients", tok, Some(json!({"client_ref": "C11", "shoe_size": 9, "given_name": 4, "family_name": "a\u{0}b"}))).await;
        assert_eq!(s, 422, "{e}");
        let fields: Vec<&str> = e["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&"shoe_size") && fields.contains(&"given_name"),
            "{e}"
        );
        let mut nul = client("C11");
        nul["family_name"] = json!("a\u{0}b");
        let (s, _, e) = call(
            &mut b,
            "POST",
            "/api/v1/services/S1/clients",
            tok,
            Some(nul),
        )
        .await;
        assert_eq!(s, 422, "{e}");
        assert_eq!(e["problems"][0]["field"], "family_name");
        let mut elsewhere = client("C12");
        elsewhere["service_ref"] = json!("S2");
        assert_eq!(
            call(
                &mut b,
                "POST",
                "/api/v1/services/S1/clients",
                tok,
                Some(elsewhere)
            )
            .await
            .0,
            422
        );
        assert_eq!(count().await, n);
        // Not JSON, not an object: 400.
        let (s, _, e) = call(
            &mut b,
            "POST",
            "/api/v1/services/S1/clients",
            tok,
            Some(json!([1, 2])),
        )
        .await;
        assert_eq!(
            (s, e["problems"][0]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("(body)"))
        );
        // A create never overwrites; an update needs the record.
        let (s, _, e) = call(
            &mut b,
            "POST",
            "/api/v1/services/S1/clients",
            tok,
            Some(client("C9")),
        )
        .await;
        assert_eq!(s, 409, "{e}");
        assert_eq!(
            call(
                &mut b,
                "PUT",
                "/api/v1/services/S1/clients/C404",
                tok,
                Some(client("C404"))
            )
            .await
            .0,
            404
        );
        // A reference to a record of another service does not resolve.
        let (s, _, e) = call(&mut b, "POST", "/api/v1/services/S1/referrals", tok, Some(json!({
            "referral_ref": "R9", "client_ref": "C2", "received_on": "2010-06-01", "source": "self",
        }))).await;
        assert_eq!(s, 422, "{e}");
        assert_eq!(e["problems"][0]["field"], "client_ref");
        let (s, _, e) = call(&mut b, "POST", "/api/v1/services/S1/referrals", tok, Some(json!({
            "referral_ref": "R9", "client_ref": "C9", "received_on": "2010-06-01", "source": "self",
        }))).await;
        assert_eq!(s, 201, "{e}");

        // Listing: pages in order of reference, filters on fields and date ranges.
        let (s, _, p1) = get(&mut b, "/api/v1/services/S1/clients?limit=2", tok).await;
        assert_eq!(s, 200);
        let refs = |p: &Value| {
            p["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["client_ref"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(refs(&p1).len(), 2);
        let next = p1["next_after"].as_str().unwrap().to_string();
        let (_, _, p2) = get(
            &mut b,
            &format!("/api/v1/services/S1/clients?limit=2&after={next}"),
            tok,
        )
        .await;
        let mut all = refs(&p1);
        all.extend(refs(&p2));
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted, "in order of reference");
        assert_eq!(all.len(), 3, "C1, C9 and the page's client: {all:?}");
        assert!(all.contains(&"C1".to_string()) && all.contains(&"C9".to_string()));
        assert_eq!(p2["next_after"], Value::Null);
        let (_, _, f) = get(
            &mut b,
            "/api/v1/services/S1/clients?family_name=Apiary",
            tok,
        )
        .await;
        assert_eq!(refs(&f), ["C9"]);
        let (_, _, f) = get(
            &mut b,
            "/api/v1/services/S1/clients?date_of_birth_from=1976-01-01",
            tok,
        )
        .await;
        assert_eq!(refs(&f), ["C1"]);
        let (_, _, r) = get(&mut b, "/api/v1/services/S1/referrals?client_ref=C9", tok).await;
        assert_eq!(r["items"][0]["referral_ref"], "R9");
        let (s, _, e) = get(
            &mut b,
            "/api/v1/services/S1/clients?limit=0&colour=red",
            tok,
        )
        .await;
        assert_eq!(s, 400);
        assert_eq!(e["problems"].as_array().unwrap().len(), 2, "{e}");
        // A NUL in a filter, a reference or a service is refused or not found, never a
        // database error.
        assert_eq!(
            get(
                &mut b,
                "/api/v1/services/S1/clients?after=a%00b&family_name=%00",
                tok
            )
            .await
            .0,
            400
        );
        assert_eq!(
            get(&mut b, "/api/v1/services/S1/clients/C%00", tok).await.0,
            404
        );
        assert_eq!(
            get(&mut b, "/api/v1/services/S%001/clients", tok).await.0,
            404
        );
        assert_eq!(
            call(
                &mut b,
                "PUT",
                "/api/v1/services/S1/clients/C%00",
                tok,
                Some(client("C\u{0}"))
            )
            .await
            .0,
            404
        );
        let (s, _, e) = call(
            &mut b,
            "POST",
            "/api/v1/services/S1/clients",
            tok,
            Some(client("C\u{0}")),
        )
        .await;
        assert_eq!(
            (s, e["problems"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("client_ref"))
        );
        // A read is audited with the records listed.
        let before = last_audit(&t.db).await;
        let (s, _, c) = get(&mut b, "/api/v1/services/S1/clients/C9", tok).await;
        assert_eq!(
            (s, c["family_name"].as_str()),
            (StatusCode::OK, Some("Apiary"))
        );
        let log = audit_after(&t.db, before).await;
        assert_eq!(
            (log[0].1.as_str(), log[0].2.as_deref()),
            ("view.record", Some("C9"))
        );
        assert_eq!(log[0].3["records"], json!(["C9"]));
        // The client's FHIR bundle: audited as a read of the client; another service's is not found.
        let before = last_audit(&t.db).await;
        let (s, h, fhir) = get(&mut b, "/api/v1/fhir/services/S1/clients/C9", tok).await;
        assert_eq!(s, 200, "{fhir}");
        assert_eq!(h[header::CONTENT_TYPE], "application/fhir+json");
        assert_eq!(fhir["resourceType"], "Bundle");
        assert_eq!(fhir["entry"][0]["resource"]["resourceType"], "Patient");
        assert_eq!(fhir["entry"][0]["resource"]["name"][0]["family"], "Apiary");
        assert!(
            fhir["entry"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["resource"]["resourceType"] == "ServiceRequest")
        );
        let log = audit_after(&t.db, before).await;
        assert_eq!(
            (log[0].1.as_str(), log[0].2.as_deref()),
            ("view.record", Some("C9"))
        );
        assert_eq!(
            get(&mut b, "/api/v1/fhir/services/S2/clients/C2", tok)
                .await
                .0,
            404
        );
        assert_eq!(
            get(&mut b, "/api/v1/fhir/services/S1/clients/NOPE", tok)
                .await
                .0,
            404
        );
        // Organisations and services: every token reads them, only an admin's writes.
        let (s, _, orgs) = get(&mut b, "/api/v1/organisations", tok).await;
        assert_eq!(
            (s, orgs["items"].as_array().unwrap().len()),
            (StatusCode::OK, 2)
        );
        let org = json!({"org_ref": "O9", "name": "West PCT", "kind": "pct"});
        assert_eq!(
            call(
                &mut b,
                "POST",
                "/api/v1/organisations",
                tok,
                Some(org.clone())
            )
            .await
            .0,
            403
        );
        let mut adm = Browser::new(&b.app);
        let admin = make_token(
            &mut adm,
            "admin",
            &[("name", "lists"), ("access", "write"), ("days", "1")],
        )
        .await;
        let (s, _, made) = call(
            &mut adm,
            "POST",
            "/api/v1/organisations",
            Some(&admin),
            Some(org),
        )
        .await;
        assert_eq!(s, 201, "{made}");
        let service = json!({"service_ref": "S9", "name": "West Health Trainers", "commissioner_org_ref": "O9",
            "areas_served": "E06000009", "started_on": "2012-04-01"});
        let (s, h, made) = call(
            &mut adm,
            "POST",
            "/api/v1/services",
            Some(&admin),
            Some(service),
        )
        .await;
        assert_eq!(s, 201, "{made}");
        assert_eq!(h[header::LOCATION], "/api/v1/services/S9");
        // An admin sees no client records.
        assert_eq!(
            get(&mut adm, "/api/v1/services/S9/clients", Some(&admin))
                .await
                .0,
            404
        );
        // Numbers are numbers.
        let (_, _, w) = get(&mut b, "/api/v1/services/S1/workers/W1", tok).await;
        assert_eq!(w["fte"], json!(1.0));
        assert_eq!(w["home_imd_quintile"], json!(1));
    });
}

/// A write sent again with the same `Idempotency-Key` (a retry after the answer was
/// lost) is answered as the first was and stored once; the key sent with another
/// request is refused; a key of one user is not another's; a write refused by the rules
/// does not use up its key.
#[tokio::test]
async fn a_write_repeated_with_its_idempotency_key_is_stored_once() {
    each_backend!("web_api_idempotency", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut b = Browser::new(&app);
        let form = [("name", "sync"), ("access", "write"), ("days", "30")];
        let trainer = make_token(&mut b, "trainer", &form).await;
        let manager = make_token(&mut Browser::new(&app), "manager", &form).await;
        let path = "/api/v1/services/S1/clients";
        let added = |db: Database| async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'record.add' AND entity = 'client'",
            )
            .fetch_one(db.pool())
            .await
            .unwrap();
            n
        };
        let key = [("Idempotency-Key", "retry-7f3a")];
        let tok = Some(trainer.as_str());
        let (s, h, first) = call_with(&mut b, "POST", path, tok, Some(client("C7")), &key).await;
        assert_eq!(s, 201, "{first}");
        assert_eq!(added(t.db.clone()).await, 1);
        // The same request again: the same answer, nothing written.
        let (s2, h2, again) = call_with(&mut b, "POST", path, tok, Some(client("C7")), &key).await;
        assert_eq!(s2, 201, "{again}");
        assert_eq!(h2[header::LOCATION], h[header::LOCATION]);
        assert_eq!(again["record"], first["record"]);
        assert_eq!(added(t.db.clone()).await, 1, "stored once");
        // Without the key, the repeat is a conflict.
        let (s3, _, _) = call(&mut b, "POST", path, tok, Some(client("C7"))).await;
        assert_eq!(s3, 409);
        // The key with another request is refused, and that request not stored.
        let (s4, _, other) = call_with(&mut b, "POST", path, tok, Some(client("C8")), &key).await;
        assert_eq!(s4, 422, "{other}");
        assert_eq!(other["error"], "idempotency_key_reused");
        let c8: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients WHERE client_ref = 'C8'")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(c8, 0);
        // Another user's key of the same words is theirs.
        let mine = Some(manager.as_str());
        let (s5, _, theirs) = call_with(
            &mut Browser::new(&app),
            "POST",
            path,
            mine,
            Some(client("C8")),
            &key,
        )
        .await;
        assert_eq!(s5, 201, "{theirs}");
        // A refused write leaves its key free for the corrected one.
        let key2 = [("Idempotency-Key", "\"retry-2\"")];
        let mut bad = client("C6");
        bad["sex"] = json!("unknown");
        let (s6, _, refused) = call_with(&mut b, "POST", path, tok, Some(bad), &key2).await;
        assert_eq!(s6, 422, "{refused}");
        assert_eq!(refused["error"], "invalid");
        let (s7, _, fixed) = call_with(&mut b, "POST", path, tok, Some(client("C6")), &key2).await;
        assert_eq!(s7, 201, "{fixed}");
        // A key that is not one is a bad request.
        let long = "k".repeat(101);
        let bad_key = [("Idempotency-Key", long.as_str())];
        let (s8, _, why) = call_with(&mut b, "POST", path, tok, Some(client("C5")), &bad_key).await;
        assert_eq!(s8, 400, "{why}");
        assert_eq!(why["problems"][0]["field"], "Idempotency-Key");
    });
}

#[tokio::test]
async fn reports_through_the_api_match_the_pages_and_are_audited() {
    each_backend!("web_api_reports", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut m = Browser::new(&app);
        let tok = make_token(
            &mut m,
            "manager",
            &[("name", "reports"), ("access", "read"), ("days", "1")],
        )
        .await;
        let before = last_audit(&t.db).await;
        let (s, _, api) = get(
            &mut m,
            "/api/v1/reports/activity?period=2010-11",
            Some(&tok),
        )
        .await;
        assert_eq!(s, 200, "{api}");
        let log = audit_after(&t.db, before).await;
        assert_eq!(
            log[0].1, "report.release.uncontrolled",
            "a manager's own service: exact, and audited so"
        );
        assert!(
            log[0].3["token_id"].as_i64().is_some(),
            "the token is named"
        );
        let page = m
            .get("/reports/view?kind=activity&services=S1&period=2010-11&format=json")
            .await;
        let page: Value = serde_json::from_str(&page.body).unwrap();
        let strip = |mut v: Value| {
            v["produced_at"] = Value::Null;
            v["counts"] = Value::Null;
            v
        };
        assert_eq!(
            strip(api["documents"][0].clone()),
            strip(page),
            "the API's figures are the page's"
        );
        // Bad parameters are named.
        let (s, _, e) = get(
            &mut m,
            "/api/v1/reports/activity?period=2010-11Q9",
            Some(&tok),
        )
        .await;
        assert_eq!(
            (s, e["problems"][0]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("period"))
        );
        assert_eq!(
            get(&mut m, "/api/v1/reports/nonsense", Some(&tok)).await.0,
            400
        );
        let (s, _, p) = get(&mut m, "/api/v1/patterns", Some(&tok)).await;
        assert_eq!(s, 200, "{p}");
        // The commissioner's figures are controlled.
        let mut c = Browser::new(&app);
        let ctok = make_token(
            &mut c,
            "commissioner",
            &[("name", "r"), ("access", "read"), ("days", "1")],
        )
        .await;
        let (s, _, d) = get(&mut c, "/api/v1/reports/pack?period=2010-11", Some(&ctok)).await;
        assert_eq!(s, 200);
        assert!(!d["documents"].as_array().unwrap().is_empty());
        assert!(
            d["documents"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["policy"]["name"] == "nhs_sub_national")
        );
        assert_eq!(get(&mut c, "/api/v1/patterns", Some(&ctok)).await.0, 404);
    });
}

#[tokio::test]
async fn the_description_covers_every_entity_and_is_served_without_a_token() {
    each_backend!("web_api_openapi", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut b = Browser::new(&app);
        let (s, _, doc) = get(&mut b, "/api/v1/openapi.json", None).await;
        assert_eq!(s, 200);
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        for e in dcrs_domain::Entity::ALL {
            let name = format!("{e:?}");
            assert!(
                doc["components"]["schemas"][&name]["properties"]
                    .as_object()
                    .unwrap()
                    .len()
                    == e.fields().len()
            );
            let ids = [
                format!("list{name}s"),
                format!("create{name}"),
                format!("get{name}"),
                format!("update{name}"),
            ];
            let ops: usize = paths
                .values()
                .flat_map(|p| p.as_object().unwrap().values())
                .filter(|o| ids.iter().any(|id| o["operationId"] == id.as_str()))
                .count();
            assert_eq!(ops, 4, "{name}: list, create, read, update");
        }
        // Every documented address answers (not 405) with JSON.
        let tok = make_token(
            &mut b,
            "manager",
            &[("name", "probe"), ("access", "read"), ("days", "1")],
        )
        .await;
        for (path, item) in paths {
            let concrete = path
                .replace("{service}", "S1")
                .replace("{reference}", "X")
                .replace("{client}", "C1")
                .replace("{kind}", "activity");
            for method in item.as_object().unwrap().keys() {
                let (s, h, _) = call(
                    &mut b,
                    &method.to_uppercase(),
                    &concrete,
                    Some(&tok),
                    if method == "get" {
                        None
                    } else {
                        Some(json!({}))
                    },
                )
                .await;
                assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert!(
                    item[method]["responses"][s.as_str()].is_object(),
                    "{method} {path}: {s} is documented"
                );
                let ctype = h[header::CONTENT_TYPE].to_str().unwrap();
                assert!(
                    ctype.starts_with("application/json") || ctype == "application/fhir+json",
                    "{ctype}"
                );
            }
        }
    });
}
