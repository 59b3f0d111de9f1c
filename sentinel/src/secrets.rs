//! The secret values this process holds (the client secret, access
//! tokens), remembered so that the logger can remove them from every
//! record, at every level, whichever crate wrote it.
//!
//! A value is searched for in the forms it takes on the wire and in logs:
//! as is, form-urlencoded (the token request body), JSON-escaped, and as
//! lowercase or uppercase hex (byte dumps).

use std::borrow::Cow;
use std::sync::Mutex;

/// Values shorter than this are not worth (or safe) searching for.
const MIN_LEN: usize = 6;
/// Tokens are replaced hourly; keep the newest this many values.
const MAX_VALUES: usize = 64;

/// What a removed value is replaced with.
pub const REPLACEMENT: &str = "<redacted>";

static KNOWN: Mutex<Vec<Vec<String>>> = Mutex::new(Vec::new());

/// Remember `value` (and its encoded forms) as a secret of this process.
pub fn remember(value: &str) {
    if value.len() < MIN_LEN {
        return;
    }
    let forms = forms(value);
    let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    if known
        .iter()
        .any(|f| f.first().map(String::as_str) == Some(value))
    {
        return;
    }
    if known.len() >= MAX_VALUES {
        known.remove(0);
    }
    known.push(forms);
}

/// `s` with every remembered secret, in any of its forms, replaced.
pub fn scrub(s: &str) -> Cow<'_, str> {
    let known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = Cow::Borrowed(s);
    for form in known.iter().flatten() {
        if out.contains(form.as_str()) {
            out = Cow::Owned(out.replace(form.as_str(), REPLACEMENT));
        }
    }
    out
}

fn forms(value: &str) -> Vec<String> {
    let mut v = vec![value.to_string()];
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json.trim_matches('"').to_string();
    let form = form_urlencode(value);
    let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
    for f in [json, form, hex.clone(), hex.to_uppercase()] {
        if !v.contains(&f) {
            v.push(f);
        }
    }
    v
}

/// application/x-www-form-urlencoded, as HTML's URL standard defines it.
fn form_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_every_form_and_leaves_other_text() {
        let secret = "Zq8~s3cr3t/v@lue+x";
        remember(secret);
        remember("abc"); // too short to search for
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        for text in [
            format!("client_secret={}", form_urlencode(secret)),
            format!("secret {secret} here"),
            format!("{{\"s\":{}}}", serde_json::to_string(secret).unwrap()),
            format!("dump {hex}"),
            format!("DUMP {}", hex.to_uppercase()),
        ] {
            let out = scrub(&text);
            assert!(out.contains(REPLACEMENT), "{text} -> {out}");
            assert!(!out.contains(secret) && !out.contains(&hex), "{out}");
        }
        assert!(matches!(scrub("nothing abc here"), Cow::Borrowed(_)));
    }
}
