//! A parsed Prometheus text exposition (what `/metrics` serves), to read counters by name and
//! labels and to compare two snapshots.

use std::collections::BTreeMap;

/// One sample: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// E.g. `strata_edge_fills_total`.
    pub name: String,
    /// Label name → value.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// Every sample of one scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// The samples, in exposition order.
    pub samples: Vec<Sample>,
}

impl Metrics {
    /// Parses the text format (comments skipped; a line that does not parse is an error).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut samples = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            samples.push(parse_line(line).ok_or_else(|| format!("bad metrics line {line:?}"))?);
        }
        Ok(Self { samples })
    }

    /// The sum of `name` over the samples whose labels include every `(label, value)` in
    /// `matching` (0 when there is none).
    pub fn sum(&self, name: &str, matching: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                matching
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }

    /// `sum` in this snapshot minus `sum` in `earlier`.
    pub fn delta(&self, earlier: &Metrics, name: &str, matching: &[(&str, &str)]) -> f64 {
        self.sum(name, matching) - earlier.sum(name, matching)
    }

    /// The distinct values of `label` among samples of `name`.
    pub fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .samples
            .iter()
            .filter(|s| s.name == name)
            .filter_map(|s| s.labels.get(label).cloned())
            .collect();
        values.sort();
        values.dedup();
        values
    }
}

/// `name{a="x",b="y"} value` or `name value` (a trailing timestamp is ignored).
fn parse_line(line: &str) -> Option<Sample> {
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = open + line[open..].find('}')?;
            (
                &line[..open],
                parse_labels(&line[open + 1..close])?,
                &line[close + 1..],
            )
        }
        None => {
            let space = line.find(' ')?;
            (&line[..space], BTreeMap::new(), &line[space..])
        }
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `a="x",b="y"` (values may contain escaped quotes and commas).
fn parse_labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_owned();
        let after = rest[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.insert(key, value);
        rest = after[end + 1..].trim_start_matches(',').trim();
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_by_label_subsets() {
        let text = "# HELP x y\n# TYPE strata_edge_upstream_calls counter\n\
            strata_edge_upstream_calls_total{registry=\"slow\",outcome=\"ok\"} 3\n\
            strata_edge_upstream_calls_total{registry=\"fast\",outcome=\"ok\"} 40\n\
            strata_edge_upstream_calls_total{registry=\"fast\",outcome=\"failed\"} 2\n\
            strata_edge_fills_in_flight 0\n\
            odd{v=\"a\\\"b,c\"} 1.5 1700000000\n";
        let m = Metrics::parse(text).unwrap();
        let calls = "strata_edge_upstream_calls_total";
        assert_eq!(m.sum(calls, &[("registry", "fast")]), 42.0);
        assert_eq!(m.sum(calls, &[("outcome", "ok")]), 43.0);
        assert_eq!(m.sum(calls, &[]), 45.0);
        assert_eq!(m.sum("strata_edge_fills_in_flight", &[]), 0.0);
        assert_eq!(m.sum("odd", &[("v", "a\"b,c")]), 1.5);
        assert_eq!(m.label_values(calls, "registry"), ["fast", "slow"]);
        let earlier = Metrics::parse(
            "strata_edge_upstream_calls_total{registry=\"fast\",outcome=\"ok\"} 10\n",
        )
        .unwrap();
        assert_eq!(m.delta(&earlier, calls, &[("registry", "fast")]), 32.0);
        assert!(Metrics::parse("no_value_here").is_err());
    }
}
