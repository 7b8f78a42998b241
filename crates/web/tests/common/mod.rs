//! What the web tests share: a two-service dataset, accounts of every role, and a
//! browser that keeps cookies and talks to the real router in-process.

#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::NaiveDate;
use dcrs_store::Database;
use dcrs_web::users::{NewUser, check, insert};
use dcrs_web::{App, Settings, auth, router};
use std::collections::HashMap;
use tower::ServiceExt;

/// Every account's password in the tests.
pub const PASSWORD: &str = "a long test password";

/// Two services commissioned by different organisations, a worker and a client in each.
pub async fn dataset(db: &Database) {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "organisations.csv",
            "org_ref,name,kind,ods_code\nO1,North PCT,pct,\nO2,South PCT,pct,\n",
        ),
        (
            "services.csv",
            "service_ref,name,commissioner_org_ref,areas_served,started_on,ended_on\n\
             S1,North Health Trainers,O1,E06000009,2008-01-01,\n\
             S2,South Health Trainers,O2,E06000018,2008-01-01,\n",
        ),
        (
            "workers.csv",
            "worker_ref,service_ref,display_name,role,sex,age_band,lives_in_area_served,home_imd_quintile,qualification,started_on,left_on,fte\n\
             W1,S1,Trainer one,health_trainer,female,35-44,yes,1,level3_certificate,2009-01-01,,1.0\n\
             W2,S2,Trainer two,health_trainer,male,25-34,no,,in_training,2009-01-01,,1.0\n",
        ),
        (
            "clients.csv",
            "client_ref,service_ref,given_name,family_name,nhs_number,date_of_birth,sex,ethnicity,postcode,gp_registered,gp_practice_code,employment,disability,consent_to_record,consent_to_share_with_gp\n\
             C1,S1,Ann,Northern,9000000017,1980-05-01,female,A,,yes,,employed,no,yes,yes\n\
             C2,S2,Bob,Southern,9000000025,1950-01-01,male,H,,no,,employed,no,yes,yes\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let options = dcrs_exchange::ImportOptions {
        dry_run: false,
        today: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        rules: Default::default(),
        actor: "test".into(),
        only_new: false,
    };
    let report = dcrs_exchange::import_dir(db, dir.path(), &options, |_| {})
        .await
        .unwrap();
    assert!(report.rejections.is_empty(), "{:?}", report.rejections);
}

/// An account: (user name, role, service, worker, organisation, analyst services).
pub type Account = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

/// The accounts.
pub const ACCOUNTS: [Account; 6] = [
    (
        "trainer",
        "health_trainer",
        Some("S1"),
        Some("W1"),
        None,
        None,
    ),
    ("manager", "service_manager", Some("S1"), None, None, None),
    ("commissioner", "commissioner", None, None, Some("O1"), None),
    ("analyst", "analyst", None, None, None, Some("S1")),
    ("analyst_all", "analyst", None, None, None, None),
    ("admin", "admin", None, None, None, None),
];

pub async fn accounts(db: &Database) {
    for (username, role, service, worker, org, services) in ACCOUNTS {
        let n = NewUser {
            username: username.into(),
            display_name: format!("Test {username}"),
            role: role.into(),
            service_ref: service.map(String::from),
            worker_ref: worker.map(String::from),
            org_ref: org.map(String::from),
            analyst_services: services.map(String::from),
            password: PASSWORD.into(),
        };
        add_account(db, &n).await;
    }
}

/// Imports a folder of dataset files as of 16 November 2026 (the pages' fixed day),
/// expecting every record to be accepted.
pub async fn import(db: &Database, dir: &std::path::Path) {
    let options = dcrs_exchange::ImportOptions {
        dry_run: false,
        today: NaiveDate::from_ymd_opt(2026, 11, 16).unwrap(),
        rules: Default::default(),
        actor: "test".into(),
        only_new: false,
    };
    let report = dcrs_exchange::import_dir(db, dir, &options, |_| {})
        .await
        .unwrap();
    assert!(report.rejections.is_empty(), "{:?}", report.rejections);
}

/// The example dataset's folder (`examples/dataset`).
pub fn examples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/dataset")
}

/// Stores an account as checked, its password not to be changed at first sign-in.
pub async fn add_account(db: &Database, n: &NewUser) {
    let u = check(db, n).await.unwrap().unwrap();
    let hash = auth::hash_password(n.password.clone()).await.unwrap();
    insert(db, &u, &hash, false).await.unwrap();
}

/// The application on a fresh database with the dataset and accounts.
pub async fn app(db: &Database, settings: Settings) -> Router {
    router(state(db, settings).await)
}

/// The moment the page tests take as now: a Monday morning in the past (16 November
/// 2026, 10:30 UTC), so that it is never the day a test runs.
pub const CLOCK: &str = "2026-11-16T10:30:00Z";

/// The application on a database the test filled itself, on the fixed clock
/// ([`CLOCK`]), with its keys in a folder of its own.
pub async fn app_at_clock(db: &Database) -> Router {
    let settings = Settings {
        clock: Some(CLOCK.parse().unwrap()),
        secrets_dir: tempfile::tempdir().unwrap().keep(),
        ..Settings::default()
    };
    router(App::new(db.clone(), settings).await.unwrap())
}

/// The application's state on a fresh database with the dataset and accounts.
pub async fn state(db: &Database, mut settings: Settings) -> App {
    dataset(db).await;
    accounts(db).await;
    if settings.secrets_dir == Settings::default().secrets_dir {
        // Keys made by the test go to a folder of its own, not the source tree.
        settings.secrets_dir = tempfile::tempdir().unwrap().keep();
    }
    App::new(db.clone(), settings).await.unwrap()
}

/// A response, read.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
    /// The body as it came (downloads).
    pub bytes: Vec<u8>,
}

impl Page {
    /// The value of the hidden CSRF field of the page's first form.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a token");
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }

    /// The fields the page's form sends as it stands: its inputs with their values (a
    /// radio button only when checked) and each select's chosen option.
    pub fn form_values(&self) -> Vec<(String, String)> {
        let attr = |tag: &str, name: &str| -> Option<String> {
            let key = format!(" {name}=\"");
            let at = tag.find(&key)? + key.len();
            // As a browser reads the attribute: askama's five escapes undone, `&` last.
            let raw = &tag[at..at + tag[at..].find('"')?];
            Some(
                raw.replace("&#39;", "'")
                    .replace("&#34;", "\"")
                    .replace("&#60;", "<")
                    .replace("&#62;", ">")
                    .replace("&#38;", "&"),
            )
        };
        let page = &self.body;
        let form = &page[page
            .find("<form method=\"post\" action=\"/services")
            .expect("a form")..];
        let mut out = Vec::new();
        for part in form.split("<input").skip(1) {
            let tag = &part[..part.find('>').unwrap()];
            if tag.contains("type=\"radio\"") && !tag.contains(" checked") {
                continue;
            }
            if let Some(name) = attr(tag, "name") {
                out.push((name, attr(tag, "value").unwrap_or_default()));
            }
        }
        for part in form.split("<select").skip(1) {
            let tag = &part[..part.find('>').unwrap()];
            let body = &part[..part.find("</select>").unwrap()];
            let chosen = body
                .split("<option")
                .skip(1)
                .find(|o| o.contains(" selected"))
                .and_then(|o| attr(o, "value"))
                .unwrap_or_default();
            out.push((attr(tag, "name").unwrap(), chosen));
        }
        out
    }

    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }
}

/// A browser: keeps cookies, sends same-origin requests.
#[derive(Clone)]
pub struct Browser {
    pub app: Router,
    pub cookies: HashMap<String, String>,
}

impl Browser {
    pub fn new(app: &Router) -> Browser {
        Browser {
            app: app.clone(),
            cookies: HashMap::new(),
        }
    }

    pub async fn send(&mut self, req: Request<Body>) -> Page {
        let res = self.app.clone().oneshot(req).await.unwrap();
        for v in res.headers().get_all(header::SET_COOKIE) {
            let text = v.to_str().unwrap();
            let (kv, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 10 << 20)
            .await
            .unwrap();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes: bytes.to_vec(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = Request::get(path)
            .header(header::HOST, "dcrs.test")
            .header(header::COOKIE, self.cookie_header())
            .body(Body::empty())
            .unwrap();
        self.send(req).await
    }

    /// A form post from one of our pages (same origin).
    /// Opens a form and saves it with its own values, some replaced.
    pub async fn save_form(&mut self, path: &str, replace: &[(&str, &str)]) -> Page {
        let form = self.get(path).await;
        assert_eq!(form.status, 200, "{path}");
        let mut values = form.form_values();
        for (name, value) in replace {
            match values.iter_mut().find(|(n, _)| n == name) {
                Some(v) => v.1 = value.to_string(),
                None => values.push((name.to_string(), value.to_string())),
            }
        }
        values.push(("do".into(), "save".into()));
        let pairs: Vec<(&str, &str)> = values
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        self.post(path, &pairs).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_with(
            path,
            form,
            &[
                ("origin", "http://dcrs.test"),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await
    }

    pub async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> Page {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut req = Request::post(path)
            .header(header::HOST, "dcrs.test")
            .header(header::COOKIE, self.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }

    /// Signs in with the password; returns the response to the sign-in form.
    pub async fn sign_in(&mut self, username: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let token = form.csrf();
        self.post(
            "/login",
            &[
                ("csrf", &token),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Signs in from a network address (the app must be set `behind_proxy`, as behind a
    /// proxy that appends the client's address to `X-Forwarded-For`).
    pub async fn sign_in_from(&mut self, username: &str, password: &str, address: &str) -> Page {
        let form = self.get("/login").await;
        let token = form.csrf();
        self.post_with(
            "/login",
            &[
                ("csrf", &token),
                ("username", username),
                ("password", password),
            ],
            &[
                ("origin", "http://dcrs.test"),
                ("sec-fetch-site", "same-origin"),
                ("x-forwarded-for", address),
            ],
        )
        .await
    }

    /// The CSRF token of the signed-in session, from the home page.
    pub async fn token(&mut self) -> String {
        self.get("/").await.csrf()
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The folder of the browser tests' scripts and packages.
pub fn browser_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Whether chromium, Node.js and the browser test packages are here. When they are not,
/// the test fails in CI (which installs them) and elsewhere is reported skipped by name.
pub fn browser_ready(test: &str) -> bool {
    if dcrs_testkit::tool(test, "chromium", "Debian's chromium").is_none()
        || dcrs_testkit::tool(test, "node", "Node.js").is_none()
    {
        return false;
    }
    let packages = ["axe-core", "playwright-core"];
    if packages
        .iter()
        .all(|p| browser_dir().join("node_modules").join(p).is_dir())
    {
        return true;
    }
    let why = "the browser test packages are not installed (npm ci in crates/web/tests/browser)";
    assert!(
        !dcrs_testkit::in_ci(),
        "{test}: {why}; .ci/run installs them"
    );
    dcrs_testkit::report_skip(test, why);
    false
}
