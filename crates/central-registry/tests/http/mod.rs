//! What the router does for every route (`src/http/mod.rs`): credentials and permissions,
//! request targets that try to leave their route or break the case encoding, and requests no
//! route takes.

mod goproxy;
mod publish;
mod reply;

use crate::support::config::{ADMIN_TOKEN, CI_TOKEN, Options, PRIVATE, PUBLIC, READ_TOKEN};
use crate::support::http::{basic, bearer};
use crate::support::registry::TestRegistry;
use crate::support::zip::simple_module;
use reply::Failures;
use strata_testkit::raw_http::request as raw_request;

// ---------------------------------------------------------------------------------------------
// Authentication and authorization

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_permissions_are_enforced() {
    let reg = TestRegistry::start_fs(Options::default()).await;
    let mut f = Failures::default();
    let (zip, _) = simple_module("example.com/auth/lib", "v1.0.0", "a");
    let zip_path = "example.com/auth/lib/@v/v1.0.0.zip";

    for (label, auth, status, reason) in [
        ("missing token", String::new(), 401, "requires a token"),
        (
            "invalid bearer token",
            bearer("not-a-token"),
            401,
            "invalid token",
        ),
        (
            "invalid basic password",
            basic("not-a-token"),
            401,
            "invalid token",
        ),
        (
            "malformed Authorization",
            "Digest username=x".to_owned(),
            401,
            "malformed Authorization",
        ),
        ("empty bearer", "Bearer ".to_owned(), 401, "Authorization"),
        (
            "read-only token",
            bearer(READ_TOKEN),
            403,
            "lacks deploy permission",
        ),
    ] {
        f.refused(
            &reg,
            &format!("{label}: upload"),
            reg.upload(PRIVATE, &auth, zip.clone()),
            status,
            &[reason],
        )
        .await;
        f.refused(
            &reg,
            &format!("{label}: artifactory zip"),
            reg.art_put(PRIVATE, zip_path, &auth, zip.clone()),
            status,
            &[reason],
        )
        .await;
        f.refused(
            &reg,
            &format!("{label}: artifactory mod"),
            reg.art_put(
                PRIVATE,
                "example.com/auth/lib/@v/v1.0.0.mod",
                &auth,
                b"module example.com/auth/lib\n".to_vec(),
            ),
            status,
            &[reason],
        )
        .await;
        f.refused(
            &reg,
            &format!("{label}: delete"),
            reg.art_delete(PRIVATE, zip_path, &auth),
            status,
            &[],
        )
        .await;
    }
    // Anonymous write never, even where anonymous read is on.
    f.refused(
        &reg,
        "anonymous upload to a public repository",
        reg.upload(PUBLIC, "", zip.clone()),
        401,
        &["deploy"],
    )
    .await;
    // Unknown repositories.
    f.refused(
        &reg,
        "upload to unknown repository",
        reg.upload("nope", &bearer(CI_TOKEN), zip.clone()),
        404,
        &["\"nope\" does not exist"],
    )
    .await;
    f.refused(
        &reg,
        "artifactory put to unknown repository",
        reg.art_put("nope", zip_path, &bearer(CI_TOKEN), zip.clone()),
        404,
        &["\"nope\" does not exist"],
    )
    .await;
    f.refused(
        &reg,
        "read from unknown repository",
        reg.get(
            "nope",
            "example.com/auth/lib/@v/list",
            &bearer(CI_TOKEN),
            &[],
        ),
        404,
        &["\"nope\" does not exist"],
    )
    .await;
    f.refused(
        &reg,
        "delete in unknown repository",
        reg.art_delete("nope", zip_path, &bearer(ADMIN_TOKEN)),
        404,
        &["\"nope\" does not exist"],
    )
    .await;

    // Now publish, then check reads and deletes.
    let r = reg.upload(PRIVATE, &basic(CI_TOKEN), zip.clone()).await;
    assert_eq!(
        r.status,
        201,
        "publish with Basic credentials: {}",
        r.text()
    );
    let r = reg.upload(PUBLIC, &bearer(CI_TOKEN), zip.clone()).await;
    assert_eq!(
        r.status,
        201,
        "publish to the public repository: {}",
        r.text()
    );
    let list = "example.com/auth/lib/@v/list";
    f.refused(
        &reg,
        "anonymous read of a private repository",
        reg.get(PRIVATE, list, "", &[]),
        401,
        &["requires a token with read permission"],
    )
    .await;
    f.refused(
        &reg,
        "invalid token reading",
        reg.get(PRIVATE, list, &bearer("nope"), &[]),
        401,
        &["invalid token"],
    )
    .await;
    f.refused(
        &reg,
        "invalid token reading a public repository",
        reg.get(PUBLIC, list, &bearer("nope"), &[]),
        401,
        &["invalid token"],
    )
    .await;
    f.refused(
        &reg,
        "deploy token deleting",
        reg.art_delete(PRIVATE, zip_path, &bearer(CI_TOKEN)),
        403,
        &["lacks delete permission"],
    )
    .await;
    f.refused(
        &reg,
        "read token deleting",
        reg.art_delete(PRIVATE, zip_path, &bearer(READ_TOKEN)),
        403,
        &["lacks delete permission"],
    )
    .await;
    for (label, repo, auth) in [
        ("reader token", PRIVATE, bearer(READ_TOKEN)),
        ("reader token as Basic", PRIVATE, basic(READ_TOKEN)),
        ("anonymous on a public repository", PUBLIC, String::new()),
    ] {
        let r = reg.get(repo, list, &auth, &[]).await;
        if (r.status, r.text().as_str()) != (200, "v1.0.0\n") {
            f.push(format!(
                "{label}: list answered {} {:?}",
                r.status,
                r.text()
            ));
        }
    }
    f.finish();
}

// ---------------------------------------------------------------------------------------------
// Path traversal and case encoding

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_and_bad_case_encoding_are_refused() {
    let reg = TestRegistry::start_fs(Options::default()).await;
    let mut f = Failures::default();
    // Something to find if a traversal worked.
    let (zip, _) = simple_module("example.com/m", "v1.0.0", "t");
    let r = reg.upload(PRIVATE, &bearer(CI_TOKEN), zip.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let ci = bearer(CI_TOKEN);
    let admin = bearer(ADMIN_TOKEN);
    let invalid = "invalid module proxy path";

    // GOPROXY reads, sent byte for byte (no client-side normalisation).
    for (target, reason) in [
        ("/go/private/../../../etc/passwd", invalid),
        (
            "/go/private/example.com/m/@v/../../../../etc/passwd",
            invalid,
        ),
        ("/go/private/example.com/m/../../../../@v/list", invalid),
        ("/go/private/%2e%2e/%2e%2e/etc/passwd", invalid),
        ("/go/private/%2E%2E/example.com/m/@v/list", invalid),
        ("/go/private/example.com%2F..%2F..%2Fetc/@v/list", invalid),
        (
            "/go/private/example.com/m/@v/..%2f..%2f..%2findex%2fexample.com%2fm%2f@index.json",
            invalid,
        ),
        (
            "/go/private/example.com/m/@v/..%2F..%2F..%2F..%2Fobjects.zip",
            invalid,
        ),
        (
            "/go/private/example.com/m/@v/v1.0.0%2F..%2F..%2Fx.zip",
            invalid,
        ),
        ("/go/private//etc/passwd/@v/list", invalid),
        ("/go/private/%2Fetc%2Fpasswd/@v/list", invalid),
        ("/go/private/example.com/m/@v/%2Fetc%2Fpasswd.zip", invalid),
        ("/go/private/..%5c..%5cetc/@v/list", invalid),
        ("/go/..%2fprivate/example.com/m/@v/list", "does not exist"),
        ("/go/%2e%2e/example.com/m/@v/list", "does not exist"),
        // Case encoding: upper case must be escaped as `!x`, `!` must be followed by a letter.
        ("/go/private/example.com/Foo/@v/list", invalid),
        ("/go/private/example.com/M/@latest", invalid),
        ("/go/private/example.com/!!foo/@v/list", invalid),
        ("/go/private/example.com/foo!/@v/list", invalid),
        ("/go/private/example.com/!/@v/list", invalid),
        ("/go/private/example.com/!1foo/@v/list", invalid),
        ("/go/private/example.com/m/@v/v1.0.0-RC.info", invalid),
        ("/go/private/example.com/m/@v/v1.0.0-!!rc.mod", invalid),
        ("/go/private/example.com/m/@v/v1.0.0-rc!.zip", invalid),
    ] {
        let label = format!("GET {target}");
        f.refused(
            &reg,
            &label,
            raw_request(reg.addr, "GET", target, &[("authorization", &ci)], &[]),
            404,
            &[reason],
        )
        .await;
    }
    // Publishing through traversal or badly escaped Artifactory URLs.
    for target in [
        "/api/go/private/../../etc/passwd/@v/v1.0.0.zip",
        "/api/go/private/example.com/m/@v/../../../../x/@v/v1.0.0.zip",
        "/api/go/private/%2e%2e/%2e%2e/m/@v/v1.0.0.zip",
        "/api/go/private/example.com%2fm%2f..%2f..%2fescape/@v/v1.0.0.zip",
        "/api/go/private/example.com/m/@v/v1.0.0%2f..%2f..%2fevil.zip",
        "/api/go/private//tmp/evil/@v/v1.0.0.zip",
        "/api/go/private/%2Ftmp%2Fevil/@v/v1.0.0.zip",
        "/api/go/private/example.com/M/@v/v1.0.0.zip",
        "/api/go/private/example.com/!!m/@v/v1.0.0.zip",
        "/api/go/private/example.com/m!/@v/v1.0.0.mod",
        "/api/go/private/example.com/m/@v/v1.0.0-RC.info",
    ] {
        let label = format!("PUT {target}");
        f.refused(
            &reg,
            &label,
            raw_request(reg.addr, "PUT", target, &[("authorization", &ci)], &zip),
            404,
            &[invalid],
        )
        .await;
    }
    for target in [
        "/api/go/private/../../example.com/m/@v/v1.0.0.zip",
        "/api/go/private/example.com/m/@v/..%2fv1.0.0.zip",
        "/api/go/private/example.com/M/@v/v1.0.0.zip",
    ] {
        let label = format!("DELETE {target}");
        f.refused(
            &reg,
            &label,
            raw_request(
                reg.addr,
                "DELETE",
                target,
                &[("authorization", &admin)],
                &[],
            ),
            404,
            &[invalid],
        )
        .await;
    }
    for target in ["/api/repos/..%2fprivate/upload", "/api/repos/%2e%2e/upload"] {
        let label = format!("PUT {target}");
        f.refused(
            &reg,
            &label,
            raw_request(reg.addr, "PUT", target, &[("authorization", &ci)], &zip),
            404,
            &["does not exist"],
        )
        .await;
    }
    // The version published above is still there and intact.
    let r = reg
        .get(PRIVATE, "example.com/m/@v/v1.0.0.zip", &ci, &[])
        .await;
    assert_eq!((r.status, r.body == zip), (200, true));
    f.finish();
}

/// Paths that no route matches, and methods a route does not take, are errors like any other:
/// a plain-text reason (architecture: "Bodies of errors are `text/plain; charset=utf-8`").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrouted_requests_answer_with_a_reason() {
    let reg = TestRegistry::start_fs(Options::default()).await;
    let mut f = Failures::default();
    let auth = bearer(CI_TOKEN);
    for (method, target, status, reason) in [
        ("GET", "/go/..%2f..%2fetc%2fpasswd", 404, "no such endpoint"),
        ("GET", "/go/private", 404, "no such endpoint"),
        ("GET", "/../../etc/passwd", 404, "no such endpoint"),
        ("GET", "/api/go/private", 404, "no such endpoint"),
        ("PUT", "/api/repos/private", 404, "no such endpoint"),
        ("POST", "/api/repos/private/upload", 405, "not allowed"),
        (
            "PUT",
            "/go/private/example.com/m/@v/v1.0.0.zip",
            405,
            "not allowed",
        ),
        (
            "DELETE",
            "/go/private/example.com/m/@v/v1.0.0.zip",
            405,
            "not allowed",
        ),
    ] {
        let label = format!("{method} {target}");
        f.refused(
            &reg,
            &label,
            raw_request(reg.addr, method, target, &[("authorization", &auth)], b"x"),
            status,
            &[reason],
        )
        .await;
    }
    f.finish();
}
