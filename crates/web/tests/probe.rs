//! Findings of the independent probe (issue 29) that concern the web application: a NUL
//! in a page address, and connections that never finish a request.

use dcrs_testkit::each_backend;
use dcrs_web::Settings;

mod common;
use common::{Browser, PASSWORD, app};

#[tokio::test]
async fn a_nul_in_a_page_address_or_form_is_a_bad_request_not_a_server_error() {
    each_backend!("nul_in_address", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut b = Browser::new(&app);
        b.sign_in("manager", PASSWORD).await;
        for path in [
            "/services/%00/clients",
            "/services/S1/clients/%00",
            "/services/S1/episodes/%00",
            "/services/S1/caseload?q=%00",
            "/services/S1/reports/activity?period=%00",
            "/reports/view?kind=activity&period=2010-11&services=S1%00",
            "/services/S1%00/dashboard",
        ] {
            let p = b.get(path).await;
            assert!(
                p.status == 400 || p.status == 404,
                "{path}: {} {}",
                p.status,
                p.body
            );
        }
        // A NUL typed into a form (the caseload search) is refused the same way.
        let token = b.token().await;
        let p = b
            .post("/services/S1/caseload", &[("csrf", &token), ("q", "Ann\0")])
            .await;
        assert!(
            p.status == 400 || p.status == 200,
            "{} {}",
            p.status,
            p.body
        );
        // And the service still works.
        assert_eq!(b.get("/services/S1/caseload").await.status, 200);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_cut_off_and_idle_connections_do_not_block_others() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    let t = dcrs_testkit::TestDb::sqlite().await;
    let settings = Settings {
        header_timeout: Duration::from_secs(1),
        ..Settings::default()
    };
    let state = common::state(&t.db, settings).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(dcrs_web::serve_on(state, listener));

    // Half a request line, then nothing: the server hangs up after the header timeout.
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /lo").await.unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    // The guard only stops a hung test; the assertion is on the time taken.
    tokio::time::timeout(Duration::from_secs(30), half.read_to_end(&mut rest))
        .await
        .expect("the server closes a connection that never finishes its request")
        .ok();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "closed after {took:?}, with a 1 s header timeout"
    );

    // A thousand connections that send nothing...
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // ...do not stop a normal request.
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /login HTTP/1.1\r\nHost: dcrs.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), c.read_to_end(&mut answer))
        .await
        .expect("a normal request is answered")
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
    // And the idle ones are closed in their turn.
    let mut first = idle.swap_remove(0);
    let mut nothing = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), first.read_to_end(&mut nothing))
        .await
        .expect("an idle connection is closed")
        .ok();
}
