//! The publish API (`src/http/publish.rs`): uploads refused for every reason x/mod and the
//! registry know (the x/mod zip testdata's `wantErr` cases, malformed and oversize bodies),
//! Artifactory-style publishing, and deleted versions that stay deleted.

use std::path::PathBuf;

use strata_core::dirhash::hash_go_mod;
use strata_core::gosum::format_module_lines;
use strata_core::path::ModulePath;
use strata_core::protocol::{CacheClass, ProxyRequest};
use strata_testkit::txtar;

use super::reply::Failures;
use crate::support::config::{ADMIN_TOKEN, CI_TOKEN, Options, PRIVATE, READ_TOKEN, TEAM};
use crate::support::http::{TEXT_PLAIN, bearer, send};
use crate::support::registry::TestRegistry;
use crate::support::zip::{go_sum_hashes, module_zip, raw_zip, simple_module, zip_h1};

/// The escaped proxy path of `module`'s file `file` (`list`, `v1.0.0.zip`, …).
fn proxy_path(module: &str, file: &str) -> String {
    let escaped = ModulePath::new(module)
        .expect("valid module path")
        .escaped();
    format!("{escaped}/@v/{file}")
}

/// Publishes `zip` to `repo` and checks the 201 answer: plain text, not cacheable, exactly the
/// go.sum lines of the zip's and go.mod's hashes. Returns the body.
pub async fn publish_ok(
    reg: &TestRegistry,
    repo: &str,
    module: &str,
    version: &str,
    zip: &[u8],
    go_mod: &[u8],
) -> String {
    let r = reg.upload(repo, &bearer(CI_TOKEN), zip.to_vec()).await;
    assert_eq!(r.status, 201, "publishing {module}@{version}: {}", r.text());
    assert_eq!(r.header("content-type"), Some(TEXT_PLAIN));
    assert_eq!(
        r.header("cache-control"),
        Some(CacheClass::UpstreamFailure.cache_control())
    );
    let want = format_module_lines(module, version, &zip_h1(zip), &hash_go_mod(go_mod));
    assert_eq!(r.text(), want, "go.sum lines of {module}@{version}");
    r.text()
}

// ---------------------------------------------------------------------------------------------
// The x/mod zip testdata

/// One x/mod case that must fail: its name, header and the zip entries to upload.
struct XModCase {
    name: String,
    header: txtar::TestHeader,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The x/mod `create/` and `unzip/` cases with `wantErr`, or `None` when `../shared` is absent.
fn x_mod_error_cases() -> Option<Vec<XModCase>> {
    let shared = match std::env::var_os("STRATA_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let root = shared.join("vectors/x_mod_zip_testdata");
    if !root.is_dir() {
        eprintln!(
            "skipped the x/mod zip testdata cases: {} not found (set STRATA_SHARED_DIR)",
            root.display()
        );
        return None;
    }
    let mut cases = Vec::new();
    for kind in ["create", "unzip"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join(kind))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .collect();
        paths.sort();
        for path in paths {
            let archive = txtar::parse(&std::fs::read(&path).unwrap());
            let header = txtar::header(&archive.comment);
            if header.want_err.is_empty() {
                continue;
            }
            // `create/` files are relative to the module root; `unzip/` files are zip entries.
            let mut prefix = header.path.clone();
            prefix.push(b'@');
            prefix.extend_from_slice(&header.version);
            prefix.push(b'/');
            let mut entries: Vec<(Vec<u8>, Vec<u8>)> = archive
                .files
                .iter()
                .map(|(name, data)| {
                    let name = match kind {
                        "create" => [prefix.as_slice(), name.as_bytes()].concat(),
                        _ => name.as_bytes().to_vec(),
                    };
                    (name, data.clone())
                })
                .collect();
            // Cases about the module path or version alone have no files; the registry reads
            // module and version from the entry names, so give it one entry to read them from.
            if entries.is_empty() {
                entries.push((
                    [prefix.as_slice(), b"a.go"].concat(),
                    b"package a\n".to_vec(),
                ));
            }
            let name = format!("{kind}/{}", path.file_stem().unwrap().to_string_lossy());
            cases.push(XModCase {
                name,
                header,
                entries,
            });
        }
    }
    assert!(
        !cases.is_empty(),
        "no wantErr cases under {}",
        root.display()
    );
    Some(cases)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_mod_invalid_zips_are_refused() {
    let Some(cases) = x_mod_error_cases() else {
        return;
    };
    let reg = TestRegistry::start_fs(Options::default()).await;
    let mut failures = Failures::default();
    for XModCase {
        name,
        header,
        entries,
    } in &cases
    {
        let zip = raw_zip(entries);
        // A path that is not UTF-8 cannot even be read as `module@version`; the registry says
        // so instead of x/mod's wording, which presumes the path was given separately.
        let want = if std::str::from_utf8(&header.path).is_err() {
            "not UTF-8"
        } else {
            header.want_err.as_str()
        };
        failures
            .refused(
                &reg,
                &format!("{name} (upload)"),
                reg.upload(PRIVATE, &bearer(CI_TOKEN), zip.clone()),
                400,
                &[want],
            )
            .await;

        // Artifactory style: module and version from the URL. Where the URL itself is not a
        // valid proxy path, the path is refused (404 with the reason) before the body is read.
        let (Ok(path), Ok(version)) = (
            std::str::from_utf8(&header.path),
            std::str::from_utf8(&header.version),
        ) else {
            continue;
        };
        let url_path = format!("{path}/@v/{version}.zip");
        let label = format!("{name} (artifactory)");
        match ProxyRequest::parse(&url_path) {
            Ok(_) => {
                failures
                    .refused(
                        &reg,
                        &label,
                        reg.art_put(PRIVATE, &url_path, &bearer(CI_TOKEN), zip),
                        400,
                        &[&header.want_err],
                    )
                    .await;
            }
            Err(_) => {
                failures
                    .refused(
                        &reg,
                        &label,
                        reg.art_put(PRIVATE, &url_path, &bearer(CI_TOKEN), zip),
                        404,
                        &["invalid module proxy path"],
                    )
                    .await;
            }
        }
    }
    eprintln!("{} x/mod wantErr cases checked", cases.len());
    assert!(
        reg.storage_snapshot().await.is_empty(),
        "nothing may have been stored"
    );
    failures.finish();
}

// ---------------------------------------------------------------------------------------------
// Malformed uploads

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_uploads_are_refused() {
    let reg = TestRegistry::start_fs(Options::default()).await;
    let ci = bearer(CI_TOKEN);
    let mut f = Failures::default();
    let (good, _) = simple_module("example.com/m", "v1.0.0", "good");

    f.refused(
        &reg,
        "not a zip",
        reg.upload(PRIVATE, &ci, b"PK? not really a zip file\n".to_vec()),
        400,
        &["not a valid zip file"],
    )
    .await;
    f.refused(
        &reg,
        "empty body",
        reg.upload(PRIVATE, &ci, Vec::new()),
        400,
        &["zip"],
    )
    .await;
    let half = good[..good.len() / 2].to_vec();
    f.refused(
        &reg,
        "truncated zip",
        reg.upload(PRIVATE, &ci, half.clone()),
        400,
        &["not a valid zip file"],
    )
    .await;
    f.refused(
        &reg,
        "truncated zip (artifactory)",
        reg.art_put(PRIVATE, "example.com/m/@v/v1.0.0.zip", &ci, half),
        400,
        &["not a valid zip file"],
    )
    .await;
    // The central directory survives but the last bytes of entry data do not match its CRC.
    let mut corrupt = good.clone();
    let data_at = 30 + "example.com/m@v1.0.0/go.mod".len() + 2;
    corrupt[data_at] ^= 0x55;
    f.refused(
        &reg,
        "corrupt entry data",
        reg.upload(PRIVATE, &ci, corrupt),
        400,
        &["example.com/m@v1.0.0/go.mod"],
    )
    .await;
    let no_prefix = raw_zip(&[("go.mod", "module example.com/m\n")]);
    f.refused(
        &reg,
        "entries without module@version",
        reg.upload(PRIVATE, &ci, no_prefix),
        400,
        &["module@version"],
    )
    .await;
    let mixed = raw_zip(&[
        ("example.com/m@v1.0.0/a.go", "package a\n"),
        ("example.com/n@v1.0.0/b.go", "package b\n"),
    ]);
    f.refused(
        &reg,
        "two module prefixes",
        reg.upload(PRIVATE, &ci, mixed),
        400,
        &["different module@version prefixes"],
    )
    .await;

    // go.mod naming another module.
    let (wrong_mod, _) = module_zip(
        "example.com/m",
        "v1.0.0",
        &[
            ("go.mod", b"module example.com/other\n"),
            ("m.go", b"package m\n"),
        ],
    );
    f.refused(
        &reg,
        "go.mod names another module",
        reg.upload(PRIVATE, &ci, wrong_mod.clone()),
        400,
        &["go.mod", "example.com/other"],
    )
    .await;
    f.refused(
        &reg,
        "go.mod names another module (artifactory)",
        reg.art_put(PRIVATE, "example.com/m/@v/v1.0.0.zip", &ci, wrong_mod),
        400,
        &["example.com/other"],
    )
    .await;
    let (no_module, _) = module_zip("example.com/m", "v1.0.0", &[("go.mod", b"go 1.21\n")]);
    f.refused(
        &reg,
        "go.mod without module directive",
        reg.upload(PRIVATE, &ci, no_module),
        400,
        &["go.mod"],
    )
    .await;

    // Versions: not canonical, not matching the major version suffix.
    for (label, prefix, reason) in [
        (
            "non-canonical version v1.0",
            "example.com/m@v1.0",
            "not canonical",
        ),
        (
            "non-canonical version v1.0.0+build",
            "example.com/m@v1.0.0+build",
            "not canonical",
        ),
        ("version not semver", "example.com/m@latest", "latest"),
        (
            "v1 version of a /v2 module",
            "example.com/m/v2@v1.0.0",
            "v2",
        ),
        (
            "v2 version of a v1 module",
            "example.com/m@v2.0.0",
            "should be v0 or v1, not v2",
        ),
        (
            "v3 version of a /v2 module",
            "example.com/m/v2@v3.0.0",
            "v2",
        ),
    ] {
        let zip = raw_zip(&[
            (format!("{prefix}/go.mod"), "module example.com/m\n"),
            (format!("{prefix}/a.go"), "package a\n"),
        ]);
        f.refused(&reg, label, reg.upload(PRIVATE, &ci, zip), 400, &[reason])
            .await;
    }
    // The same through Artifactory URLs: refused as proxy paths (404 with the reason).
    for (label, path) in [
        ("non-canonical version in URL", "example.com/m/@v/v1.0.zip"),
        (
            "v1 version of a /v2 module in URL",
            "example.com/m/v2/@v/v1.0.0.zip",
        ),
        (
            "v2 version of a v1 module in URL",
            "example.com/m/@v/v2.0.0.zip",
        ),
    ] {
        f.refused(
            &reg,
            label,
            reg.art_put(PRIVATE, path, &ci, good.clone()),
            404,
            &["invalid module proxy path"],
        )
        .await;
    }
    // Artifactory URL and zip disagree.
    f.refused(
        &reg,
        "zip of another module than the URL",
        reg.art_put(PRIVATE, "example.com/n/@v/v1.0.0.zip", &ci, good.clone()),
        400,
        &["example.com/n@v1.0.0/"],
    )
    .await;
    f.refused(
        &reg,
        "zip of another version than the URL",
        reg.art_put(PRIVATE, "example.com/m/@v/v1.0.1.zip", &ci, good.clone()),
        400,
        &["example.com/m@v1.0.1/"],
    )
    .await;

    // Every violation is reported, not only the first.
    let several = raw_zip(&[
        ("example.com/m@v1.0.0/go.mod", "module example.com/m\n"),
        ("example.com/m@v1.0.0/bad.go'", "package m\n"),
        ("example.com/m@v1.0.0/x.go", "package m\n"),
        ("example.com/m@v1.0.0/X.GO", "package m\n"),
    ]);
    f.refused(
        &reg,
        "several violations",
        reg.upload(PRIVATE, &ci, several),
        400,
        &["bad.go'", "case-insensitive file name collision"],
    )
    .await;

    // A module outside the repository's include patterns.
    let (other, _) = simple_module("example.com/other/lib", "v1.0.0", "x");
    f.refused(
        &reg,
        "module outside include patterns",
        reg.upload(TEAM, &ci, other.clone()),
        403,
        &["example.com/other/lib", "team"],
    )
    .await;
    f.refused(
        &reg,
        "module outside include patterns (artifactory)",
        reg.art_put(TEAM, "example.com/other/lib/@v/v1.0.0.zip", &ci, other),
        403,
        &["example.com/other/lib"],
    )
    .await;
    f.refused(
        &reg,
        "read outside include patterns",
        reg.get(
            TEAM,
            "example.com/other/lib/@v/list",
            &bearer(READ_TOKEN),
            &[],
        ),
        404,
        &["example.com/other/lib"],
    )
    .await;

    assert!(
        reg.storage_snapshot().await.is_empty(),
        "nothing may have been stored"
    );
    // The include pattern does admit its own modules.
    let (inside, _) = simple_module("example.com/team/lib", "v1.0.0", "x");
    let r = reg.upload(TEAM, &ci, inside).await;
    if r.status != 201 {
        f.push(format!(
            "module inside include patterns: {} {}",
            r.status,
            r.text()
        ));
    }
    f.finish();
}

/// Bodies past `server.max_upload_bytes` are refused with 413 and nothing is kept. The bodies
/// are one byte over the limit, so the registry has read all of them when it answers: with
/// larger bodies it answers before the client has finished sending and closes the connection,
/// and a client may then see a broken pipe instead of the 413 (a race of HTTP/1.1, not checked
/// here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_bodies_are_refused() {
    const LIMIT: usize = 64 << 10;
    let reg = TestRegistry::start_fs(Options {
        max_upload_bytes: LIMIT as u64,
    })
    .await;
    let ci = bearer(CI_TOKEN);
    let mut f = Failures::default();
    // Incompressible content, so the zip itself is past the limit.
    let mut noise = Vec::with_capacity(256 << 10);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while noise.len() < 256 << 10 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    let (big, _) = module_zip(
        "example.com/big",
        "v1.0.0",
        &[
            ("go.mod", b"module example.com/big\n"),
            ("noise.bin", &noise),
        ],
    );
    let over = big[..LIMIT + 1].to_vec();
    let limit = LIMIT.to_string();
    f.refused(
        &reg,
        "upload one byte past the limit",
        reg.upload(PRIVATE, &ci, over.clone()),
        413,
        &["too large", &limit],
    )
    .await;
    f.refused(
        &reg,
        "artifactory zip one byte past the limit",
        reg.art_put(PRIVATE, "example.com/big/@v/v1.0.0.zip", &ci, over.clone()),
        413,
        &["too large", &limit],
    )
    .await;
    // Chunked, without a Content-Length announcing the size.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        over.chunks(8 << 10).map(|c| Ok(c.to_vec())).collect();
    let streamed = reg
        .client
        .put(reg.url(&format!("/api/repos/{PRIVATE}/upload")))
        .header("authorization", &ci)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)));
    f.refused(
        &reg,
        "chunked upload past the limit",
        send(streamed),
        413,
        &["too large"],
    )
    .await;
    // At the limit the body is accepted and read; this one is a cut-off zip, hence 400.
    f.refused(
        &reg,
        "upload of exactly the limit",
        reg.upload(PRIVATE, &ci, big[..LIMIT].to_vec()),
        400,
        &["zip"],
    )
    .await;
    // Below the limit, the same registry publishes.
    let (small, _) = simple_module("example.com/small", "v1.0.0", "s");
    assert!(small.len() < LIMIT);
    let r = reg.upload(PRIVATE, &ci, small).await;
    if r.status != 201 {
        f.push(format!("upload below the limit: {} {}", r.status, r.text()));
    }
    f.finish();
}

// ---------------------------------------------------------------------------------------------
// Artifactory-style publishing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifactory_style_publish() {
    let reg = TestRegistry::start_fs(Options::default()).await;
    let ci = bearer(CI_TOKEN);
    let module = "example.com/jf/lib";
    let go_mod = format!("module {module}\n\ngo 1.21\n");
    let (zip, _) = module_zip(
        module,
        "v1.0.0",
        &[("go.mod", go_mod.as_bytes()), ("lib.go", b"package lib\n")],
    );
    let info = br#"{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}"#.to_vec();
    let mod_path = proxy_path(module, "v1.0.0.mod");
    let info_path = proxy_path(module, "v1.0.0.info");
    let zip_path = proxy_path(module, "v1.0.0.zip");
    let mut f = Failures::default();

    // Before the zip: checked, acknowledged with 202, nothing stored (the served .mod is the
    // zip's go.mod and the .info time the publish time).
    for (label, path, body) in [
        (".mod before the zip", &mod_path, go_mod.as_bytes().to_vec()),
        (".info before the zip", &info_path, info.clone()),
    ] {
        let before = reg.snapshot().await;
        let r = reg.art_put(PRIVATE, path, &ci, body).await;
        if r.status != 202
            || r.header("content-type") != Some(TEXT_PLAIN)
            || r.text().trim().is_empty()
        {
            f.push(format!(
                "{label}: {} {:?} {:?}",
                r.status,
                r.header("content-type"),
                r.text()
            ));
        }
        if reg.snapshot().await != before {
            f.push(format!("{label}: storage changed"));
        }
    }
    f.refused(
        &reg,
        ".mod naming another module",
        reg.art_put(
            PRIVATE,
            &mod_path,
            &ci,
            b"module example.com/other\n".to_vec(),
        ),
        400,
        &["example.com/other"],
    )
    .await;
    f.refused(
        &reg,
        ".mod that does not parse",
        reg.art_put(PRIVATE, &mod_path, &ci, b"module \"unterminated\n".to_vec()),
        400,
        &[".mod"],
    )
    .await;
    f.refused(
        &reg,
        ".info naming another version",
        reg.art_put(
            PRIVATE,
            &info_path,
            &ci,
            br#"{"Version":"v1.0.1","Time":"2024-01-02T03:04:05Z"}"#.to_vec(),
        ),
        400,
        &["v1.0.1"],
    )
    .await;
    f.refused(
        &reg,
        ".info that is not JSON",
        reg.art_put(PRIVATE, &info_path, &ci, b"v1.0.0".to_vec()),
        400,
        &["not version JSON"],
    )
    .await;
    f.refused(
        &reg,
        "uploading a list",
        reg.art_put(
            PRIVATE,
            &proxy_path(module, "list"),
            &ci,
            b"v1.0.0\n".to_vec(),
        ),
        404,
        &["can be uploaded"],
    )
    .await;
    f.refused(
        &reg,
        ".info served before the zip",
        reg.get(PRIVATE, &info_path, &ci, &[]),
        404,
        &["not found"],
    )
    .await;

    // The zip publishes the version.
    let r = reg.art_put(PRIVATE, &zip_path, &ci, zip.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.text(),
        format_module_lines(
            module,
            "v1.0.0",
            &zip_h1(&zip),
            &hash_go_mod(go_mod.as_bytes())
        )
    );
    assert_eq!(go_sum_hashes(&r.text()).0, zip_h1(&zip));

    // After the zip: the same .mod is acknowledged, a different one is a conflict.
    let r = reg
        .art_put(PRIVATE, &mod_path, &ci, go_mod.as_bytes().to_vec())
        .await;
    if r.status != 200 || r.header("content-type") != Some(TEXT_PLAIN) {
        f.push(format!(
            ".mod after the zip, same: {} {:?}",
            r.status,
            r.text()
        ));
    }
    let other_mod = format!("{go_mod}\nrequire example.com/dep v1.0.0\n");
    f.refused(
        &reg,
        ".mod after the zip, different",
        reg.art_put(PRIVATE, &mod_path, &ci, other_mod.into_bytes()),
        409,
        &["differs", "immutable"],
    )
    .await;
    // .info: its Version and Time must be the stored ones (the Time is the publish time):
    // another Time is a 409, the stored document again a 200.
    f.refused(
        &reg,
        ".info after the zip, another Time",
        reg.art_put(PRIVATE, &info_path, &ci, info.clone()),
        409,
        &["differs", "immutable"],
    )
    .await;
    let stored = reg.get(PRIVATE, &info_path, &ci, &[]).await;
    assert_eq!(stored.status, 200, "{}", stored.text());
    let r = reg
        .art_put(PRIVATE, &info_path, &ci, stored.body.clone())
        .await;
    if r.status != 200 {
        f.push(format!(
            ".info after the zip, as stored: {} {:?}",
            r.status,
            r.text()
        ));
    }
    f.refused(
        &reg,
        "zip again",
        reg.art_put(PRIVATE, &zip_path, &ci, zip.clone()),
        409,
        &["already exists"],
    )
    .await;
    f.refused(
        &reg,
        "deleting through the .mod path",
        reg.art_delete(PRIVATE, &mod_path, &bearer(ADMIN_TOKEN)),
        400,
        &[".zip path"],
    )
    .await;

    // What is served is the zip's go.mod.
    let r = reg.get(PRIVATE, &mod_path, &ci, &[]).await;
    assert_eq!((r.status, r.body.as_slice()), (200, go_mod.as_bytes()));
    let r = reg.get(PRIVATE, &zip_path, &ci, &[]).await;
    assert_eq!((r.status, &r.body), (200, &zip));
    f.finish();
}

// ---------------------------------------------------------------------------------------------
// Deleted versions

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_versions_stay_immutable() {
    let reg = TestRegistry::start_fs(Options::default()).await;
    let module = "example.com/del/lib";
    let go_mod = format!("module {module}\n\ngo 1.21\n");
    let (zip_a, _) = module_zip(
        module,
        "v1.0.0",
        &[
            ("go.mod", go_mod.as_bytes()),
            ("a.go", b"package lib\n// A\n"),
        ],
    );
    let (zip_b, _) = module_zip(
        module,
        "v1.0.0",
        &[
            ("go.mod", go_mod.as_bytes()),
            ("a.go", b"package lib\n// B\n"),
        ],
    );
    let zip_path = proxy_path(module, "v1.0.0.zip");
    let admin = bearer(ADMIN_TOKEN);
    let ci = bearer(CI_TOKEN);
    let mut f = Failures::default();

    publish_ok(&reg, PRIVATE, module, "v1.0.0", &zip_a, go_mod.as_bytes()).await;
    let r = reg.art_delete(PRIVATE, &zip_path, &admin).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some(TEXT_PLAIN));
    assert!(r.text().contains("deleted"), "{}", r.text());

    for file in ["v1.0.0.info", "v1.0.0.mod", "v1.0.0.zip"] {
        f.refused(
            &reg,
            &format!("GET deleted {file}"),
            reg.get(PRIVATE, &proxy_path(module, file), &ci, &[]),
            404,
            &["deleted"],
        )
        .await;
    }
    f.refused(
        &reg,
        "@latest with only a deleted version",
        reg.get(PRIVATE, &format!("{module}/@latest"), &ci, &[]),
        404,
        &["not found"],
    )
    .await;
    let r = reg
        .get(PRIVATE, &proxy_path(module, "list"), &ci, &[])
        .await;
    if (r.status, r.text().as_str()) != (200, "") {
        f.push(format!("list after delete: {} {:?}", r.status, r.text()));
    }
    f.refused(
        &reg,
        "deleting twice",
        reg.art_delete(PRIVATE, &zip_path, &admin),
        404,
        &["deleted"],
    )
    .await;
    f.refused(
        &reg,
        "deleting an unknown version",
        reg.art_delete(PRIVATE, &proxy_path(module, "v1.0.9.zip"), &admin),
        404,
        &["not found"],
    )
    .await;
    f.refused(
        &reg,
        "re-publish with different content",
        reg.upload(PRIVATE, &ci, zip_b.clone()),
        409,
        &["deleted", "identical content"],
    )
    .await;
    f.refused(
        &reg,
        "re-publish with different content (artifactory)",
        reg.art_put(PRIVATE, &zip_path, &ci, zip_b),
        409,
        &["deleted"],
    )
    .await;

    // Identical content brings the version back.
    publish_ok(&reg, PRIVATE, module, "v1.0.0", &zip_a, go_mod.as_bytes()).await;
    let r = reg.get(PRIVATE, &zip_path, &ci, &[]).await;
    assert_eq!((r.status, &r.body), (200, &zip_a));
    let r = reg
        .get(PRIVATE, &proxy_path(module, "list"), &ci, &[])
        .await;
    assert_eq!(r.text(), "v1.0.0\n");
    f.refused(
        &reg,
        "publishing the restored version again",
        reg.upload(PRIVATE, &ci, zip_a),
        409,
        &["already exists"],
    )
    .await;
    f.finish();
}
