//! Saved connection profiles: the file `daypass login` writes and every
//! client command reads, `$XDG_CONFIG_HOME/daypass/profiles.toml` (else
//! `$HOME/.config/daypass/profiles.toml`). A profile is a server address
//! and the absolute paths of a CA, a client certificate and its key; the
//! file never holds key material. It is written atomically (a temporary
//! file renamed over it), mode 0600 in a directory of mode 0700.
//!
//! This file owns the format, where it lives and how it is written; which
//! settings win over a profile is `connect`'s, and the `login`, `logout`
//! commands are `login`'s.

use std::{
    collections::BTreeMap,
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::CliError;

/// The file's name inside `…/daypass/`.
const FILE_NAME: &str = "profiles.toml";

/// The first line of the file.
const HEADER: &str = "# daypass connection profiles, written by `daypass login`.\n\
                      # Paths only: no certificate or key is ever copied here.\n";

/// One saved profile: where the server is and which files to present.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub server: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// All saved profiles and which one is the default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profiles {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

impl Profiles {
    /// The profiles in `path`; none when the file does not exist.
    pub fn load(path: &Path) -> Result<Profiles, CliError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Profiles::default()),
            Err(e) => return Err(cli_err!("cannot read {}: {e}", path.display())),
        };
        toml::from_str(&text).map_err(|e| {
            cli_err!(
                "cannot read the profiles in {}: {} (fix it, or remove it and run `daypass login` again)",
                path.display(),
                e.message()
            )
        })
    }

    /// Writes all profiles to `path` atomically: a temporary file (mode
    /// 0600) in the same directory (created mode 0700, and tightened to
    /// it), flushed, renamed over `path`, and the directory flushed.
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        let fail = |what: &Path, e: io::Error| cli_err!("cannot write {}: {e}", what.display());
        let dir = path
            .parent()
            .ok_or_else(|| cli_err!("{} has no directory", path.display()))?;
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| fail(dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| fail(dir, e))?;
        }
        let body = toml::to_string(self).map_err(|e| cli_err!("cannot write the profiles: {e}"))?;
        let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp); // a leftover of an earlier run with this pid
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let written = opts.open(&tmp).and_then(|mut f| {
            f.write_all(HEADER.as_bytes())?;
            f.write_all(body.as_bytes())?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(fail(path, e));
        }
        // The rename is durable once the directory is.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| fail(dir, e))
    }

    /// The profile named `name`, or an error listing the ones there are.
    pub fn named(&self, name: &str, path: &Path) -> Result<&Profile, CliError> {
        self.profiles.get(name).ok_or_else(|| {
            if self.profiles.is_empty() {
                cli_err!(
                    "no profile {name:?}: none is saved (in {}); run `daypass login --profile {name} …`",
                    path.display()
                )
            } else {
                cli_err!(
                    "no profile {name:?}; saved profiles: {} (see `daypass login --list`)",
                    self.names()
                )
            }
        })
    }

    /// The names, comma-separated, the default marked.
    pub fn names(&self) -> String {
        self.profiles
            .keys()
            .map(|n| {
                if self.default.as_deref() == Some(n) {
                    format!("{n} (default)")
                } else {
                    n.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Where the profiles live: `$XDG_CONFIG_HOME/daypass/profiles.toml`
/// (when it is set to an absolute path, as the XDG specification asks),
/// else `$HOME/.config/daypass/profiles.toml`; `None` without either.
pub fn store_path() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    var("XDG_CONFIG_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".config")))
        .map(|base| base.join("daypass").join(FILE_NAME))
}

/// [`store_path`], or an error saying why there is none.
pub fn require_store_path() -> Result<PathBuf, CliError> {
    store_path().ok_or_else(|| {
        cli_err!(
            "cannot tell where to keep profiles: set HOME (or XDG_CONFIG_HOME) to an absolute path"
        )
    })
}

/// A profile name as typed: 1 to 64 letters, digits, `-`, `_` or `.`,
/// starting with a letter or digit.
pub fn parse_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err("a profile name is 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(n: &str) -> Profile {
        Profile {
            server: format!("https://{n}.example:50051"),
            ca: format!("/etc/{n}/ca.pem").into(),
            cert: format!("/etc/{n}/me.pem").into(),
            key: format!("/etc/{n}/me.key").into(),
        }
    }

    #[test]
    fn profiles_round_trip_through_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cfg/daypass/profiles.toml");
        assert_eq!(Profiles::load(&path).expect("absent"), Profiles::default());
        let mut p = Profiles::default();
        p.profiles.insert("work".into(), profile("work"));
        p.profiles.insert("lab".into(), profile("lab"));
        p.default = Some("work".into());
        p.save(&path).expect("save");
        assert_eq!(Profiles::load(&path).expect("load"), p);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("# daypass connection profiles"), "{text}");
        assert_eq!(p.names(), "lab, work (default)");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().expect("dir")), 0o700);
        }
        // No temporary file is left behind.
        let entries: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .collect();
        assert_eq!(entries.len(), 1);
        let missing = p.named("nope", &path).expect_err("unknown").0;
        assert!(missing.contains("lab, work (default)"), "{missing}");
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("profiles.toml");
        std::fs::write(&path, "[profiles.x]\nserver = 1\n").expect("write");
        let e = Profiles::load(&path).expect_err("damaged").0;
        assert!(e.contains("profiles.toml"), "{e}");
    }

    #[test]
    fn profile_names() {
        for ok in ["default", "dev", "prod-eu.1", "a_b", "9"] {
            assert!(parse_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", ".x", "a b", "a/b", "ä", &"x".repeat(65)] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
    }
}
