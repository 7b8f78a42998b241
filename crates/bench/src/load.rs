//! Load benchmark of the web application (not a test; not in CI).
//!
//! `dcrs-bench-load --database URL [--users 200] [--seconds 120] [--dcrs target/release/dcrs]
//! [--cpu-requests 300]`
//!
//! The database must hold the demonstration data (`dcrs demo --no-serve`). The harness
//! adds one account per simulated user (80% health trainers, each linked to a worker
//! with open episodes; 20% service managers), starts `dcrs serve` as its own process on a
//! free port, and runs the users concurrently from this process: each signs in (users
//! arrive over five seconds); when all have signed in the clock starts, and each user,
//! starting at its own point of the first second, pauses one second between requests
//! until the time is up. The server runs `--behind-proxy` and each user sends its own
//! `X-Forwarded-For` address, as users behind a proxy would, so that 200 sign-ins from
//! one machine do not meet the sign-in throttle (which is per address). A trainer alternately opens
//! their caseload and saves a session on one of their open episodes; a manager opens the
//! service dashboard (its audit trail instead with `DCRS_LOAD_NO_DASHBOARD=1`). It prints p50, p99 and the largest latency by kind, errors,
//! throughput and the server's peak memory (VmHWM), and as a baseline the same figures
//! for a static page (the stylesheet) measured in the same run. It prints the CPU
//! seconds the server used in the measured window (and, on PostgreSQL, the database's
//! processes), and then, with the users stopped, the CPU milliseconds of each kind of
//! request, measured by one client sending `--cpu-requests` of that kind alone and
//! reading the processes' CPU time from `/proc` before and after. With `DCRS_LOAD_SLOW=1`
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
    cpu_requests: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        database: String::new(),
        users: 200,
        seconds: 120,
        dcrs: "target/release/dcrs".into(),
        cpu_requests: 300,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--database" => a.database = v,
            "--users" => a.users = v.parse()?,
            "--seconds" => a.seconds = v.parse()?,
            "--dcrs" => a.dcrs = v,
            "--cpu-requests" => a.cpu_requests = v.parse()?,
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
    /// The address a trusted proxy would append for this user.
    forwarded: String,
}

impl Client {
    fn new(addr: &str, index: usize) -> Client {
        Client {
            addr: addr.to_string(),
            conn: None,
            cookies: HashMap::new(),
            // 10.x.y.z: one private address per simulated user.
            forwarded: format!(
                "10.{}.{}.{}",
                (index >> 16) & 255,
                (index >> 8) & 255,
                index & 255
            ),
        }
    }
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
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nOrigin: http://{}\r\nSec-Fetch-Site: same-origin\r\nX-Forwarded-For: {}\r\n",
            self.addr,
            cookie.join("; "),
            self.addr,
            self.forwarded
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
    sign_in_errors: u64,
}

/// When the measured phase starts: every user has signed in.
struct Start {
    barrier: tokio::sync::Barrier,
    seconds: u64,
    users: usize,
}

/// The kinds of request a simulated user makes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Caseload,
    SaveSession,
    Dashboard,
    AuditTrail,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Caseload => "trainer: caseload",
            Kind::SaveSession => "trainer: save a session",
            Kind::Dashboard => "manager: dashboard",
            Kind::AuditTrail => "manager: audit trail",
        }
    }

    /// The `i`th request of a user: a trainer alternates caseload and saving a session, a
    /// manager opens the dashboard (or, with `DCRS_LOAD_NO_DASHBOARD=1`, the audit trail,
    /// to tell the dashboard's cost from the rest).
    fn of(a: &Account, i: usize) -> Kind {
        if !a.trainer {
            if std::env::var("DCRS_LOAD_NO_DASHBOARD").is_ok_and(|v| v == "1") {
                Kind::AuditTrail
            } else {
                Kind::Dashboard
            }
        } else if i.is_multiple_of(2) || a.episodes.is_empty() {
            Kind::Caseload
        } else {
            Kind::SaveSession
        }
    }
}

/// Makes one request of a kind (a session save is the form and then its post); whether
/// it was answered as it should be.
async fn request(c: &mut Client, a: &Account, kind: Kind, i: usize) -> bool {
    match kind {
        Kind::AuditTrail => c
            .send("GET", &format!("/services/{}/audit", a.service), None)
            .await
            .is_ok_and(|r| r.status == 200),
        Kind::Dashboard => c
            .send("GET", &format!("/services/{}/dashboard", a.service), None)
            .await
            .is_ok_and(|r| r.status == 200),
        Kind::Caseload => c
            .send("GET", &format!("/services/{}/caseload", a.service), None)
            .await
            .is_ok_and(|r| r.status == 200),
        Kind::SaveSession => {
            let ep = &a.episodes[(i / 2) % a.episodes.len()];
            let path = format!("/services/{}/episodes/{}/session", a.service, ep);
            match c.send("GET", &path, None).await {
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
            }
        }
    }
}

async fn sign_in(c: &mut Client, a: &Account) -> anyhow::Result<()> {
    let form = c.send("GET", "/login", None).await?;
    let body = format!(
        "csrf={}&username={}&password={}",
        token(&form.body),
        enc(&a.username),
        enc(PASSWORD)
    );
    let r = c.send("POST", "/login", Some(&body)).await?;
    anyhow::ensure!(r.status == 303, "sign-in gave {}", r.status);
    Ok(())
}

async fn user(addr: String, a: Account, index: usize, start: Arc<Start>, tally: Arc<Mutex<Tally>>) {
    let mut c = Client::new(&addr, index);
    // Sign in (timed apart from the figures: it is Argon2 by design).
    let signing = Instant::now();
    let signed = sign_in(&mut c, &a).await;
    let sign_in_ms = signing.elapsed().as_secs_f64() * 1000.0;
    {
        let mut t = tally.lock().await;
        t.sign_ins.push(sign_in_ms);
        if let Err(e) = &signed {
            t.sign_in_errors += 1;
            eprintln!("{}: {e}", a.username);
        }
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
    let mut i = 0usize;
    while Instant::now() < deadline {
        let started = Instant::now();
        let kind = Kind::of(&a, i);
        let ok = request(&mut c, &a, kind, i).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        {
            let mut t = tally.lock().await;
            t.latencies.entry(kind.name()).or_default().push(ms);
            if !ok {
                *t.errors.entry(kind.name()).or_default() += 1;
            }
            if ms > 100.0 && std::env::var("DCRS_LOAD_SLOW").is_ok() {
                let second = start.seconds as f64 - (deadline - started).as_secs_f64();
                eprintln!("slow: {} at {second:.3} s took {ms:.0} ms", kind.name());
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

/// CPU time (user and system, in seconds) of a process and its threads, from
/// `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in brackets and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second())
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// CPU seconds of every PostgreSQL process on this machine (the database's share of the
/// work; 0 when none runs here).
fn postgres_cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(cpu_seconds)
        .sum()
}

/// The server's and the database's CPU seconds so far.
fn cpu_now(server: u32, postgres: bool) -> (f64, f64) {
    (
        cpu_seconds(server).unwrap_or(f64::NAN),
        if postgres {
            postgres_cpu_seconds()
        } else {
            0.0
        },
    )
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
    let mut c = Client::new(addr, 0);
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
        .args([
            "--database",
            &a.database,
            "serve",
            "--bind",
            &addr,
            "--behind-proxy",
        ])
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
    let postgres = a.database.starts_with("postgres");
    // Kept for the CPU phase after the run: a trainer with open episodes and a manager.
    let cpu_trainer = accounts
        .iter()
        .find(|x| x.trainer && !x.episodes.is_empty())
        .cloned();
    let cpu_manager = accounts.iter().find(|x| !x.trainer).cloned();
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
    let cpu_before = cpu_now(server.id(), postgres);
    for t in tasks {
        t.await?;
    }
    let elapsed = measured.elapsed().as_secs_f64();
    let cpu_after = cpu_now(server.id(), postgres);
    // CPU per kind of request: one client alone, with the users stopped.
    let mut per_kind = Vec::new();
    for (acc, kinds) in [
        (&cpu_trainer, vec![Kind::Caseload, Kind::SaveSession]),
        (&cpu_manager, vec![Kind::Dashboard, Kind::AuditTrail]),
    ] {
        let Some(acc) = acc else { continue };
        let mut c = Client::new(&addr, 60_000);
        sign_in(&mut c, acc).await?;
        for kind in kinds {
            // A few first, so that statements are prepared and pages cached as in the run.
            for i in 0..5 {
                request(&mut c, acc, kind, 2 * i + 1).await;
            }
            let before = cpu_now(server.id(), postgres);
            let clock = Instant::now();
            let mut failed = 0;
            for i in 0..a.cpu_requests {
                if !request(&mut c, acc, kind, 2 * i + 1).await {
                    failed += 1;
                    c.conn = None;
                }
            }
            let wall = clock.elapsed().as_secs_f64();
            let after = cpu_now(server.id(), postgres);
            let n = a.cpu_requests.max(1) as f64;
            per_kind.push((
                kind.name(),
                (after.0 - before.0) * 1000.0 / n,
                (after.1 - before.1) * 1000.0 / n,
                wall * 1000.0 / n,
                failed,
            ));
        }
    }
    let memory = peak_memory(server.id()).unwrap_or_else(|| "not read".into());
    let _ = server.kill();
    let _ = server.wait();
    let t = tally.lock().await;
    let backend = if postgres { "PostgreSQL" } else { "SQLite" };
    println!(
        "{backend}: {} users for {} s, one second between requests",
        a.users, a.seconds
    );
    let mut sign_ins = t.sign_ins.clone();
    sign_ins.sort_by(f64::total_cmp);
    println!(
        "sign-in phase (before the clock): {signed_in:.1} s for {} sign-ins, each p50 {:.0} ms, p99 {:.0} ms; {} failed",
        sign_ins.len(),
        percentile(&sign_ins, 0.5),
        percentile(&sign_ins, 0.99),
        t.sign_in_errors
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
    let server_cpu = cpu_after.0 - cpu_before.0;
    let db_cpu = cpu_after.1 - cpu_before.1;
    writeln!(
        out,
        "CPU in the measured window: server {server_cpu:.1} s ({:.0}% of one core){}; {:.2} ms of server CPU a request",
        server_cpu * 100.0 / elapsed,
        if postgres {
            format!(
                ", PostgreSQL {db_cpu:.1} s ({:.0}% of one core)",
                db_cpu * 100.0 / elapsed
            )
        } else {
            String::new()
        },
        server_cpu * 1000.0 / all.len().max(1) as f64
    )?;
    writeln!(
        out,
        "CPU a request by kind ({} requests each, one client alone):",
        a.cpu_requests
    )?;
    writeln!(
        out,
        "{:<26} {:>11} {:>11} {:>9} {:>7}",
        "request", "server ms", "database ms", "wall ms", "errors"
    )?;
    for (k, server_ms, db_ms, wall_ms, failed) in per_kind {
        writeln!(
            out,
            "{k:<26} {server_ms:>11.2} {:>11} {wall_ms:>9.2} {failed:>7}",
            if postgres {
                format!("{db_ms:.2}")
            } else {
                "in server".to_string()
            }
        )?;
    }
    writeln!(
        out,
        "baseline (the stylesheet, one client, same run): p50 {base_p50:.2} ms, p99 {base_p99:.2} ms; all requests' p50 is {:.0}x it",
        percentile(&all, 0.5) / base_p50
    )?;
    Ok(())
}
