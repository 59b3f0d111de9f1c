#!/usr/bin/env bash
# Check that this directory is exactly the published osquery-rust-ng 2.0.0
# plus the patch series in patches/, applied in order.
#
#   vendor/osquery-rust-ng/check-series.sh [--build-each]
#
# 1. Takes the published crate as cargo downloaded it (the .crate archive in
#    the cargo registry cache, whose SHA-256 is pinned below, so a local edit
#    of the registry's unpacked sources cannot pass for upstream). If it is not
#    there, cargo fetches it: a throwaway project in a temporary directory
#    depending on `osquery-rust-ng = "=2.0.0"` and `cargo fetch` (uses
#    $CARGO_HOME like any cargo command; needs only cargo's access to
#    crates.io).
# 2. Unpacks it in a temporary directory and applies patches/*.patch in order
#    with `git apply`; a patch that does not apply fails the check.
# 3. Compares the result with this directory (ignoring target/ and this
#    directory's own series files: PATCHES.md, patches/, check-series.sh) and
#    fails listing every file that differs, so a vendored file edited without
#    a patch (or a patch changed without the file) is caught.
# 4. Checks that PATCHES.md names every patch file, and no other.
#
# By default it builds nothing (CI runs it that way; `cargo test --manifest-path
# vendor/osquery-rust-ng/Cargo.toml` is the build and test of the final state).
# With --build-each it also runs `cargo test` and `cargo clippy --all-targets
# -- -D warnings` after every patch, to show that any prefix of the series
# builds and passes on its own (slow: eleven builds; set CARGO_TARGET_DIR to
# reuse one target directory).
set -euo pipefail

build_each=false
case "${1-}" in
    "") ;;
    --build-each) build_each=true ;;
    *) echo "usage: $0 [--build-each]" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "$0")" && pwd)"
crate=osquery-rust-ng
version=2.0.0
# SHA-256 of osquery-rust-ng-2.0.0.crate as published on crates.io (the
# `checksum` cargo records in a lockfile for this package).
crate_sha256=b90ee2f3444ba3650f4475c026d1b9e6cd035858130c0a14c4cc545fad6edb04

fail() { printf 'check-series: %s\n' "$*" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/check-series.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
find_crate() {
    local f
    for f in "$cargo_home"/registry/cache/*/"$crate-$version.crate"; do
        if [ -f "$f" ]; then
            printf '%s\n' "$f"
            return 0
        fi
    done
    return 1
}

if ! archive="$(find_crate)"; then
    echo "check-series: $crate $version is not in $cargo_home/registry/cache; fetching it with cargo"
    mkdir -p "$work/fetch/src"
    cat >"$work/fetch/Cargo.toml" <<EOF
[package]
name = "check-series-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$crate = "=$version"

[workspace]
EOF
    : >"$work/fetch/src/lib.rs"
    cargo fetch --quiet --manifest-path "$work/fetch/Cargo.toml" ||
        fail "cargo fetch of $crate $version failed"
    archive="$(find_crate)" || fail "cargo fetch did not leave $crate-$version.crate in $cargo_home/registry/cache"
fi

if command -v sha256sum >/dev/null; then
    actual_sha256="$(sha256sum "$archive" | cut -d' ' -f1)"
else # macOS
    actual_sha256="$(shasum -a 256 "$archive" | cut -d' ' -f1)"
fi
[ "$actual_sha256" = "$crate_sha256" ] ||
    fail "$archive has SHA-256 $actual_sha256, not the published $crate_sha256"

tar -xzf "$archive" -C "$work"
tree="$work/$crate-$version"
[ -d "$tree" ] || fail "$archive did not unpack to $crate-$version/"

shopt -s nullglob
patches=("$here"/patches/[0-9][0-9][0-9][0-9]-*.patch)
[ "${#patches[@]}" -gt 0 ] || fail "no patches in $here/patches"

# A repository of its own, so git apply resolves paths against the crate
# root whatever directory $TMPDIR is in.
git -C "$tree" init --quiet
for p in "${patches[@]}"; do
    if ! git -C "$tree" apply --whitespace=nowarn "$p"; then
        fail "patches/$(basename "$p") does not apply to $crate $version plus the patches before it"
    fi
    if $build_each; then
        echo "check-series: building and testing with patches up to $(basename "$p")"
        (
            cd "$tree"
            export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$work/target}"
            cargo test --quiet --locked
            cargo clippy --quiet --locked --all-targets -- -D warnings
        ) || fail "with patches up to $(basename "$p"): cargo test or clippy failed"
    fi
done
rm -rf "$tree/.git"

# Every difference, in both directions (a file only on one side included).
if ! differences="$(diff -rq \
    -x target -x PATCHES.md -x patches -x check-series.sh -x .git -x .cargo-ok \
    "$tree" "$here")"; then
    printf 'check-series: the vendored tree is not %s %s plus patches/:\n' "$crate" "$version" >&2
    while IFS= read -r line; do
        case "$line" in
            "Only in $here"*)
                rest="${line#"Only in $here"}"; dir="${rest%%: *}"; dir="${dir#/}"
                echo "  only in the vendored tree (no patch adds it): ${dir:+$dir/}${rest#*: }" ;;
            "Only in $tree"*)
                rest="${line#"Only in $tree"}"; dir="${rest%%: *}"; dir="${dir#/}"
                echo "  only in published+patches (missing here): ${dir:+$dir/}${rest#*: }" ;;
            "Files $tree/"*" differ")
                rest="${line#"Files $tree/"}"
                echo "  differs from published+patches: ${rest%% and *}" ;;
            *) echo "  $line" ;;
        esac
    done <<<"$differences" >&2
    echo "check-series: change the series (patches/) and the vendored files together; see PATCHES.md" >&2
    exit 1
fi

# PATCHES.md names each patch file in its section; keep the two in step.
named="$(grep -o 'patches/[0-9][0-9][0-9][0-9]-[^` ]*\.patch' "$here/PATCHES.md" | sort -u)"
present="$(cd "$here" && printf '%s\n' patches/[0-9][0-9][0-9][0-9]-*.patch | sort -u)"
if [ "$named" != "$present" ]; then
    echo "check-series: PATCHES.md and patches/ disagree:" >&2
    diff <(printf '%s\n' "$named") <(printf '%s\n' "$present") |
        sed -n -e 's/^< /  named in PATCHES.md, not in patches\/: /p' \
            -e 's/^> /  in patches\/, not named in PATCHES.md: /p' >&2
    exit 1
fi

echo "check-series: vendor/osquery-rust-ng = $crate $version + ${#patches[@]} patches (patches/0000..$(basename "${patches[${#patches[@]}-1]}" | cut -c1-4)): identical"
