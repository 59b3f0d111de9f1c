#![no_main]
//! Fuzz target `security_argv`: see tables/tests/props/mod.rs for the properties.

#[path = "../../tables/tests/props/mod.rs"]
mod props;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    props::check_security_argv(data);
});
