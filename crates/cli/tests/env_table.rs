//! The README's environment table is the services' declared overrides, row for row: a variable
//! added to a service without a README row (or a row for a variable no service reads) fails here.

use strata_central_registry::config::RegistryConfig;
use strata_edge_proxy::config::EdgeConfig;
use strata_service::config::{ServiceConfig, config_env, env_name};
use strata_sync_worker::config::WorkerConfig;

/// A list of old names as the table shows it.
fn olds(was: &[&str]) -> String {
    if was.is_empty() {
        return String::new();
    }
    was.iter()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table rows of service `C`, called `label` in the table.
fn rows<C: ServiceConfig>(label: &str) -> Vec<String> {
    let mut rows = vec![format!(
        "| `{}` | {label} | the configuration file (when `--config` is not given) |  | {} |",
        config_env(C::SERVICE),
        olds(C::CONFIG_WAS)
    )];
    for o in C::OVERRIDES {
        rows.push(format!(
            "| `{}` | {label} | `{}` | {} | {} |",
            env_name(C::SERVICE, o),
            o.key,
            o.note,
            olds(o.was)
        ));
    }
    rows
}

#[test]
fn the_readme_table_is_the_declared_overrides() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let expected: Vec<String> = [
        rows::<RegistryConfig>("registry"),
        rows::<EdgeConfig>("edge"),
        rows::<WorkerConfig>("sync worker"),
    ]
    .concat();
    let header = "| variable | service | replaces | also | old name (deprecated) |";
    let table: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != header)
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(
        table,
        expected,
        "README.md's environment table should read:\n{header}\n|---|---|---|---|---|\n{}",
        expected.join("\n")
    );
}
