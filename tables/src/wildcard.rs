//! The project's one wildcard matcher (tuning rules, unified-log pattern
//! fields, high-value item names, and the Sentinel forwarder's `name_filter`):
//! `*` any run of characters (including `/`), `?` one character, nothing
//! else special.

use serde::Deserialize;

/// A string or a list of strings (any of them may match).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Patterns {
    One(String),
    Many(Vec<String>),
}

impl Patterns {
    /// Every pattern given.
    pub fn list(&self) -> Vec<&str> {
        match self {
            Patterns::One(s) => vec![s.as_str()],
            Patterns::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }

    /// Whether any pattern matches the value (a missing value matches none).
    pub fn any(&self, value: Option<&str>) -> bool {
        let Some(v) = value else {
            return false;
        };
        self.list().iter().any(|p| wildcard(p, v))
    }
}

/// Wildcard match: `*` matches any run (including `/`), `?` one character.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}
