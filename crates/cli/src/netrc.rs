//! Reading credentials from a `.netrc` file (`$NETRC`, else `~/.netrc`), the same file the go
//! command uses for `GOPROXY` authentication.

use std::path::PathBuf;

/// Credentials for one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The `login` value.
    pub login: String,
    /// The `password` value (for strata: the token).
    pub password: String,
}

/// The `.netrc` path: `$NETRC`, else `$HOME/.netrc`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NETRC") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".netrc"))
}

/// The credentials for `host` in netrc `text`: its `machine` entry, else the `default` entry.
pub fn lookup(text: &str, host: &str) -> Option<Credentials> {
    let mut tokens = text.split_whitespace();
    let mut found: Option<Credentials> = None;
    let mut default: Option<Credentials> = None;
    // Which entry the following login/password belong to: Some(true) = the host's, Some(false)
    // = the default, None = another machine.
    let mut current: Option<bool> = None;
    let mut login = String::new();
    let mut password = String::new();
    let mut flush = |current: Option<bool>, login: &mut String, password: &mut String| {
        let creds = Credentials {
            login: std::mem::take(login),
            password: std::mem::take(password),
        };
        match current {
            Some(true) if found.is_none() => found = Some(creds),
            Some(false) if default.is_none() => default = Some(creds),
            _ => {}
        }
    };
    while let Some(token) = tokens.next() {
        match token {
            "machine" => {
                flush(current, &mut login, &mut password);
                current = (tokens.next() == Some(host)).then_some(true);
            }
            "default" => {
                flush(current, &mut login, &mut password);
                current = Some(false);
            }
            "login" => login = tokens.next().unwrap_or_default().to_string(),
            "password" => password = tokens.next().unwrap_or_default().to_string(),
            "account" => {
                tokens.next();
            }
            // A macro definition runs to the end of the file for our purposes: stop.
            "macdef" => break,
            _ => {}
        }
    }
    flush(current, &mut login, &mut password);
    found.or(default).filter(|c| !c.password.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_machine_then_default() {
        let text = "machine other.example login a password pa\nmachine registry.example login ci password tok\ndefault login d password pd\n";
        assert_eq!(
            lookup(text, "registry.example"),
            Some(Credentials {
                login: "ci".into(),
                password: "tok".into()
            })
        );
        assert_eq!(
            lookup(text, "unknown.example").map(|c| c.password),
            Some("pd".into())
        );
        assert_eq!(lookup("machine x login a password b", "y"), None);
        assert_eq!(lookup("", "y"), None);
    }
}
