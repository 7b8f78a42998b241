//! Signing in: lockout after repeated failures, a new session id at every sign-in, idle
//! expiry, the TOTP second factor (optional per account, required by a setting for roles
//! that see identifiable records), password change, cookies' attributes.

use dcrs_testkit::{TestDb, each_backend};
use dcrs_web::{Settings, auth};

mod common;
use common::{Browser, PASSWORD, app};

#[tokio::test]
async fn repeated_failures_lock_the_account_for_a_while() {
    let t = TestDb::sqlite().await;
    let settings = Settings {
        behind_proxy: true,
        ..Settings::default()
    };
    let app = app(&t.db, settings).await;
    let mut b = Browser::new(&app);
    // Twenty wrong passwords from four addresses (each may try an account five times).
    for address in ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"] {
        for _ in 0..5 {
            let p = b.sign_in_from("manager", "not the password", address).await;
            assert_eq!(p.status, 200);
            assert!(p.body.contains("The user name or password is not right"));
        }
    }
    // Locked: even the right password is refused, and says why.
    let p = b.sign_in_from("manager", PASSWORD, "192.0.2.5").await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("locked"), "{}", p.body);
    assert!(!b.cookies.contains_key("dcrs_session"));
    let locked: Option<i64> =
        sqlx::query_scalar("SELECT locked_until FROM users WHERE username = 'manager'")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
    assert!(locked.is_some_and(|l| l > auth::now()));
    // Other accounts are not affected.
    assert_eq!(
        Browser::new(&app).sign_in("trainer", PASSWORD).await.status,
        303
    );
    // When the lock has run out, the right password works again.
    sqlx::query("UPDATE users SET locked_until = $1 WHERE username = 'manager'")
        .bind(auth::now() - 1)
        .execute(t.db.pool())
        .await
        .unwrap();
    assert_eq!(b.sign_in("manager", PASSWORD).await.status, 303);
    // An unknown user name gets the same answer as a wrong password.
    let unknown = Browser::new(&app).sign_in("nobody", PASSWORD).await;
    assert!(
        unknown
            .body
            .contains("The user name or password is not right")
    );
}

#[tokio::test]
async fn every_sign_in_starts_a_new_session_and_the_old_one_ends() {
    let t = TestDb::sqlite().await;
    let app = app(&t.db, Settings::default()).await;
    let mut b = Browser::new(&app);
    let first = b.sign_in("trainer", PASSWORD).await;
    let cookie = first
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("dcrs_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "not behind TLS by default");
    let old = b.cookies["dcrs_session"].clone();
    b.sign_in("trainer", PASSWORD).await;
    let new = b.cookies["dcrs_session"].clone();
    assert_ne!(old, new, "a new session id");
    // The old id no longer signs anyone in.
    let mut thief = Browser::new(&app);
    thief.cookies.insert("dcrs_session".into(), old);
    let p = thief.get("/services/S1/clients").await;
    assert_eq!((p.status.as_u16(), p.location()), (303, Some("/login")));
    // Only a hash of the id is stored.
    let stored: Vec<String> = sqlx::query_scalar("SELECT session_hash FROM web_sessions")
        .fetch_all(t.db.pool())
        .await
        .unwrap();
    assert!(!stored.contains(&new) && stored.contains(&auth::token_hash(&new)));
    // Behind TLS the cookie is Secure.
    let t2 = TestDb::sqlite().await;
    let tls = app_with(
        &t2,
        Settings {
            secure_cookies: true,
            ..Default::default()
        },
    )
    .await;
    let p = Browser::new(&tls).sign_in("trainer", PASSWORD).await;
    assert!(
        p.headers
            .get_all("set-cookie")
            .iter()
            .all(|c| c.to_str().unwrap().contains("; Secure"))
    );
    // Signing out ends the session.
    let token = b.token().await;
    b.post("/logout", &[("csrf", &token)]).await;
    assert_eq!(b.get("/").await.location(), Some("/login"));
}

async fn app_with(t: &TestDb, settings: Settings) -> axum::Router {
    app(&t.db, settings).await
}

#[tokio::test]
async fn an_idle_session_ends() {
    let t = TestDb::sqlite().await;
    let app = app(
        &t.db,
        Settings {
            idle_minutes: 30,
            ..Default::default()
        },
    )
    .await;
    let mut b = Browser::new(&app);
    b.sign_in("trainer", PASSWORD).await;
    assert_eq!(b.get("/services/S1/clients").await.status, 200);
    // 29 minutes idle: still signed in (and the clock restarts).
    sqlx::query("UPDATE web_sessions SET last_seen_at = $1")
        .bind(auth::now() - 29 * 60)
        .execute(t.db.pool())
        .await
        .unwrap();
    assert_eq!(b.get("/services/S1/clients").await.status, 200);
    // 31 minutes idle: signed out, and the session is gone.
    sqlx::query("UPDATE web_sessions SET last_seen_at = $1")
        .bind(auth::now() - 31 * 60)
        .execute(t.db.pool())
        .await
        .unwrap();
    let p = b.get("/services/S1/clients").await;
    assert_eq!((p.status.as_u16(), p.location()), (303, Some("/login")));
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions")
        .fetch_one(t.db.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// The current code of a base32 secret.
fn code(secret: &str) -> String {
    let key = auth::from_base32(secret).unwrap();
    format!("{:06}", auth::hotp(&key, auth::now() as u64 / 30, 6))
}

fn secret_on(page: &str) -> String {
    let at = page.find("name=\"secret\" value=\"").unwrap() + "name=\"secret\" value=\"".len();
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

#[tokio::test]
async fn a_second_factor_is_set_up_then_asked_for_and_can_be_required() {
    let t = TestDb::sqlite().await;
    let app = app(
        &t.db,
        Settings {
            require_second_factor: true,
            ..Default::default()
        },
    )
    .await;
    // A trainer (sees identifiable records) must set one up before anything else.
    let mut b = Browser::new(&app);
    let p = b.sign_in("trainer", PASSWORD).await;
    assert_eq!(p.location(), Some("/account/second-factor"));
    let blocked = b.get("/services/S1/clients").await;
    assert_eq!(blocked.location(), Some("/account/second-factor"));
    let setup = b.get("/account/second-factor").await;
    let secret = secret_on(&setup.body);
    let token = setup.csrf();
    let wrong = b
        .post(
            "/account/second-factor",
            &[("csrf", &token), ("secret", &secret), ("code", "000000")],
        )
        .await;
    assert!(wrong.body.contains("The security code is not right"));
    // Kept to replay below: computed again there, it would be the next step's code
    // whenever the 30-second step turned in between, and rightly accepted.
    let setup_code = code(&secret);
    let ok = b
        .post(
            "/account/second-factor",
            &[("csrf", &token), ("secret", &secret), ("code", &setup_code)],
        )
        .await;
    assert_eq!(ok.location(), Some("/"));
    assert_eq!(b.get("/services/S1/clients").await.status, 200);
    // The database holds the secret sealed with the key outside it, not the secret.
    let stored: String =
        sqlx::query_scalar("SELECT totp_secret FROM users WHERE username = 'trainer'")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
    assert!(
        stored.starts_with("v1:") && !stored.contains(&secret),
        "{stored}"
    );
    // Next time: password, then the code.
    let mut again = Browser::new(&app);
    let p = again.sign_in("trainer", PASSWORD).await;
    assert_eq!(p.location(), Some("/login/second-factor"));
    assert_eq!(
        again.get("/services/S1/clients").await.location(),
        Some("/login/second-factor")
    );
    let form = again.get("/login/second-factor").await;
    let token = form.csrf();
    let bad = again
        .post(
            "/login/second-factor",
            &[("csrf", &token), ("code", "123456")],
        )
        .await;
    assert!(bad.body.contains("The security code is not right"));
    // The code used to set it up moments ago is refused: a code is accepted once.
    let replay = again
        .post(
            "/login/second-factor",
            &[("csrf", &token), ("code", &setup_code)],
        )
        .await;
    assert!(replay.body.contains("The security code is not right"));
    // A minute later (the last accepted step moved back, as time would), a new code works.
    sqlx::query("UPDATE users SET totp_last_step = totp_last_step - 2 WHERE username = 'trainer'")
        .execute(t.db.pool())
        .await
        .unwrap();
    let good = again
        .post(
            "/login/second-factor",
            &[("csrf", &token), ("code", &code(&secret))],
        )
        .await;
    assert_eq!(good.location(), Some("/"));
    assert_eq!(again.get("/services/S1/clients").await.status, 200);
    // Guessing codes: after five wrong ones the session ends and the account is locked.
    let mut guesser = Browser::new(&app);
    guesser.sign_in("trainer", PASSWORD).await;
    let token = guesser.get("/login/second-factor").await.csrf();
    for _ in 0..4 {
        let p = guesser
            .post(
                "/login/second-factor",
                &[("csrf", &token), ("code", "000001")],
            )
            .await;
        assert!(p.body.contains("The security code is not right"));
    }
    let last = guesser
        .post(
            "/login/second-factor",
            &[("csrf", &token), ("code", "000001")],
        )
        .await;
    assert_eq!(last.location(), Some("/login"));
    assert_eq!(guesser.get("/").await.location(), Some("/login"));
    let locked: Option<i64> =
        sqlx::query_scalar("SELECT locked_until FROM users WHERE username = 'trainer'")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
    assert!(
        locked.is_some_and(|l| l > auth::now()),
        "the account is locked"
    );
    // Every session of the account ended with it.
    assert_eq!(again.get("/").await.location(), Some("/login"));
    // A commissioner (aggregates only) is not required to.
    let p = Browser::new(&app).sign_in("commissioner", PASSWORD).await;
    assert_eq!(p.location(), Some("/"));
}

#[tokio::test]
async fn a_password_change_checks_the_old_one_and_ends_other_sessions() {
    let t = TestDb::sqlite().await;
    let app = app(&t.db, Settings::default()).await;
    let mut phone = Browser::new(&app);
    phone.sign_in("manager", PASSWORD).await;
    let mut desk = Browser::new(&app);
    desk.sign_in("manager", PASSWORD).await;
    let token = desk.token().await;
    let wrong = desk
        .post(
            "/account/password",
            &[("csrf", &token), ("current", "nope"), ("new", "short")],
        )
        .await;
    assert!(wrong.body.contains("Your current password is not right"));
    assert!(wrong.body.contains("at least 12 characters"));
    let new = "another long password";
    let ok = desk
        .post(
            "/account/password",
            &[("csrf", &token), ("current", PASSWORD), ("new", new)],
        )
        .await;
    assert!(ok.body.contains("Your password has been changed"));
    assert_eq!(desk.get("/").await.status, 200, "this session carries on");
    assert_eq!(
        phone.get("/").await.location(),
        Some("/login"),
        "the other ends"
    );
    assert_eq!(Browser::new(&app).sign_in("manager", new).await.status, 303);
    assert_eq!(
        Browser::new(&app).sign_in("manager", PASSWORD).await.status,
        200
    );
}

#[tokio::test]
async fn many_failures_from_one_address_make_it_wait() {
    let t = TestDb::sqlite().await;
    let app = app(&t.db, Settings::default()).await;
    // Trying one password on many accounts (none of them locked by it).
    let mut b = Browser::new(&app);
    for i in 0..30 {
        let p = b.sign_in(&format!("guess{i}"), "Winter2026!!!").await;
        assert_eq!(p.status, 200);
    }
    let p = b.sign_in("trainer", PASSWORD).await;
    assert_eq!(p.status, 429, "the address waits, whatever the account");
    assert!(p.body.contains("too many failed sign-ins"));
}

#[tokio::test]
async fn an_account_an_admin_made_must_change_its_password_first() {
    let t = TestDb::sqlite().await;
    let app = app(&t.db, Settings::default()).await;
    let mut admin = Browser::new(&app);
    admin.sign_in("admin", PASSWORD).await;
    let token = admin.token().await;
    let add = admin
        .post(
            "/admin/users",
            &[
                ("csrf", &token),
                ("username", "newmanager"),
                ("display_name", "New Manager"),
                ("role", "service_manager"),
                ("service_ref", "S1"),
                ("password", "chosen by the admin"),
            ],
        )
        .await;
    assert_eq!(add.status, 303);
    // The admin knows the password, so it opens nothing until the person changes it.
    let mut b = Browser::new(&app);
    b.sign_in("newmanager", "chosen by the admin").await;
    for path in ["/", "/services/S1/clients", "/services/S1/audit"] {
        assert_eq!(
            b.get(path).await.location(),
            Some("/account/password"),
            "{path}"
        );
    }
    let form = b.get("/account/password").await;
    assert_eq!(form.status, 200);
    let changed = b
        .post(
            "/account/password",
            &[
                ("csrf", &form.csrf()),
                ("current", "chosen by the admin"),
                ("new", "only the manager knows"),
            ],
        )
        .await;
    assert!(changed.body.contains("Your password has been changed"));
    assert_eq!(b.get("/services/S1/clients").await.status, 200);
}

#[tokio::test]
async fn locked_and_unknown_accounts_read_the_same_and_names_are_not_logged() {
    let t = TestDb::sqlite().await;
    // Locked after three failures, before the address must wait (after five).
    let settings = Settings {
        lockout_after: 3,
        ..Settings::default()
    };
    let app = app(&t.db, settings).await;
    for _ in 0..3 {
        Browser::new(&app)
            .sign_in("manager", "not the password")
            .await;
    }
    let locked = Browser::new(&app).sign_in("manager", PASSWORD).await;
    let unknown = Browser::new(&app).sign_in("nobody-at-all", PASSWORD).await;
    let message = |body: &str| {
        let at = body.find("error-summary-title").unwrap();
        body[at..at + body[at..].find("</ul>").unwrap()].to_string()
    };
    assert_eq!(message(&locked.body), message(&unknown.body));
    let actors: Vec<String> =
        sqlx::query_scalar("SELECT actor FROM audit_log WHERE action = 'auth.login.failed'")
            .fetch_all(t.db.pool())
            .await
            .unwrap();
    assert!(
        !actors.iter().any(|a| a.contains("nobody")),
        "a typed name is not logged: {actors:?}"
    );
}

#[tokio::test]
async fn a_secret_stored_before_sealing_is_sealed_at_start_and_still_works() {
    let t = TestDb::sqlite().await;
    let secrets = tempfile::tempdir().unwrap();
    let settings = Settings {
        secrets_dir: secrets.path().to_path_buf(),
        ..Default::default()
    };
    common::dataset(&t.db).await;
    common::accounts(&t.db).await;
    let secret = dcrs_web::auth::new_totp_secret();
    sqlx::query("UPDATE users SET totp_secret = $1 WHERE username = 'manager'")
        .bind(secret.clone())
        .execute(t.db.pool())
        .await
        .unwrap();
    let app = dcrs_web::router(
        dcrs_web::App::new(t.db.clone(), settings.clone())
            .await
            .unwrap(),
    );
    let stored: String =
        sqlx::query_scalar("SELECT totp_secret FROM users WHERE username = 'manager'")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
    assert!(
        stored.starts_with("v1:") && !stored.contains(&secret),
        "sealed at start"
    );
    assert!(dcrs_web::sealed::key_path(secrets.path()).is_file());
    let mut b = Browser::new(&app);
    assert_eq!(
        b.sign_in("manager", PASSWORD).await.location(),
        Some("/login/second-factor")
    );
    let token = b.get("/login/second-factor").await.csrf();
    let done = b
        .post(
            "/login/second-factor",
            &[("csrf", &token), ("code", &code(&secret))],
        )
        .await;
    assert_eq!(
        done.location(),
        Some("/"),
        "the sealed secret still checks codes"
    );
    // With another key file the secret does not open: the sign-in stops, nothing leaks.
    let other = tempfile::tempdir().unwrap();
    let wrong_key = dcrs_web::router(
        dcrs_web::App::new(
            t.db.clone(),
            Settings {
                secrets_dir: other.path().to_path_buf(),
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    let mut c = Browser::new(&wrong_key);
    c.sign_in("manager", PASSWORD).await;
    let token = c.get("/login/second-factor").await.csrf();
    let refused = c
        .post(
            "/login/second-factor",
            &[("csrf", &token), ("code", &code(&secret))],
        )
        .await;
    assert_eq!(refused.status, 500);
    assert!(!refused.body.contains(&secret));
}

/// Signs in as if through a proxy that says the client's address is `forwarded`.
async fn sign_in_from(b: &mut Browser, forwarded: &str, username: &str, password: &str) -> u16 {
    let csrf = b.get("/login").await.csrf();
    b.post_with(
        "/login",
        &[
            ("csrf", &csrf),
            ("username", username),
            ("password", password),
        ],
        &[
            ("origin", "http://dcrs.test"),
            ("sec-fetch-site", "same-origin"),
            ("x-forwarded-for", forwarded),
        ],
    )
    .await
    .status
    .as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_throttle_counts_the_forwarded_address() {
    let t = TestDb::sqlite().await;
    let app = app(
        &t.db,
        Settings {
            behind_proxy: true,
            ..Default::default()
        },
    )
    .await;
    let mut b = Browser::new(&app);
    // A client that forges an address before the proxy's own is still counted by the
    // address the proxy appended last.
    for i in 0..30 {
        let forged = format!("10.0.0.{i}, 203.0.113.5");
        assert_eq!(
            sign_in_from(&mut b, &forged, &format!("guess{i}"), "Winter2026!!!").await,
            200
        );
    }
    assert_eq!(
        sign_in_from(&mut b, "203.0.113.5", "trainer", PASSWORD).await,
        429
    );
    // Someone else behind the same proxy is not held up by it.
    let mut other = Browser::new(&app);
    assert_eq!(
        sign_in_from(&mut other, "198.51.100.7", "trainer", PASSWORD).await,
        303
    );

    // Without the setting the header is ignored: the forged addresses do not spread the
    // failures out.
    let t2 = TestDb::sqlite().await;
    let plain = common::app(&t2.db, Settings::default()).await;
    let mut c = Browser::new(&plain);
    for i in 0..30 {
        sign_in_from(
            &mut c,
            &format!("192.0.2.{i}"),
            &format!("guess{i}"),
            "Winter2026!!!",
        )
        .await;
    }
    assert_eq!(
        sign_in_from(&mut c, "192.0.2.200", "trainer", PASSWORD).await,
        429
    );
}

/// Sets up a second factor for `username` through the pages and returns its secret.
async fn with_second_factor(app: &axum::Router, username: &str) -> String {
    let mut b = Browser::new(app);
    b.sign_in(username, PASSWORD).await;
    let setup = b.get("/account/second-factor").await;
    let secret = secret_on(&setup.body);
    let token = setup.csrf();
    let ok = b
        .post(
            "/account/second-factor",
            &[
                ("csrf", &token),
                ("secret", &secret),
                ("code", &code(&secret)),
            ],
        )
        .await;
    assert_eq!(ok.location(), Some("/"));
    secret
}

/// Signs the trainer in with the password and then `code`; the second step's answer.
async fn sign_in_with_code(app: &axum::Router, code: &str) -> common::Page {
    let mut b = Browser::new(app);
    assert_eq!(
        b.sign_in("trainer", PASSWORD).await.location(),
        Some("/login/second-factor")
    );
    let token = b.get("/login/second-factor").await.csrf();
    b.post("/login/second-factor", &[("csrf", &token), ("code", code)])
        .await
}

/// Makes the trainer's last accepted step forgotten, as time passing would.
async fn forget_last_step(db: &dcrs_store::Database) {
    sqlx::query("UPDATE users SET totp_last_step = NULL WHERE username = 'trainer'")
        .execute(db.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn wrong_security_codes_lock_the_account_even_with_correct_passwords_between() {
    each_backend!("wrong_codes_lock", |t| {
        let app = app(&t.db, Settings::default()).await;
        let secret = with_second_factor(&app, "trainer").await;
        // Each guess comes after a fresh sign-in with the right password, which must not
        // set the count of wrong codes back.
        for _ in 1..=5 {
            sign_in_with_code(&app, "000001").await;
        }
        // The sixth try: the right password is refused, the account is locked.
        let mut b = Browser::new(&app);
        let p = b.sign_in("trainer", PASSWORD).await;
        assert_eq!(p.status, 200, "{:?}", p.location());
        assert!(p.body.contains("locked"), "{}", p.body);
        // Even the right code cannot be used through a session made before the lock.
        let locked: Option<i64> =
            sqlx::query_scalar("SELECT locked_until FROM users WHERE username = 'trainer'")
                .fetch_one(t.db.pool())
                .await
                .unwrap();
        assert!(locked.is_some_and(|l| l > auth::now()));
        // When the lock runs out, the right password and code let the trainer in.
        sqlx::query("UPDATE users SET locked_until = $1 WHERE username = 'trainer'")
            .bind(auth::now() - 1)
            .execute(t.db.pool())
            .await
            .unwrap();
        forget_last_step(&t.db).await;
        let ok = sign_in_with_code(&app, &code(&secret)).await;
        assert_eq!(ok.location(), Some("/"));
    });
}

#[tokio::test]
async fn one_security_code_used_twice_at_once_lets_exactly_one_in() {
    each_backend!("one_code_twice", |t| {
        let app = app(&t.db, Settings::default()).await;
        let secret = with_second_factor(&app, "trainer").await;
        for round in 0..5 {
            // The step used in setup (or the last round) is moved back, as time would.
            forget_last_step(&t.db).await;
            let mut one = Browser::new(&app);
            let mut two = Browser::new(&app);
            one.sign_in("trainer", PASSWORD).await;
            two.sign_in("trainer", PASSWORD).await;
            let t1 = one.get("/login/second-factor").await.csrf();
            let t2 = two.get("/login/second-factor").await.csrf();
            let c = code(&secret);
            let f1 = [("csrf", t1.as_str()), ("code", c.as_str())];
            let f2 = [("csrf", t2.as_str()), ("code", c.as_str())];
            let (a, b) = tokio::join!(
                one.post("/login/second-factor", &f1),
                two.post("/login/second-factor", &f2),
            );
            let admitted = [a.location(), b.location()]
                .iter()
                .filter(|l| **l == Some("/"))
                .count();
            assert_eq!(admitted, 1, "round {round}");
        }
    });
}

#[tokio::test]
async fn one_person_guessing_cannot_lock_a_colleague_out() {
    let t = TestDb::sqlite().await;
    let settings = Settings {
        behind_proxy: true,
        ..Settings::default()
    };
    let app = app(&t.db, settings).await;
    // Someone at one address tries the manager's account ten times.
    let mut guesser = Browser::new(&app);
    let mut refused = 0;
    for _ in 0..10 {
        let p = guesser
            .sign_in_from("manager", "not the password", "198.51.100.7")
            .await;
        if p.status == 429 {
            refused += 1;
            assert!(p.body.contains("too many failed sign-ins to this account"));
        }
    }
    assert_eq!(refused, 5, "the address waits after five failures");
    // Even the right password from that address waits...
    let p = guesser
        .sign_in_from("manager", PASSWORD, "198.51.100.7")
        .await;
    assert_eq!(p.status, 429);
    // ...but the same address may sign in to another account,
    let p = Browser::new(&app)
        .sign_in_from("trainer", PASSWORD, "198.51.100.7")
        .await;
    assert_eq!(p.status, 303);
    // and the manager, at their own desk, is not locked out.
    let mut manager = Browser::new(&app);
    let p = manager
        .sign_in_from("manager", PASSWORD, "203.0.113.9")
        .await;
    assert_eq!(p.location(), Some("/"));
}

#[tokio::test]
async fn colleagues_signing_in_together_from_one_office_are_not_refused() {
    let t = TestDb::sqlite().await;
    let settings = Settings {
        behind_proxy: true,
        ..Settings::default()
    };
    let app = app(&t.db, settings).await;
    let names = ["trainer", "manager", "commissioner", "analyst", "admin"];
    let mut set = tokio::task::JoinSet::new();
    for i in 0..40 {
        let mut b = Browser::new(&app);
        set.spawn(async move {
            b.sign_in_from(names[i % names.len()], PASSWORD, "192.0.2.200")
                .await
                .status
                .as_u16()
        });
    }
    let codes: Vec<u16> = set.join_all().await;
    assert!(codes.iter().all(|c| *c == 303), "{codes:?}");
}

#[tokio::test]
async fn a_manager_can_release_a_trainer_locked_by_wrong_codes() {
    each_backend!("manager_unlocks", |t| {
        let app = app(&t.db, Settings::default()).await;
        let secret = with_second_factor(&app, "trainer").await;
        for _ in 0..5 {
            sign_in_with_code(&app, "000001").await;
        }
        let mut manager = Browser::new(&app);
        manager.sign_in("manager", PASSWORD).await;
        let staff = manager.get("/services/S1/staff").await;
        assert!(
            staff.body.contains("Locked after failed sign-ins"),
            "{}",
            staff.body
        );
        let id: i64 = sqlx::query_scalar("SELECT user_id FROM users WHERE username = 'trainer'")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        let token = staff.csrf();
        let done = manager
            .post(
                &format!("/services/S1/staff/{id}/unlock"),
                &[("csrf", &token)],
            )
            .await;
        assert_eq!(done.location(), Some("/services/S1/staff"));
        forget_last_step(&t.db).await;
        let ok = sign_in_with_code(&app, &code(&secret)).await;
        assert_eq!(ok.location(), Some("/"));
        let unlocks: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'user.unlock'")
                .fetch_one(t.db.pool())
                .await
                .unwrap();
        assert_eq!(unlocks, 1);
    });
}
