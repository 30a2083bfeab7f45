//! Private modules stay private at the edge, also once cached and also with the registry dead:
//! an authorized client caches a private `.mod` and `.zip`; an anonymous client and a token
//! without read on `private` (or on `go`, whose members include `private`) get 401/403 for the
//! same URLs — never the bytes — and after the registry process is SIGKILLed they are still
//! refused, while the authorized client is still served from the edge's cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use strata_e2e::{CI_TOKEN, OUTSIDER_TOKEN, Stack, binaries, cache_of, get};
use strata_testkit::FixtureModule;

const MODULE: &str = "example.com/private/Secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unauthenticated_clients_never_get_cached_private_artifacts() {
    let Some(stack) = Stack::start("private-access", binaries!(), &[]).await else {
        return;
    };
    let mut registry = stack.start_registry("registry").await;
    let secret = FixtureModule::new(MODULE, "v1.0.0", &[])
        .with_file("secret.txt", "the launch codes\n")
        .build();
    registry.publish("private", secret.zip.clone()).await;
    let edge = stack
        .start_edge(&stack.edge_spec("edge", &[&registry]))
        .await;
    let http = edge.client().clone();

    let escaped = "example.com/private/!secret/@v/v1.0.0";
    let urls = [
        (edge.url(&format!("private/{escaped}.mod")), &secret.go_mod),
        (edge.url(&format!("private/{escaped}.zip")), &secret.zip),
        // The same module through `go` (a virtual repository over `private`).
        (edge.url(&format!("{escaped}.zip")), &secret.zip),
    ];

    // The authorized client fetches (and so caches) every artifact, then gets it from a tier.
    for (url, artifact) in &urls {
        let (status, headers, body) = get(&http, url, Some(CI_TOKEN)).await;
        assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
        assert_eq!(&body, *artifact, "{url}");
        assert_eq!(cache_of(&headers), "miss", "{url}");
        let (status, headers, body) = get(&http, url, Some(CI_TOKEN)).await;
        assert_eq!((status, &body), (200, *artifact), "{url}");
        assert!(cache_of(&headers).starts_with("hit-"), "{url}: {headers:?}");
    }

    let refused = |who: &str, url: &str, status: u16, body: &[u8], artifact: &[u8]| {
        println!(
            "{who} {url}: {status} {:?}",
            String::from_utf8_lossy(&body[..body.len().min(120)])
        );
        assert!(
            body != artifact && !body.windows(8).any(|w| w == b"launch c"),
            "{who} got the artifact at {url}"
        );
    };
    for (url, artifact) in &urls {
        let (status, headers, body) = get(&http, url, None).await;
        refused("anonymous", url, status, &body, artifact);
        assert_eq!(status, 401, "anonymous {url}");
        assert!(headers.contains_key("www-authenticate"), "{headers:?}");
        let (status, _, body) = get(&http, url, Some(OUTSIDER_TOKEN)).await;
        refused("outsider", url, status, &body, artifact);
        assert_eq!(status, 403, "outsider {url}");
        let (status, _, body) = get(&http, url, Some("strata_not-a-token")).await;
        refused("unknown token", url, status, &body, artifact);
        assert_eq!(status, 401, "unknown token {url}");
    }

    // The registry crashes: nobody can be confirmed any more. The authorized client's recent
    // "yes" still admits it to the cache (offline grace); the others were never admitted.
    registry.kill();
    for (url, artifact) in &urls {
        let (status, headers, body) = get(&http, url, Some(CI_TOKEN)).await;
        assert_eq!(
            (status, &body),
            (200, *artifact),
            "offline, authorized: {url}"
        );
        assert!(cache_of(&headers).starts_with("hit-"), "{headers:?}");
        for (who, token) in [("anonymous", None), ("outsider", Some(OUTSIDER_TOKEN))] {
            let (status, _, body) = get(&http, url, token).await;
            refused(&format!("offline {who}"), url, status, &body, artifact);
            assert!(
                matches!(status, 401 | 403 | 502 | 503 | 504),
                "offline {who} {url}: {status}"
            );
        }
    }
}
