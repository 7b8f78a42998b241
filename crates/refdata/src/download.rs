//! Fetches the publishers' reference files into a directory, for users with internet
//! access: `dcrs refdata download DIR`.
//!
//! [`SOURCES`] is the one place the addresses are kept. Each file is streamed to a
//! temporary file beside its destination and renamed into place only when the whole
//! body has arrived, so an interrupted download never leaves half a file under a known
//! name. The SHA-256 of what arrived is returned and recorded in `DIR/SHA256SUMS`
//! (`<sha256>  <path>` lines, the format `sha256sum -c` reads), which is refreshed after
//! every file so it always describes what is on disk.
//!
//! A base address (the `base` argument, read by the CLI from [`BASE_ENV`]) replaces the
//! scheme and host of every address, for mirrors and for tests that serve copies from
//! 127.0.0.1.

use sha2::Digest;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable the CLI reads for the base address that replaces the
/// scheme and host of every address in [`SOURCES`] (for example
/// `http://127.0.0.1:8080` or `https://mirror.example.org/refdata`).
pub const BASE_ENV: &str = "DCRS_REFDATA_BASE";

/// The name of the checksum file written in the download directory.
pub const SUMS_FILE: &str = "SHA256SUMS";

/// One publisher's file: where it goes and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// Where the file goes under the download directory, `/`-separated.
    pub path: &'static str,
    /// The publisher's full address for the file.
    pub url: &'static str,
}

/// Every file `dcrs refdata download` fetches, with the publisher's official address.
///
/// The English indices of deprivation are published by MHCLG at
/// <https://www.gov.uk/government/statistics/english-indices-of-deprivation-2019>
/// (2010: <https://www.gov.uk/government/statistics/english-indices-of-deprivation-2010>).
/// The addresses are the long-standing `attachment_data` ones, the form most users of
/// these files cite; redirects (GOV.UK now also serves files under `/media/…`) are
/// followed.
///
/// Only File 7 is published as CSV. Files 1 and 6 and the 2010 index are spreadsheets
/// and are kept under the publisher's own names: the loader reads CSV, so to load them
/// save the data sheet (not the notes sheet) as CSV (File 1 as
/// `imd/File_1_-_IMD2019_Index_of_Multiple_Deprivation.csv`, File 6 as
/// `imd/File_6_-_IoD2019_Population_Denominators.csv`, the names the loader knows).
/// File 7 holds every column of Files 1 and 6, under the same headers except the IMD
/// rank and decile (`Index of Multiple Deprivation (IMD) Rank (where 1 is most
/// deprived)`, `… Decile (where 1 is most deprived 10% of LSOAs)`), so it can be loaded
/// as either layout with `--file` and `--map`.
///
/// Not listed, because no stable direct address for the file could be confirmed: the
/// ONS lookups (LSOA 2001 → LSOA 2011 → LAD 2011, LTLA → UTLA April 2019, LAD → region
/// December 2018; the ONS Open Geography Portal serves them as ArcGIS feature services
/// whose query answers are JSON pages, not the CSV files), the ONS postcode lookup, the
/// 2011 Census table QS201EW from Nomis, and the IMD 2004 and 2007 files (now only in
/// the National Archives' web archive).
pub const SOURCES: &[Source] = &[
    // IoD2019 File 1: IMD rank and decile by 2011 LSOA (xlsx).
    Source {
        path: "imd/File_1_-_IMD2019_Index_of_Multiple_Deprivation.xlsx",
        url: "https://assets.publishing.service.gov.uk/government/uploads/system/uploads/attachment_data/file/833970/File_1_-_IMD2019_Index_of_Multiple_Deprivation.xlsx",
    },
    // IoD2019 File 6: population denominators, mid-2015, excluding prisoners (xlsx).
    // Less sure than the others: this address was found cited in one place only (the
    // README of the repository the shared CSV copy came from); if it answers 404, take
    // the File 6 link from the release page above.
    Source {
        path: "imd/File_6_-_IoD2019_Population_Denominators.xlsx",
        url: "https://assets.publishing.service.gov.uk/government/uploads/system/uploads/attachment_data/file/833980/File_6_-_IoD2019_Population_Denominators.xlsx",
    },
    // IoD2019 File 7: every score, rank, decile and denominator by 2011 LSOA (CSV).
    Source {
        path: "imd/File_7_-_All_IoD2019_Scores__Ranks__Deciles_and_Population_Denominators_3.csv",
        url: "https://assets.publishing.service.gov.uk/government/uploads/system/uploads/attachment_data/file/845345/File_7_-_All_IoD2019_Scores__Ranks__Deciles_and_Population_Denominators_3.csv",
    },
    // IMD 2010 by 2001 LSOA (xls, sheet "IMD 2010").
    Source {
        path: "imd/1871524.xls",
        url: "https://assets.publishing.service.gov.uk/government/uploads/system/uploads/attachment_data/file/6872/1871524.xls",
    },
];

/// One file that arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// Where it went under the download directory (the source's `path`).
    pub path: String,
    /// The address it was fetched from (after any base address was applied).
    pub url: String,
    /// The SHA-256 of the bytes written, lower-case hex.
    pub sha256: String,
    /// How many bytes were written.
    pub bytes: u64,
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The server answered with a status other than success.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The address asked for.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The file could not be fetched (address, connection, TLS, timeout, cut-off body).
    #[error("could not fetch {url}: {reason}")]
    Fetch {
        /// The address asked for.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A file or directory could not be written.
    #[error("could not write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The base address is not an `http://` or `https://` address.
    #[error(
        "the base address {0:?} is not an http:// or https:// address (set {BASE_ENV} to, for example, http://127.0.0.1:8080)"
    )]
    Base(String),
}

/// The address a source is fetched from: its own, or with `base` in place of the
/// scheme and host (`{base}/{path and query of the original}`).
pub fn address(source: &Source, base: Option<&str>) -> String {
    match base {
        None => source.url.to_string(),
        Some(base) => {
            let rest = source.url.split_once("://").map_or(source.url, |(_, r)| r);
            let path = rest.find('/').map_or("", |i| &rest[i + 1..]);
            format!("{}/{}", base.trim_end_matches('/'), path)
        }
    }
}

/// Fetches every file of [`SOURCES`] into `dir`, one after another, and records their
/// SHA-256 in `dir/SHA256SUMS`. `base`, when given, replaces the scheme and host of
/// every address (see [`address`]).
///
/// Stops at the first failure; the files fetched before it stay in place and in
/// `SHA256SUMS`, and a file that failed keeps its earlier copy, if any.
pub fn download(dir: &Path, base: Option<&str>) -> Result<Vec<Downloaded>, DownloadError> {
    download_sources(SOURCES, dir, base)
}

/// [`download`] for a given list of sources.
pub fn download_sources(
    sources: &[Source],
    dir: &Path,
    base: Option<&str>,
) -> Result<Vec<Downloaded>, DownloadError> {
    if let Some(b) = base
        && !(b.starts_with("http://") || b.starts_with("https://"))
    {
        return Err(DownloadError::Base(b.to_string()));
    }
    let agent = agent();
    let mut done = Vec::with_capacity(sources.len());
    for source in sources {
        let url = address(source, base);
        let (sha256, bytes) = fetch(&agent, &url, &dir.join(source.path))?;
        let got = Downloaded {
            path: source.path.to_string(),
            url,
            sha256,
            bytes,
        };
        record(dir, std::slice::from_ref(&got))?;
        done.push(got);
    }
    Ok(done)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        // Statuses are checked here, to name the address in the error.
        .http_status_as_error(false)
        .user_agent(concat!("dcrs-refdata/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        // A stalled body fails; a slow but moving one does not.
        .timeout_per_read(Some(Duration::from_secs(120)))
        // The operating system's trusted roots, not only the ones built in: NHS and
        // local authority networks often inspect TLS with their own root certificate.
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        )
        .build()
        .into()
}

/// Streams `url` into a temporary file beside `dest`, hashing as it goes, then renames
/// it over `dest`.
fn fetch(agent: &ureq::Agent, url: &str, dest: &Path) -> Result<(String, u64), DownloadError> {
    let fetch_error = |reason: String| DownloadError::Fetch {
        url: url.to_string(),
        reason,
    };
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| fetch_error(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(DownloadError::Status {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| write_error(parent, e))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.part-{}", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&tmp).map_err(|e| write_error(&tmp, e))?;
        let mut hasher = sha2::Sha256::new();
        let mut bytes = 0u64;
        let mut reader = response.body_mut().as_reader();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(fetch_error(e.to_string())),
            };
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(|e| write_error(&tmp, e))?;
            bytes += n as u64;
        }
        file.sync_all().map_err(|e| write_error(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, dest).map_err(|e| write_error(dest, e))?;
        Ok((hex(&hasher.finalize()), bytes))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Adds or replaces the entries of `files` in `dir/SHA256SUMS`, keeping the others,
/// sorted by path; written atomically.
fn record(dir: &Path, files: &[Downloaded]) -> Result<(), DownloadError> {
    let sums = dir.join(SUMS_FILE);
    let mut entries: BTreeMap<String, String> = BTreeMap::new();
    match fs::read_to_string(&sums) {
        Ok(text) => {
            for line in text.lines() {
                // `<hex>  <path>`, or `<hex> *<path>` as binary-mode sha256sum writes.
                if let Some((hash, path)) = line.split_once(' ') {
                    let path = path.strip_prefix([' ', '*']).unwrap_or(path);
                    if !hash.is_empty() && !path.is_empty() {
                        entries.insert(path.to_string(), hash.to_string());
                    }
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_error(&sums, e)),
    }
    for f in files {
        entries.insert(f.path.clone(), f.sha256.clone());
    }
    let text: String = entries
        .iter()
        .map(|(path, hash)| format!("{hash}  {path}\n"))
        .collect();
    let tmp = dir.join(format!(".{SUMS_FILE}.part-{}", std::process::id()));
    let result = fs::write(&tmp, text)
        .map_err(|e| write_error(&tmp, e))
        .and_then(|()| fs::rename(&tmp, &sums).map_err(|e| write_error(&sums, e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_error(path: &Path, source: io::Error) -> DownloadError {
    DownloadError::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}
