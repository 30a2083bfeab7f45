//! Loading a service's configuration, the same way for every service: a TOML file, then
//! environment overrides, then validation into typed values, with one [`ConfigError`].
//!
//! **The environment convention.** A service named `<SERVICE>` (`REGISTRY`, `EDGE`, `SYNC`)
//! reads `STRATA_<SERVICE>_CONFIG` for its file (when `--config` is not given) and
//! `STRATA_<SERVICE>_<NAME>` for each override it declares in [`ServiceConfig::OVERRIDES`]. An
//! override replaces the value its TOML key names, whatever the file says. Names from before
//! the convention (`STRATA_HTTP_LISTEN`, the unprefixed `STRATA_REDIS_URL`, …) are listed as
//! [`Override::was`]: they still work, with a deprecation warning, and lose to the new name when
//! both are set. Another `STRATA_<SERVICE>_…` variable is reported as unknown (a typo would
//! otherwise be silently ignored) but does not stop the service.
//!
//! Warnings are returned with the configuration ([`Loaded::warnings`]) because configuration is
//! read before logging starts; [`crate::bootstrap`] logs them once it has.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A configuration that cannot be used; a service binary exits with status 64 on it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// TOML syntax, or a field unknown, missing or of the wrong type.
    #[error("{origin}: {message}")]
    Parse {
        /// Where the text came from (the file, or `<embedded>`).
        origin: String,
        /// The parser's message, naming the key, with line and column.
        message: String,
    },
    /// An environment override that does not parse.
    #[error("environment variable {name}={value:?}: {reason}")]
    Env {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Values that parse but do not work (out of range, or not fitting together); the message
    /// names the key.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl ConfigError {
    /// An [`Invalid`](Self::Invalid) error naming `key`.
    pub fn invalid(key: &str, reason: impl std::fmt::Display) -> Self {
        Self::Invalid(format!("{key}: {reason}"))
    }
}

/// One environment override a service takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Override {
    /// The name after `STRATA_<SERVICE>_` (`HTTP_LISTEN`).
    pub name: &'static str,
    /// The TOML key it replaces, as written in the file (`server.http`).
    pub key: &'static str,
    /// What it does beyond setting the key (empty when nothing).
    pub note: &'static str,
    /// Names it had before the convention; they still work, with a warning.
    pub was: &'static [&'static str],
}

/// A service's configuration type.
pub trait ServiceConfig: DeserializeOwned + Sized {
    /// The service's part of the variable names: `REGISTRY`, `EDGE` or `SYNC`.
    const SERVICE: &'static str;
    /// The overrides the service takes.
    const OVERRIDES: &'static [Override];

    /// Old names of `STRATA_<SERVICE>_CONFIG`, still read with a warning.
    const CONFIG_WAS: &'static [&'static str] = &[];

    /// The binary's name, the default `service.name` of its spans (`strata-edge`).
    const BINARY: &'static str;

    /// The file's `[tracing]` table, if the service has one (see [`crate::trace`]).
    fn tracing(&self) -> Option<&crate::trace::TracingConfig> {
        None
    }

    /// Applies the override `name` (an [`Override::name`] of [`Self::OVERRIDES`]) with `value`;
    /// the error says why the value is unusable.
    fn apply_override(&mut self, name: &str, value: &str) -> Result<(), String>;

    /// Checks the values together and turns them into typed settings, after the overrides.
    fn validate(&mut self) -> Result<(), ConfigError>;

    /// Told the file the configuration was read from, before [`validate`](Self::validate)
    /// (a service resolves its relative paths against the file's directory here).
    fn loaded_from(&mut self, _file: &Path) {}

    /// Reads the variables the configuration itself names (a webhook's `secret_env`) from
    /// `env`, the environment the overrides came from, after [`validate`](Self::validate).
    fn read_named_env(&mut self, _env: &[(String, String)]) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Checks what the configuration refers to beyond itself (another configuration file it
    /// names), as a start would find it. The binaries' bootstrap runs it for `--check-config`
    /// and before starting (exit 64); [`load`] does not.
    fn check_references(&self) -> Result<(), ConfigError> {
        Ok(())
    }

    /// [`load`]: the file at `path` with the process environment, the warnings logged
    /// (for callers other than a binary's bootstrap, which logs them once logging is up).
    fn load(path: &Path) -> Result<Self, ConfigError> {
        load::<Self>(path).map(Loaded::logged)
    }

    /// [`from_toml`]: TOML `text` (from `origin`, for messages) with the overrides in `env`
    /// (`(name, value)` pairs), the warnings logged.
    fn from_toml(text: &str, origin: &str, env: &[(String, String)]) -> Result<Self, ConfigError> {
        from_toml::<Self>(text, origin, env).map(Loaded::logged)
    }
}

/// The environment variable naming the configuration file of `service`
/// (`STRATA_EDGE_CONFIG`).
pub fn config_env(service: &str) -> String {
    format!("STRATA_{service}_CONFIG")
}

/// The full variable name of an override of `service` (`STRATA_EDGE_LISTEN`).
pub fn env_name(service: &str, o: &Override) -> String {
    format!("STRATA_{service}_{}", o.name)
}

/// A loaded configuration with what the operator should be told about it.
#[derive(Debug, Clone)]
pub struct Loaded<C> {
    /// The validated configuration.
    pub config: C,
    /// Deprecated or unknown variables seen, one line each.
    pub warnings: Vec<String>,
}

impl<C> Loaded<C> {
    /// The configuration, its warnings logged: for callers other than a binary's bootstrap
    /// (which logs them itself once logging is up), such as a worker reading the registry's file.
    pub fn logged(self) -> C {
        for warning in &self.warnings {
            tracing::warn!("{warning}");
        }
        self.config
    }
}

/// Reads the TOML file at `path`, applies the process environment's overrides and validates.
pub fn load<C: ServiceConfig>(path: &Path) -> Result<Loaded<C>, ConfigError> {
    load_with_env(path, &std::env::vars().collect::<Vec<_>>())
}

/// [`load`] with the environment `env` (`(name, value)` pairs) instead of the process's.
pub fn load_with_env<C: ServiceConfig>(
    path: &Path,
    env: &[(String, String)],
) -> Result<Loaded<C>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_and_check(&text, &path.display().to_string(), Some(path), env)
}

/// Parses TOML `text` (from `origin`, for messages), applies the overrides in `env`
/// (`(name, value)` pairs) and validates.
pub fn from_toml<C: ServiceConfig>(
    text: &str,
    origin: &str,
    env: &[(String, String)],
) -> Result<Loaded<C>, ConfigError> {
    parse_and_check(text, origin, None, env)
}

fn parse_and_check<C: ServiceConfig>(
    text: &str,
    origin: &str,
    file: Option<&Path>,
    env: &[(String, String)],
) -> Result<Loaded<C>, ConfigError> {
    let mut config: C = toml::from_str(text).map_err(|e| ConfigError::Parse {
        origin: origin.to_string(),
        message: e.to_string(),
    })?;
    let warnings = apply_env(&mut config, env)?;
    if let Some(file) = file {
        config.loaded_from(file);
    }
    config.validate()?;
    config.read_named_env(env)?;
    Ok(Loaded { config, warnings })
}

/// Applies the overrides of `C` found in `env`: old names first, so that the new name wins.
fn apply_env<C: ServiceConfig>(
    config: &mut C,
    env: &[(String, String)],
) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    let lookup = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    for o in C::OVERRIDES {
        let new = env_name(C::SERVICE, o);
        let chosen = match lookup(&new) {
            Some(value) => {
                for old in o.was.iter().filter(|old| lookup(old).is_some()) {
                    warnings.push(format!("{old} is ignored: {new} is set and wins"));
                }
                Some((new.clone(), value))
            }
            None => o.was.iter().find_map(|old| {
                lookup(old).map(|value| {
                    warnings.push(format!("{old} is deprecated: use {new}"));
                    (old.to_string(), value)
                })
            }),
        };
        if let Some((name, value)) = chosen {
            config
                .apply_override(o.name, value)
                .map_err(|reason| ConfigError::Env {
                    name,
                    value: value.clone(),
                    reason,
                })?;
        }
    }
    let prefix = format!("STRATA_{}_", C::SERVICE);
    let own = config_env(C::SERVICE);
    for (name, _) in env {
        let known = C::OVERRIDES
            .iter()
            .any(|o| name.strip_prefix(&prefix) == Some(o.name));
        if name.starts_with(&prefix) && !known && *name != own {
            warnings.push(format!(
                "{name} is not a setting of this service and is ignored"
            ));
        }
    }
    Ok(warnings)
}

/// Parses an override's value as `T`, the error being the parser's message.
pub fn parse<T>(value: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| e.to_string())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        listen: String,
        #[serde(default)]
        workers: u32,
    }

    impl ServiceConfig for Demo {
        const SERVICE: &'static str = "DEMO";
        const BINARY: &'static str = "strata-demo";
        const OVERRIDES: &'static [Override] = &[
            Override {
                name: "LISTEN",
                key: "listen",
                note: "",
                was: &["STRATA_LISTEN"],
            },
            Override {
                name: "WORKERS",
                key: "workers",
                note: "",
                was: &[],
            },
        ];

        fn apply_override(&mut self, name: &str, value: &str) -> Result<(), String> {
            match name {
                "LISTEN" => self.listen = value.to_string(),
                "WORKERS" => self.workers = parse(value)?,
                _ => unreachable!("only declared overrides are applied"),
            }
            Ok(())
        }

        fn validate(&mut self) -> Result<(), ConfigError> {
            if self.workers > 64 {
                return Err(ConfigError::invalid("workers", "at most 64"));
            }
            Ok(())
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_file_then_the_environment() {
        let loaded: Loaded<Demo> = from_toml(
            "listen = \"a\"\nworkers = 2",
            "demo.toml",
            &env(&[("STRATA_DEMO_WORKERS", "8"), ("PATH", "/bin")]),
        )
        .unwrap();
        assert_eq!(loaded.config.listen, "a");
        assert_eq!(loaded.config.workers, 8);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn old_names_work_with_a_warning_and_lose_to_new_ones() {
        let loaded: Loaded<Demo> =
            from_toml("listen = \"a\"", "x", &env(&[("STRATA_LISTEN", "old")])).unwrap();
        assert_eq!(loaded.config.listen, "old");
        assert_eq!(
            loaded.warnings,
            ["STRATA_LISTEN is deprecated: use STRATA_DEMO_LISTEN"]
        );
        let loaded: Loaded<Demo> = from_toml(
            "listen = \"a\"",
            "x",
            &env(&[("STRATA_LISTEN", "old"), ("STRATA_DEMO_LISTEN", "new")]),
        )
        .unwrap();
        assert_eq!(loaded.config.listen, "new");
        assert_eq!(
            loaded.warnings,
            ["STRATA_LISTEN is ignored: STRATA_DEMO_LISTEN is set and wins"]
        );
    }

    #[test]
    fn unknown_variables_of_the_service_are_reported_not_fatal() {
        let loaded: Loaded<Demo> = from_toml(
            "listen = \"a\"",
            "x",
            &env(&[
                ("STRATA_DEMO_LISTN", "typo"),
                ("STRATA_DEMO_CONFIG", "demo.toml"),
                ("STRATA_OTHER_LISTEN", "not ours"),
            ]),
        )
        .unwrap();
        assert_eq!(
            loaded.warnings,
            ["STRATA_DEMO_LISTN is not a setting of this service and is ignored"]
        );
    }

    #[test]
    fn each_failure_names_its_source() {
        let e = from_toml::<Demo>("listen = 1", "demo.toml", &[]).unwrap_err();
        assert!(matches!(&e, ConfigError::Parse { origin, .. } if origin == "demo.toml"));
        assert!(e.to_string().contains("listen"), "{e}");
        let e = from_toml::<Demo>(
            "listen = \"a\"",
            "x",
            &env(&[("STRATA_DEMO_WORKERS", "many")]),
        )
        .unwrap_err();
        assert!(
            matches!(&e, ConfigError::Env { name, value, .. } if name == "STRATA_DEMO_WORKERS" && value == "many"),
            "{e}"
        );
        let e = from_toml::<Demo>("listen = \"a\"\nworkers = 65", "x", &[]).unwrap_err();
        assert_eq!(e.to_string(), "invalid configuration: workers: at most 64");
        let e = load::<Demo>(Path::new("/nonexistent/demo.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
    }
}
