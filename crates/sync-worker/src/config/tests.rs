//! Parsing, defaults, environment overrides and key-naming errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn parse(text: &str) -> Result<WorkerConfig, ConfigError> {
    WorkerConfig::from_toml(text, "test.toml", &[])
}

#[test]
fn defaults_and_a_full_redis_config() {
    let empty = parse("").unwrap();
    assert_eq!(empty.concurrency, 8);
    assert_eq!(empty.jobs, JobsConfig::default());
    assert_eq!(empty.server.http.port(), 8090);
    assert!(empty.redis_settings().is_none());
    assert_eq!(empty.memory_settings().max_backlog, 100_000);

    let text = r#"
        concurrency = 4
        max_deliveries = 3
        retry_initial_ms = 50
        retry_max_ms = 2000
        visibility_timeout_ms = 3000
        shutdown_grace_ms = 100
        jobs = { kind = "redis", url = "redis://:pw@127.0.0.1:7000/2", stream = "jobs", consumer = "w1" }
        [server]
        http = "127.0.0.1:0"
    "#;
    let config = parse(text).unwrap();
    let settings = config.worker_settings();
    assert_eq!((settings.concurrency, settings.max_deliveries), (4, 3));
    assert_eq!(settings.retry.step(1), Duration::from_millis(50));
    assert_eq!(settings.retry.max(), Duration::from_secs(2));
    assert_eq!(settings.shutdown_grace, Duration::from_millis(100));
    let redis = config.redis_settings().unwrap();
    assert_eq!(
        (
            redis.stream.as_str(),
            redis.group.as_str(),
            redis.consumer.as_str()
        ),
        ("jobs", "strata-sync", "w1")
    );
    assert_eq!(redis.visibility_timeout, Duration::from_secs(3));
    assert_eq!(redis.completed_ttl, Duration::from_secs(604_800));
    let shown = format!("{:?} {redis:?}", config.jobs);
    assert!(!shown.contains(":pw@") && shown.contains("***@"), "{shown}");
}

#[test]
fn the_example_config_loads_and_matches_the_defaults() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/config/worker.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let example = WorkerConfig::from_toml(&text, path, &[]).unwrap();
    let JobsConfig::Redis(redis) = &example.jobs else {
        panic!("{:?}", example.jobs)
    };
    assert_eq!(*redis, RedisJobsConfig::default());
    let defaults = WorkerConfig {
        jobs: example.jobs.clone(),
        registry: example.registry.clone(),
        ..parse("").unwrap()
    };
    assert_eq!(example, defaults);
}

#[test]
fn generated_consumer_names_differ() {
    let config = parse(r#"jobs = { kind = "redis" }"#).unwrap();
    let a = config.redis_settings().unwrap().consumer;
    let b = config.redis_settings().unwrap().consumer;
    assert_ne!(a, b);
    assert!(a.contains(&std::process::id().to_string()), "{a}");
}

#[test]
fn environment_overrides() {
    let env = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
    };
    let config = WorkerConfig::from_toml(
        "",
        "t",
        &env(&[
            ("STRATA_SYNC_HTTP_LISTEN", "127.0.0.1:9999"),
            ("STRATA_SYNC_CONCURRENCY", "2"),
            ("STRATA_REDIS_URL", "redis://10.0.0.1:6379"),
            ("STRATA_SYNC_CONSUMER", "pod-7"),
        ]),
    )
    .unwrap();
    assert_eq!(config.server.http.port(), 9999);
    assert_eq!(config.concurrency, 2);
    let JobsConfig::Redis(redis) = &config.jobs else {
        panic!("{:?}", config.jobs)
    };
    assert_eq!(redis.url, "redis://10.0.0.1:6379");
    assert_eq!(redis.consumer.as_deref(), Some("pod-7"));

    // The URL override keeps the rest of a Redis section.
    let kept = WorkerConfig::from_toml(
        r#"jobs = { kind = "redis", stream = "mine" }"#,
        "t",
        &env(&[("STRATA_REDIS_URL", "redis://h:1")]),
    )
    .unwrap();
    assert!(
        matches!(&kept.jobs, JobsConfig::Redis(r) if r.stream == "mine" && r.url == "redis://h:1")
    );

    let error = WorkerConfig::from_toml("", "t", &env(&[("STRATA_SYNC_CONCURRENCY", "lots")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("STRATA_SYNC_CONCURRENCY"), "{error}");

    // STRATA_SYNC_REDIS_URL is the name; the unprefixed STRATA_REDIS_URL still works, with a
    // warning, and loses to it.
    let loaded = config::from_toml::<WorkerConfig>(
        "",
        "t",
        &env(&[("STRATA_SYNC_REDIS_URL", "redis://new:1")]),
    )
    .unwrap();
    assert!(matches!(&loaded.config.jobs, JobsConfig::Redis(r) if r.url == "redis://new:1"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let loaded =
        config::from_toml::<WorkerConfig>("", "t", &env(&[("STRATA_REDIS_URL", "redis://old:1")]))
            .unwrap();
    assert!(matches!(&loaded.config.jobs, JobsConfig::Redis(r) if r.url == "redis://old:1"));
    assert_eq!(
        loaded.warnings,
        ["STRATA_REDIS_URL is deprecated: use STRATA_SYNC_REDIS_URL"]
    );
    let loaded = config::from_toml::<WorkerConfig>(
        "",
        "t",
        &env(&[
            ("STRATA_REDIS_URL", "redis://old:1"),
            ("STRATA_SYNC_REDIS_URL", "redis://new:1"),
        ]),
    )
    .unwrap();
    assert!(matches!(&loaded.config.jobs, JobsConfig::Redis(r) if r.url == "redis://new:1"));
    let registry = WorkerConfig::from_toml(
        "",
        "t",
        &env(&[("STRATA_SYNC_REGISTRY_CONFIG", "/etc/strata/registry.toml")]),
    )
    .unwrap();
    assert_eq!(
        registry.registry.unwrap().config,
        PathBuf::from("/etc/strata/registry.toml")
    );
}

#[test]
fn mistakes_name_their_key() {
    for (text, want) in [
        ("concurrency = 0", "concurrency: must be between 1 and 1024"),
        ("max_deliveries = 0", "max_deliveries"),
        ("retry_initial_ms = 0", "retry_initial_ms"),
        ("retry_initial_ms = 10\nretry_max_ms = 5", "retry_max_ms"),
        ("visibility_timeout_ms = 10", "visibility_timeout_ms"),
        ("completed_ttl_secs = 0", "completed_ttl_secs"),
        (
            r#"jobs = { kind = "memory", max_backlog = 0 }"#,
            "jobs.max_backlog",
        ),
        (r#"jobs = { kind = "redis", url = "http://x" }"#, "jobs.url"),
        (r#"jobs = { kind = "redis", stream = "" }"#, "jobs.stream"),
        (r#"jobs = { kind = "redis", group = "a b" }"#, "jobs.group"),
        (
            r#"jobs = { kind = "redis", consumer = " " }"#,
            "jobs.consumer",
        ),
        (
            r#"jobs = { kind = "redis", block_ms = 0 }"#,
            "jobs.block_ms",
        ),
        (
            "visibility_timeout_ms = 500\njobs = { kind = \"redis\", block_ms = 1000 }",
            "jobs.block_ms: must be below visibility_timeout_ms",
        ),
    ] {
        let error = parse(text).unwrap_err().to_string();
        assert!(error.contains(want), "{text}: {error}");
    }
    for (text, want) in [
        ("concurency = 3", "unknown field `concurency`"),
        ("[server]\nhtp = \"127.0.0.1:1\"", "unknown field `htp`"),
        (
            r#"jobs = { kind = "redis", urls = "x" }"#,
            "unknown field `urls`",
        ),
        (r#"jobs = { kind = "kafka" }"#, "unknown variant `kafka`"),
        ("concurrency = \"many\"", "invalid type"),
    ] {
        let error = parse(text).unwrap_err().to_string();
        assert!(
            error.contains("test.toml") && error.contains(want),
            "{text}: {error}"
        );
    }
    let missing = config::load::<WorkerConfig>(Path::new("/nonexistent/worker.toml")).unwrap_err();
    assert!(missing.to_string().contains("/nonexistent/worker.toml"));
}

#[test]
fn a_relative_registry_config_is_taken_from_the_config_file_directory() {
    let dir = tempfile::tempdir().unwrap();
    let registry = format!(
        "storage = {{ kind = \"fs\", root = {:?} }}\n",
        dir.path().join("data")
    );
    std::fs::write(dir.path().join("registry.toml"), &registry).unwrap();
    let file = dir.path().join("worker.toml");
    std::fs::write(&file, "[registry]\nconfig = \"registry.toml\"\n").unwrap();
    let loaded = config::load::<WorkerConfig>(&file).unwrap();
    assert_eq!(
        loaded.config.registry.unwrap().config,
        dir.path().join("registry.toml")
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let absolute = elsewhere.path().join("registry.toml");
    std::fs::write(&absolute, &registry).unwrap();
    std::fs::write(&file, format!("[registry]\nconfig = {absolute:?}\n")).unwrap();
    let loaded = config::load::<WorkerConfig>(&file).unwrap();
    assert_eq!(loaded.config.registry.unwrap().config, absolute);

    // What a start (and --check-config) checks beyond the file: the registry configuration
    // loads as the registry would load it; one it refuses (here a ledger whose key variable
    // is unset), or none at all, is a configuration error.
    let loaded = config::load::<WorkerConfig>(&file).unwrap();
    loaded.config.check_references().unwrap();
    std::fs::write(
        &absolute,
        format!("{registry}[ledger]\nname = \"sum.example.com\"\nkey_env = \"STRATA_TEST_UNSET_LEDGER_KEY\"\n"),
    )
    .unwrap();
    let err = loaded.config.check_references().unwrap_err().to_string();
    assert!(err.contains("registry configuration"), "{err}");
    assert!(err.contains("STRATA_TEST_UNSET_LEDGER_KEY"), "{err}");
    std::fs::remove_file(&absolute).unwrap();
    let err = loaded.config.check_references().unwrap_err().to_string();
    assert!(err.contains("registry configuration"), "{err}");
}
