#![allow(clippy::unwrap_used, clippy::expect_used)]
use axum::http::HeaderValue;

use super::event::ZERO_SHA;
use super::*;

fn hook(provider: Provider) -> WebhookConfig {
    WebhookConfig {
        provider,
        secret: Some("s3cret".into()),
        secret_env: None,
        repository: RepoName::new("gocache").unwrap(),
        module_prefix: None,
        url_prefix: None,
    }
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn signatures_are_checked_per_provider() {
    let body = br#"{"ref":"refs/tags/v1.0.0"}"#;
    let good = sign("s3cret", body);
    let github = |v: &str| headers(&[("x-hub-signature-256", v)]);
    assert!(verify(
        Provider::Github,
        "s3cret",
        &github(&format!("sha256={good}")),
        body
    ));
    assert!(!verify(
        Provider::Github,
        "other",
        &github(&format!("sha256={good}")),
        body
    ));
    assert!(
        !verify(Provider::Github, "s3cret", &github(&good), body),
        "no sha256= prefix"
    );
    assert!(
        !verify(Provider::Github, "s3cret", &github("sha256=zz"), body),
        "not hex"
    );
    assert!(
        !verify(Provider::Github, "s3cret", &HeaderMap::new(), body),
        "missing"
    );
    let tampered = br#"{"ref":"refs/tags/v1.0.1"}"#;
    assert!(!verify(
        Provider::Github,
        "s3cret",
        &github(&format!("sha256={good}")),
        tampered
    ));

    let gitea = headers(&[("x-gitea-signature", &good)]);
    assert!(verify(Provider::Gitea, "s3cret", &gitea, body));
    assert!(
        !verify(
            Provider::Gitea,
            "s3cret",
            &github(&format!("sha256={good}")),
            body
        ),
        "Gitea is checked on its own header"
    );

    assert!(verify(
        Provider::Gitlab,
        "s3cret",
        &headers(&[("x-gitlab-token", "s3cret")]),
        body
    ));
    assert!(!verify(
        Provider::Gitlab,
        "s3cret",
        &headers(&[("x-gitlab-token", "s3cre")]),
        body
    ));
    assert!(!verify(Provider::Gitlab, "s3cret", &HeaderMap::new(), body));
}

fn tag(tag: &str, url: &str) -> Event {
    Event::Tag(TagPush {
        tag: tag.into(),
        web_url: url.into(),
    })
}

#[test]
fn github_pushes() {
    let push = headers(&[("x-github-event", "push")]);
    let body = |r: &str, created: bool, deleted: bool| {
        serde_json::json!({"ref": r, "created": created, "deleted": deleted,
            "before": ZERO_SHA, "after": "1111111111111111111111111111111111111111",
            "repository": {"html_url": "https://github.com/org/repo"}})
        .to_string()
    };
    assert_eq!(
        parse_event(
            Provider::Github,
            &push,
            body("refs/tags/v1.2.3", true, false).as_bytes()
        ),
        Ok(tag("v1.2.3", "https://github.com/org/repo"))
    );
    assert_eq!(
        parse_event(
            Provider::Github,
            &push,
            body("refs/heads/main", false, false).as_bytes()
        ),
        Ok(Event::Ignored("not a tag push".into()))
    );
    assert_eq!(
        parse_event(
            Provider::Github,
            &push,
            body("refs/tags/v1.2.3", false, true).as_bytes()
        ),
        Ok(Event::Ignored("a tag was deleted".into()))
    );
    assert_eq!(
        parse_event(
            Provider::Github,
            &push,
            body("refs/tags/v1.2.3", false, false).as_bytes()
        ),
        Ok(Event::Ignored("an existing tag was moved".into()))
    );
    assert_eq!(
        parse_event(
            Provider::Github,
            &headers(&[("x-github-event", "ping")]),
            b"{}"
        ),
        Ok(Event::Ignored("ping".into()))
    );
    assert_eq!(
        parse_event(
            Provider::Github,
            &headers(&[("x-github-event", "issues")]),
            b"{}"
        ),
        Ok(Event::Ignored("a issues event".into()))
    );
    assert!(
        parse_event(Provider::Github, &push, b"not json")
            .unwrap_err()
            .contains("not JSON")
    );
    assert!(
        parse_event(Provider::Github, &push, b"[1]")
            .unwrap_err()
            .contains("object")
    );
    assert!(
        parse_event(Provider::Github, &push, br#"{"created":true}"#)
            .unwrap_err()
            .contains("ref")
    );
    let no_repo = serde_json::json!({"ref": "refs/tags/v1.0.0", "created": true}).to_string();
    assert!(
        parse_event(Provider::Github, &push, no_repo.as_bytes())
            .unwrap_err()
            .contains("html_url")
    );
}

#[test]
fn gitea_pushes_and_creates() {
    let push = headers(&[("x-gitea-event", "push")]);
    let body = |before: &str, after: &str| {
        serde_json::json!({"ref": "refs/tags/v0.4.0", "before": before, "after": after,
            "repository": {"html_url": "https://gitea.corp.local/team/lib"}})
        .to_string()
    };
    let sha = "2222222222222222222222222222222222222222";
    assert_eq!(
        parse_event(Provider::Gitea, &push, body(ZERO_SHA, sha).as_bytes()),
        Ok(tag("v0.4.0", "https://gitea.corp.local/team/lib"))
    );
    assert_eq!(
        parse_event(Provider::Gitea, &push, body(sha, ZERO_SHA).as_bytes()),
        Ok(Event::Ignored("a tag was deleted".into()))
    );
    let create = serde_json::json!({"ref": "v0.5.0", "ref_type": "tag", "sha": sha,
        "repository": {"html_url": "https://gitea.corp.local/team/lib"}})
    .to_string();
    assert_eq!(
        parse_event(
            Provider::Gitea,
            &headers(&[("x-gitea-event", "create")]),
            create.as_bytes()
        ),
        Ok(tag("v0.5.0", "https://gitea.corp.local/team/lib"))
    );
    let branch = serde_json::json!({"ref": "dev", "ref_type": "branch",
        "repository": {"html_url": "https://gitea.corp.local/team/lib"}})
    .to_string();
    assert_eq!(
        parse_event(
            Provider::Gitea,
            &headers(&[("x-gitea-event", "create")]),
            branch.as_bytes()
        ),
        Ok(Event::Ignored("not a tag".into()))
    );
}

#[test]
fn gitlab_tag_pushes() {
    let hook_headers = headers(&[("x-gitlab-event", "Tag Push Hook")]);
    let body = |kind: &str, after: &str| {
        serde_json::json!({"object_kind": kind, "ref": "refs/tags/v3.0.0",
            "before": ZERO_SHA, "after": after,
            "project": {"web_url": "https://gitlab.example.com/group/sub/proj"},
            "repository": {"homepage": "https://gitlab.example.com/group/sub/proj"}})
        .to_string()
    };
    let sha = "3333333333333333333333333333333333333333";
    assert_eq!(
        parse_event(
            Provider::Gitlab,
            &hook_headers,
            body("tag_push", sha).as_bytes()
        ),
        Ok(tag("v3.0.0", "https://gitlab.example.com/group/sub/proj"))
    );
    assert_eq!(
        parse_event(
            Provider::Gitlab,
            &hook_headers,
            body("push", sha).as_bytes()
        ),
        Ok(Event::Ignored("not a tag push".into()))
    );
    assert_eq!(
        parse_event(
            Provider::Gitlab,
            &hook_headers,
            body("tag_push", ZERO_SHA).as_bytes()
        ),
        Ok(Event::Ignored("a tag was deleted".into()))
    );
    let homepage_only = serde_json::json!({"object_kind": "tag_push", "ref": "refs/tags/v1.0.0",
        "after": sha, "repository": {"homepage": "https://gitlab.example.com/g/p"}})
    .to_string();
    assert_eq!(
        parse_event(Provider::Gitlab, &hook_headers, homepage_only.as_bytes()),
        Ok(tag("v1.0.0", "https://gitlab.example.com/g/p"))
    );
}

fn mv(hook: &WebhookConfig, t: &str, url: &str) -> Result<String, String> {
    module_version(
        hook,
        &TagPush {
            tag: t.into(),
            web_url: url.into(),
        },
    )
    .map(|(m, v)| format!("{m}@{v}"))
}

#[test]
fn tags_become_module_versions() {
    let h = hook(Provider::Github);
    let url = "https://github.com/org/repo";
    assert_eq!(mv(&h, "v1.2.3", url).unwrap(), "github.com/org/repo@v1.2.3");
    assert_eq!(
        mv(&h, "v0.1.0-rc.1", url).unwrap(),
        "github.com/org/repo@v0.1.0-rc.1"
    );
    assert_eq!(
        mv(&h, "v2.0.0", url).unwrap(),
        "github.com/org/repo/v2@v2.0.0",
        "/vN suffix"
    );
    assert_eq!(
        mv(&h, "tools/v1.4.0", url).unwrap(),
        "github.com/org/repo/tools@v1.4.0"
    );
    assert_eq!(
        mv(&h, "tools/v3.1.0", url).unwrap(),
        "github.com/org/repo/tools/v3@v3.1.0"
    );
    assert_eq!(
        mv(&h, "v1.0.0", "https://github.com/org/repo.git/").unwrap(),
        "github.com/org/repo@v1.0.0"
    );
    assert_eq!(
        mv(&h, "v1.0.0", "http://gitea.local:3000/org/repo").unwrap(),
        "gitea.local/org/repo@v1.0.0",
        "ports are not part of module paths"
    );
    for not_a_version in [
        "release-1",
        "v1.2",
        "1.2.3",
        "v1.2.3+meta",
        "v2.0.0+incompatible",
        "v01.2.3",
    ] {
        assert_eq!(
            mv(&h, not_a_version, url).unwrap_err(),
            "not a module version",
            "{not_a_version}"
        );
    }
    let impossible = mv(&h, "v1.0.0", "https://localhost/org/repo").unwrap_err();
    assert!(
        impossible.starts_with("not a module version:"),
        "{impossible}"
    );
}

#[test]
fn prefixes_map_urls_to_module_paths() {
    let with_module = WebhookConfig {
        module_prefix: Some("go.corp.example.com".into()),
        ..hook(Provider::Gitea)
    };
    assert_eq!(
        mv(&with_module, "v1.0.0", "https://git.corp.local/team/lib").unwrap(),
        "go.corp.example.com/team/lib@v1.0.0"
    );
    let with_url = WebhookConfig {
        module_prefix: Some("corp.example.com/".into()),
        url_prefix: Some("https://git.corp.local/go/".into()),
        ..hook(Provider::Gitea)
    };
    assert_eq!(
        mv(&with_url, "v1.1.0", "https://git.corp.local/go/lib").unwrap(),
        "corp.example.com/lib@v1.1.0"
    );
    let single = WebhookConfig {
        module_prefix: Some("corp.example.com/lib".into()),
        url_prefix: Some("https://git.corp.local/go/lib-repo".into()),
        ..hook(Provider::Gitea)
    };
    assert_eq!(
        mv(&single, "v2.0.0", "https://git.corp.local/go/lib-repo").unwrap(),
        "corp.example.com/lib/v2@v2.0.0"
    );
    assert!(
        mv(&single, "v1.0.0", "https://git.corp.local/go/lib-repo2")
            .unwrap_err()
            .contains("not under url_prefix")
    );
    assert!(
        mv(&with_url, "v1.0.0", "https://elsewhere.example/go/lib")
            .unwrap_err()
            .contains("not under url_prefix")
    );
}

#[test]
fn secrets_come_from_the_config_or_the_environment() {
    let mut hooks = vec![WebhookConfig {
        secret: None,
        secret_env: Some("HOOK_SECRET".into()),
        ..hook(Provider::Github)
    }];
    let env = vec![("HOOK_SECRET".to_owned(), "from-env".to_owned())];
    resolve_secrets(&mut hooks, &env).unwrap();
    assert_eq!(hooks[0].secret.as_deref(), Some("from-env"));
    validate(&hooks).unwrap();
    assert!(
        !format!("{:?}", hooks[0]).contains("from-env"),
        "Debug hides the secret"
    );

    let mut unset = vec![WebhookConfig {
        secret: None,
        secret_env: Some("NOPE".into()),
        ..hook(Provider::Gitlab)
    }];
    let error = resolve_secrets(&mut unset, &env).unwrap_err().to_string();
    assert!(
        error.contains("webhooks[0] (gitlab)") && error.contains("NOPE"),
        "{error}"
    );
    let mut both = vec![WebhookConfig {
        secret_env: Some("HOOK_SECRET".into()),
        ..hook(Provider::Gitlab)
    }];
    assert!(
        resolve_secrets(&mut both, &env)
            .unwrap_err()
            .to_string()
            .contains("not both")
    );

    for (bad, want) in [
        (
            WebhookConfig {
                secret: None,
                ..hook(Provider::Github)
            },
            "secret",
        ),
        (
            WebhookConfig {
                secret: Some(String::new()),
                ..hook(Provider::Github)
            },
            "secret",
        ),
        (
            WebhookConfig {
                module_prefix: Some("no dots/x".into()),
                ..hook(Provider::Github)
            },
            "module_prefix",
        ),
        (
            WebhookConfig {
                url_prefix: Some("https://x.example/".into()),
                ..hook(Provider::Github)
            },
            "needs module_prefix",
        ),
        (
            WebhookConfig {
                module_prefix: Some("x.example".into()),
                url_prefix: Some("ftp://x.example/".into()),
                ..hook(Provider::Github)
            },
            "http(s)",
        ),
    ] {
        let error = validate(&[bad]).unwrap_err().to_string();
        assert!(error.contains(want), "{want}: {error}");
    }
}
