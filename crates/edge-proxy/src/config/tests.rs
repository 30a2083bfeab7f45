//! Tests of the configuration: the shipped example, overrides, errors.
#![allow(clippy::unwrap_used)]
use super::*;

const EXAMPLE: &str = include_str!("../../../../deploy/config/edge.toml");

#[test]
fn loads_the_shipped_example() {
    let c = EdgeConfig::from_toml(EXAMPLE, "edge.toml", &[]).unwrap();
    assert_eq!(
        c.route("/github.com/x/@v/list"),
        Some(("go", "github.com/x/@v/list"))
    );
    assert_eq!(
        c.route("/private/a/@latest"),
        Some(("private", "a/@latest"))
    );
    assert!(c.events.redis().is_some());
    assert_eq!(c.registries.len(), 2);
}

#[test]
fn env_overrides_and_errors_name_the_key() {
    let env = vec![
        ("STRATA_EDGE_LISTEN".to_string(), "0.0.0.0:9".to_string()),
        ("STRATA_EDGE_CACHE_DIR".to_string(), "/x".to_string()),
    ];
    let c = EdgeConfig::from_toml(EXAMPLE, "t", &env).unwrap();
    assert_eq!(c.server.listen.port(), 9);
    assert_eq!(c.cache.dir, PathBuf::from("/x"));
    let bad = vec![("STRATA_EDGE_LISTEN".to_string(), "nope".to_string())];
    let e = EdgeConfig::from_toml(EXAMPLE, "t", &bad).unwrap_err();
    assert!(e.to_string().contains("STRATA_EDGE_LISTEN"), "{e}");
    let typo = EXAMPLE.replace("metadata_ttl_ms", "metadata_tll_ms");
    let e = EdgeConfig::from_toml(&typo, "t", &[]).unwrap_err();
    assert!(e.to_string().contains("metadata_tll_ms"), "{e}");
    let no_slash = EXAMPLE.replace("prefix = \"/private/\"", "prefix = \"/private\"");
    assert!(EdgeConfig::from_toml(&no_slash, "t", &[]).is_err());
}
