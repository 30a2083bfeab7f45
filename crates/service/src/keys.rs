//! The names tiers agree on outside the gRPC contract: the default change-event stream and the
//! Redis keys of edge heat (written by edges, read by the sync worker's refresh and retention).

/// The default Redis stream of change events.
pub const DEFAULT_EVENT_STREAM: &str = "strata:events";

/// The default prefix of heat keys.
pub const DEFAULT_HEAT_PREFIX: &str = "strata";

/// `<prefix>:heat:<repo>`: a sorted set of module paths by read count.
pub fn heat_key(prefix: &str, repo: &str) -> String {
    format!("{prefix}:heat:{repo}")
}

/// `<prefix>:last-read:<repo>`: a hash of `module@version` → Unix seconds of its last read.
pub fn last_read_key(prefix: &str, repo: &str) -> String {
    format!("{prefix}:last-read:{repo}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        assert_eq!(heat_key(DEFAULT_HEAT_PREFIX, "go"), "strata:heat:go");
        assert_eq!(last_read_key("p", "go"), "p:last-read:go");
    }
}
