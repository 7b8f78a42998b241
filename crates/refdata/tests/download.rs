//! `dcrs refdata download` against a tiny HTTP server on 127.0.0.1 that serves copies
//! of the files in `../shared/data` at the publishers' address paths: no machine here
//! reaches the publishers' hosts, so the base address is overridden.

use dcrs_refdata::download::{
    DownloadError, Downloaded, SOURCES, SUMS_FILE, Source, address, download,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// The shared directory's own checksums, path → SHA-256: computed independently of
/// the code under test.
fn shared_sums() -> HashMap<String, String> {
    let text = fs::read_to_string(shared().join("SHA256SUMS")).expect("shared SHA256SUMS");
    text.lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(h, p)| (p.to_string(), h.to_string()))
        .collect()
}

/// Files served for sources with no local copy: distinct contents, so a mix-up shows;
/// the first is gzip, so bytes must pass through untouched.
const STAND_INS: &[&str] = &[
    "postcode/postcode_lsoa11_england_S-Z.csv.gz",
    "nhs/nhs_ethnic_category_2001.csv",
    "census/ethnic_group_2011_census_18_categories.csv",
    "geography/lad_region_dec2018_lookup_england.csv",
    "geography/ltla_utla_apr2019_lookup_ew.csv",
    "census/census2011_ethnic_group_by_la_ew.csv",
    "imd/imd2019_lad19_quintile_population_england.csv",
    "postcode/postcode_district_centroids_gb.csv",
];

/// The local file served for each source (relative to the shared directory): the same
/// path, or the same path as CSV (the shared File 1 and File 6 are CSV copies of the
/// publisher's spreadsheets), or else a stand-in; the test is about the mechanism.
fn local_copies() -> Vec<String> {
    let mut stand_ins = STAND_INS.iter();
    let mut used = BTreeSet::new();
    SOURCES
        .iter()
        .map(|s| {
            let same = s.path.to_string();
            let as_csv = Path::new(s.path)
                .with_extension("csv")
                .to_string_lossy()
                .replace('\\', "/");
            let rel = if shared().join(&same).is_file() {
                same
            } else if shared().join(&as_csv).is_file() {
                as_csv
            } else {
                stand_ins
                    .by_ref()
                    .find(|f| !used.contains(**f))
                    .map(|f| f.to_string())
                    .unwrap_or_else(|| "nhs/nhs_ethnic_category_2001.csv".to_string())
            };
            used.insert(rel.clone());
            rel
        })
        .collect()
}

/// Starts a server on 127.0.0.1 answering `GET <path>` with the mapped file and
/// anything else with 404; returns its base address.
fn serve(routes: HashMap<String, PathBuf>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = answer(stream, &routes);
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn answer(mut stream: TcpStream, routes: &HashMap<String, PathBuf>) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim_end().is_empty() {
            break;
        }
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body) = match routes.get(target) {
        Some(file) if method == "GET" => ("200 OK", fs::read(file)?),
        _ => ("404 Not Found", b"not found\n".to_vec()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)?;
    stream.flush()
}

/// The path (and query) part of a source's address, as the server sees it.
fn target(source: &Source) -> String {
    address(source, Some(""))
}

/// A server mapping every source's address path to its local copy.
fn publisher_copy() -> (String, Vec<String>) {
    let locals = local_copies();
    let routes = SOURCES
        .iter()
        .zip(&locals)
        .map(|(s, rel)| (target(s), shared().join(rel)))
        .collect();
    (serve(routes), locals)
}

fn read_sums(dir: &Path) -> BTreeMap<String, String> {
    fs::read_to_string(dir.join(SUMS_FILE))
        .expect("SHA256SUMS written")
        .lines()
        .map(|l| {
            let (h, p) = l.split_once("  ").expect("`<sha256>  <path>` line");
            (p.to_string(), h.to_string())
        })
        .collect()
}

fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains(".part-") {
                found.push(p);
            }
        }
    }
    found
}

#[test]
fn sources_are_well_formed() {
    assert!(!SOURCES.is_empty());
    let mut paths = BTreeSet::new();
    for s in SOURCES {
        assert!(s.url.starts_with("https://"), "{} is not https", s.url);
        assert!(
            !s.path.starts_with('/') && !s.path.split('/').any(|c| c == ".." || c.is_empty()),
            "{} is not a plain relative path",
            s.path
        );
        assert!(paths.insert(s.path), "{} is listed twice", s.path);
        assert_ne!(s.path, SUMS_FILE);
    }
}

#[test]
fn base_replaces_scheme_and_host() {
    let s = Source {
        path: "x/y.csv",
        url: "https://example.org/a/b/y.csv?v=1",
    };
    assert_eq!(address(&s, None), "https://example.org/a/b/y.csv?v=1");
    assert_eq!(
        address(&s, Some("http://127.0.0.1:9")),
        "http://127.0.0.1:9/a/b/y.csv?v=1"
    );
    assert_eq!(
        address(&s, Some("http://mirror.test/refdata/")),
        "http://mirror.test/refdata/a/b/y.csv?v=1"
    );
}

#[test]
fn downloads_every_source_and_records_its_sha256() {
    let (base, locals) = publisher_copy();
    let dir = tempfile::tempdir().expect("tempdir");
    let sums = shared_sums();

    let got = download(dir.path(), Some(&base)).expect("download");

    assert_eq!(got.len(), SOURCES.len());
    for ((source, d), rel) in SOURCES.iter().zip(&got).zip(&locals) {
        let served = fs::read(shared().join(rel)).expect("served file");
        let arrived = fs::read(dir.path().join(source.path)).expect("downloaded file");
        assert_eq!(d.path, source.path);
        assert_eq!(d.url, address(source, Some(&base)));
        assert!(d.url.starts_with(&base));
        assert!(
            arrived == served,
            "{} differs from the served {rel}",
            d.path
        );
        assert_eq!(d.bytes, served.len() as u64);
        assert_eq!(
            Some(&d.sha256),
            sums.get(rel),
            "SHA-256 of {} differs from the shared SHA256SUMS entry for {rel}",
            d.path
        );
    }

    let recorded = read_sums(dir.path());
    let expected: BTreeMap<String, String> = got
        .iter()
        .map(|d| (d.path.clone(), d.sha256.clone()))
        .collect();
    assert_eq!(recorded, expected);
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );

    // The file is one `sha256sum -c` accepts, where that tool exists.
    if let Ok(out) = std::process::Command::new("sha256sum")
        .arg("-c")
        .arg("--quiet")
        .arg(SUMS_FILE)
        .current_dir(dir.path())
        .output()
    {
        assert!(
            out.status.success(),
            "sha256sum -c: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn a_second_run_refreshes_sha256sums_and_keeps_other_entries() {
    let (base, _) = publisher_copy();
    let dir = tempfile::tempdir().expect("tempdir");
    let other = format!("{}  other/kept.csv\n", "ab".repeat(32));
    let stale = format!("{}  {}\n", "00".repeat(32), SOURCES[0].path);
    fs::write(dir.path().join(SUMS_FILE), format!("{stale}{other}")).expect("seed sums");

    let got: Vec<Downloaded> = download(dir.path(), Some(&base)).expect("download");

    let recorded = read_sums(dir.path());
    assert_eq!(recorded.len(), SOURCES.len() + 1);
    assert_eq!(recorded["other/kept.csv"], "ab".repeat(32));
    for d in &got {
        assert_eq!(recorded[&d.path], d.sha256);
    }
}

#[test]
fn a_404_names_the_address_and_leaves_no_file() {
    let (base, _) = publisher_copy();
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = format!("{base}/missing");

    let err = download(dir.path(), Some(&wrong)).expect_err("404");

    let url = address(&SOURCES[0], Some(&wrong));
    match &err {
        DownloadError::Status { url: u, status } => {
            assert_eq!(u, &url);
            assert_eq!(*status, 404);
        }
        other => panic!("expected a status error, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("404"), "{message}");
    assert!(!dir.path().join(SOURCES[0].path).exists());
    assert!(!dir.path().join(SUMS_FILE).exists());
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn an_unreachable_host_names_the_address() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("local address").port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("tempdir");

    let err = download(dir.path(), Some(&base)).expect_err("refused");

    let url = address(&SOURCES[0], Some(&base));
    assert!(
        matches!(&err, DownloadError::Fetch { url: u, .. } if *u == url),
        "{err:?}"
    );
    assert!(err.to_string().contains(&url), "{err}");
}

#[test]
fn a_base_that_is_not_http_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = download(dir.path(), Some("ftp://mirror.test")).expect_err("refused");
    assert!(matches!(err, DownloadError::Base(_)), "{err:?}");
    assert!(err.to_string().contains("DCRS_REFDATA_BASE"), "{err}");
}
