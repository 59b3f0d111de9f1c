// Vendored patch: newer clippy (1.9x) flags `unnecessary_unwrap` in the
// generated code; the generated file itself is left untouched.
#[allow(clippy::unnecessary_unwrap)]
pub(crate) mod osquery;

pub(crate) use osquery::*;
