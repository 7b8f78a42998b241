//! Load benchmark of the web application (not a test; not in CI).
//!
//! `dcrs-bench-load --database URL [--users 200] [--seconds 120] [--dcrs target/release/dcrs]`
//!
//! The database must hold the demonstration data (`dcrs demo --no-serve`). The harness
//! adds one account per simulated user (80% health trainers, each linked to a worker
//! with open episodes; 20% service managers), starts `dcrs serve` as its own process on a
//! free port, and runs the users concurrently from this process: each signs in (users
//! arrive over five seconds); when all have signed in the clock starts, and each user,
//! starting at its own point of the first second, pauses one second between requests
//! until the time is up. A trainer alternately opens
//! their caseload and saves a session on one of their open episodes; a manager opens the
//! service dashboard (its audit trail instead with `DCRS_LOAD_NO_DASHBOARD=1`). It prints p50, p99 and the largest latency by kind, errors,
//! throughput and the server's peak memory (VmHWM), and as a baseline the same figures
//! for a static page (the stylesheet) measured in the same run. With `DCRS_LOAD_SLOW=1`
//! it also prints each request over 100 ms with the second it started in, to show
//! whether slow requests come together (a stall) or alone.

use anyhow::{Context, bail};
use dcrs_store::Database;
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PASSWORD: &str = "load benchmark password";

struct Args {
    database: String,
    users: usize,
    seconds: u64,
    dcrs: String,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        database: String::new(),
        users: 200,
        seconds: 120,
        dcrs: "target/release/dcrs".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--database" => a.database = v,
            "--users" => a.users = v.parse()?,
            "--seconds" => a.seconds = v.parse()?,
            "--dcrs" => a.dcrs = v,
            _ => bail!("unknown option {k}"),
        }
    }
    if a.database.is_empty() {
        bail!("--database URL is needed (a database with the demonstration data)");
    }
    Ok(a)
}

/// A simulated user's account and what it works on.
#[derive(Clone)]
struct Account {
    username: String,
    trainer: bool,
    service: String,
    worker: String,
    episodes: Vec<String>,
}

async fn accounts(db: &Database, n: usize) -> anyhow::Result<Vec<Account>> {
    // Workers with open episodes, spread over the services.
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT s.service_ref, w.worker_ref, e.episode_ref FROM episodes e \
         JOIN workers w ON w.service_id = e.service_id AND w.worker_id = e.lead_worker_id \
         JOIN services s ON s.service_id = e.service_id \
         WHERE e.closed_on IS NULL AND e.kind = 'full' ORDER BY s.service_ref, w.worker_ref, e.episode_ref",
    )
    .fetch_all(db.pool())
    .await?;
    let mut by_worker: Vec<((String, String), Vec<String>)> = Vec::new();
    for (s, w, e) in rows {
        match by_worker.last_mut() {
            Some((k, v)) if k.0 == s && k.1 == w => v.push(e),
            _ => by_worker.push(((s, w), vec![e])),
        }
    }
    if by_worker.is_empty() {
        bail!("no open episodes: load the demonstration data first (dcrs demo --no-serve)");
    }
    let services: Vec<String> = {
        let mut v: Vec<String> = by_worker.iter().map(|w| w.0.0.clone()).collect();
        v.dedup();
        v
    };
    let hash = dcrs_web::auth::hash_password(PASSWORD.into()).await?;
    let mut out = Vec::new();
    for i in 0..n {
        let trainer = i % 5 != 4;
        let (service, worker, episodes) = if trainer {
            let w = &by_worker[i % by_worker.len()];
            (w.0.0.clone(), w.0.1.clone(), w.1.clone())
        } else {
            (
                services[i % services.len()].clone(),
                String::new(),
                Vec::new(),
            )
        };
        let username = format!("load-{i:03}");
        sqlx::query("DELETE FROM web_sessions WHERE user_id IN (SELECT user_id FROM users WHERE username = $1)")
            .bind(username.clone())
            .execute(db.pool())
            .await?;
        sqlx::query(
            "DELETE FROM drafts WHERE user_id IN (SELECT user_id FROM users WHERE username = $1)",
        )
        .bind(username.clone())
        .execute(db.pool())
        .await?;
        sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username.clone())
            .execute(db.pool())
            .await?;
        let n = dcrs_web::users::NewUser {
            username: username.clone(),
            display_name: format!("Load {i}"),
            role: if trainer {
                "health_trainer"
            } else {
                "service_manager"
            }
            .into(),
            service_ref: Some(service.clone()),
            worker_ref: trainer.then(|| worker.clone()),
            org_ref: None,
            analyst_services: None,
            password: PASSWORD.into(),
        };
        let u = match dcrs_web::users::check(db, &n).await? {
            Ok(u) => u,
            Err(e) => bail!("account {username}: {e:?}"),
        };
        dcrs_web::users::insert(db, &u, &hash, false).await?;
        out.push(Account {
            username,
            trainer,
            service,
            worker,
            episodes,
        });
    }
    Ok(out)
}

/// A tiny HTTP/1.1 client on one kept-alive connection, with cookies.
struct Client {
    addr: String,
    conn: Option<BufReader<TcpStream>>,
    cookies: HashMap<String, String>,
}

struct Reply {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Client {
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&str>,
    ) -> anyhow::Result<Reply> {
        if self.conn.is_none() {
            self.conn = Some(BufReader::new(TcpStream::connect(&self.addr).await?));
        }
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nOrigin: http://{}\r\nSec-Fetch-Site: same-origin\r\n",
            self.addr,
            cookie.join("; "),
            self.addr
        );
        if let Some(body) = form {
            req.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        let conn = self.conn.as_mut().expect("connected");
        conn.get_mut().write_all(req.as_bytes()).await?;
        let mut line = String::new();
        conn.read_line(&mut line).await?;
        let status: u16 = line.split(' ').nth(1).context("a status line")?.parse()?;
        let mut length = 0usize;
        let mut location = None;
        loop {
            line.clear();
            conn.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').context("a header")?;
            let v = v.trim();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => length = v.parse()?,
                "location" => location = Some(v.to_string()),
                "set-cookie" => {
                    let kv = v.split(';').next().unwrap_or("");
                    if let Some((k, val)) = kv.split_once('=') {
                        if v.contains("Max-Age=0") {
                            self.cookies.remove(k);
                        } else {
                            self.cookies.insert(k.to_string(), val.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        let mut body = vec![0u8; length];
        conn.read_exact(&mut body).await?;
        Ok(Reply {
            status,
            location,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

fn token(body: &str) -> String {
    body.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_string()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Default)]
struct Tally {
    latencies: HashMap<&'static str, Vec<f64>>,
    errors: HashMap<&'static str, u64>,
    sign_ins: Vec<f64>,
}

/// When the measured phase starts: every user has signed in.
struct Start {
    barrier: tokio::sync::Barrier,
    seconds: u64,
    users: usize,
}

async fn user(addr: String, a: Account, index: usize, start: Arc<Start>, tally: Arc<Mutex<Tally>>) {
    let mut c = Client {
        addr,
        conn: None,
        cookies: HashMap::new(),
    };
    let record = |kind: &'static str, ms: f64, ok: bool, t: &mut Tally| {
        t.latencies.entry(kind).or_default().push(ms);
        if !ok {
            *t.errors.entry(kind).or_default() += 1;
        }
    };
    // Sign in (timed apart from the figures: it is Argon2 by design).
    let signing = Instant::now();
    let signed = async {
        let form = c.send("GET", "/login", None).await?;
        let body = format!(
            "csrf={}&username={}&password={}",
            token(&form.body),
            enc(&a.username),
            enc(PASSWORD)
        );
        let r = c.send("POST", "/login", Some(&body)).await?;
        anyhow::ensure!(r.status == 303, "sign-in gave {}", r.status);
        anyhow::Ok(())
    }
    .await;
    let sign_in_ms = signing.elapsed().as_secs_f64() * 1000.0;
    tally.lock().await.sign_ins.push(sign_in_ms);
    if let Err(e) = &signed {
        let mut t = tally.lock().await;
        record("sign-in", 0.0, false, &mut t);
        eprintln!("{}: {e}", a.username);
    }
    // The clock starts when every user has signed in, so that the figures are of
    // signed-in work and not of 200 Argon2 checks at once; each user then starts at
    // its own point of the first second, as people do not click in step.
    start.barrier.wait().await;
    if signed.is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(start.seconds);
    tokio::time::sleep(Duration::from_millis(
        (index as u64 * 1000) / start.users.max(1) as u64,
    ))
    .await;
    // DCRS_LOAD_NO_DASHBOARD=1: managers read the audit trail instead, to tell the
    // dashboard's cost from the rest.
    let no_dashboard = std::env::var("DCRS_LOAD_NO_DASHBOARD").is_ok_and(|v| v == "1");
    let mut i = 0usize;
    while Instant::now() < deadline {
        let started = Instant::now();
        let (kind, ok) = if !a.trainer && no_dashboard {
            let r = c
                .send("GET", &format!("/services/{}/audit", a.service), None)
                .await;
            ("manager: audit trail", r.is_ok_and(|r| r.status == 200))
        } else if !a.trainer {
            let r = c
                .send("GET", &format!("/services/{}/dashboard", a.service), None)
                .await;
            ("manager: dashboard", r.is_ok_and(|r| r.status == 200))
        } else if i.is_multiple_of(2) || a.episodes.is_empty() {
            let r = c
                .send("GET", &format!("/services/{}/caseload", a.service), None)
                .await;
            ("trainer: caseload", r.is_ok_and(|r| r.status == 200))
        } else {
            let ep = &a.episodes[(i / 2) % a.episodes.len()];
            let path = format!("/services/{}/episodes/{}/session", a.service, ep);
            let form = c.send("GET", &path, None).await;
            let ok = match form {
                Ok(f) if f.status == 200 => {
                    let today = chrono::Utc::now().date_naive().to_string();
                    let body = format!(
                        "csrf={}&do=save&held_on={today}&attended=yes&purpose=support&mode=telephone&venue=remote&duration_min=20",
                        token(&f.body)
                    );
                    c.send("POST", &path, Some(&body))
                        .await
                        .is_ok_and(|r| r.status == 303 && r.location.is_some())
                }
                _ => false,
            };
            ("trainer: save a session", ok)
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        {
            let mut t = tally.lock().await;
            record(kind, ms, ok, &mut t);
            if ms > 100.0 && std::env::var("DCRS_LOAD_SLOW").is_ok() {
                let second = start.seconds as f64 - (deadline - started).as_secs_f64();
                eprintln!("slow: {kind} at {second:.3} s took {ms:.0} ms");
            }
        }
        if !ok {
            c.conn = None;
        }
        i += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let _ = a.worker;
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn peak_memory(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let get = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| l[k.len()..].trim().to_string())
    };
    Some(format!("peak {} (now {})", get("VmHWM:")?, get("VmRSS:")?))
}

async fn static_baseline(addr: &str, n: usize) -> anyhow::Result<(f64, f64)> {
    let mut c = Client {
        addr: addr.to_string(),
        conn: None,
        cookies: HashMap::new(),
    };
    let mut v = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let r = c.send("GET", "/static/app.css", None).await?;
        anyhow::ensure!(r.status == 200);
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    v.sort_by(f64::total_cmp);
    Ok((percentile(&v, 0.5), percentile(&v, 0.99)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let db = Database::connect(&a.database).await?;
    let setup = Instant::now();
    let accounts = accounts(&db, a.users).await?;
    println!(
        "{} accounts ready in {:.1} s",
        accounts.len(),
        setup.elapsed().as_secs_f64()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = std::process::Command::new(&a.dcrs)
        .args(["--database", &a.database, "serve", "--bind", &addr])
        .stdout(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", a.dcrs))?;
    for _ in 0..100 {
        if TcpStream::connect(&addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (base_p50, base_p99) = static_baseline(&addr, 200).await?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let start = Arc::new(Start {
        barrier: tokio::sync::Barrier::new(accounts.len() + 1),
        seconds: a.seconds,
        users: a.users,
    });
    let mut tasks = Vec::new();
    for acc in accounts {
        // Users arrive over the first five seconds.
        let delay = Duration::from_millis((tasks.len() as u64 * 5000) / a.users.max(1) as u64);
        let addr = addr.clone();
        let tally = tally.clone();
        let start = start.clone();
        let index = tasks.len();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            user(addr, acc, index, start, tally).await;
        }));
    }
    start.barrier.wait().await;
    let signed_in = started.elapsed().as_secs_f64();
    let measured = Instant::now();
    for t in tasks {
        t.await?;
    }
    let elapsed = measured.elapsed().as_secs_f64();
    let memory = peak_memory(server.id()).unwrap_or_else(|| "not read".into());
    let _ = server.kill();
    let _ = server.wait();
    let t = tally.lock().await;
    let backend = if a.database.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "{backend}: {} users for {} s, one second between requests",
        a.users, a.seconds
    );
    let mut sign_ins = t.sign_ins.clone();
    sign_ins.sort_by(f64::total_cmp);
    println!(
        "sign-in phase (before the clock): {signed_in:.1} s for {} sign-ins, each p50 {:.0} ms, p99 {:.0} ms",
        sign_ins.len(),
        percentile(&sign_ins, 0.5),
        percentile(&sign_ins, 0.99)
    );
    let mut all: Vec<f64> = Vec::new();
    let mut errors = 0;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<26} {:>8} {:>9} {:>9} {:>9} {:>7}",
        "request", "count", "p50 ms", "p99 ms", "max ms", "errors"
    )?;
    let mut kinds: Vec<_> = t.latencies.keys().copied().collect();
    kinds.sort();
    for k in kinds {
        let mut v = t.latencies[k].clone();
        v.sort_by(f64::total_cmp);
        let e = t.errors.get(k).copied().unwrap_or(0);
        errors += e;
        writeln!(
            out,
            "{k:<26} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>7}",
            v.len(),
            percentile(&v, 0.5),
            percentile(&v, 0.99),
            v.last().copied().unwrap_or(f64::NAN),
            e
        )?;
        all.extend(v);
    }
    all.sort_by(f64::total_cmp);
    writeln!(
        out,
        "{:<26} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>7}",
        "all",
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(f64::NAN),
        errors
    )?;
    writeln!(
        out,
        "throughput {:.1} requests/s; server memory {memory}",
        all.len() as f64 / elapsed
    )?;
    writeln!(
        out,
        "baseline (the stylesheet, one client, same run): p50 {base_p50:.2} ms, p99 {base_p99:.2} ms; all requests' p50 is {:.0}x it",
        percentile(&all, 0.5) / base_p50
    )?;
    Ok(())
}
