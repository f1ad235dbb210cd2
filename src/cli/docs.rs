//! `daypass completions SHELL` and `daypass man DIR`: shell completion
//! scripts and manual pages, generated from the clap definition in this
//! module's parent (so they never drift from `--help`) by `clap_complete`
//! and `clap_mangen`. Where to install them is in docs/operations.md
//! ("Shell completions and manual pages"). Nothing here connects.

use std::{
    fs,
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use clap::{Args, CommandFactory};

use super::{Cli, CliError, CliResult};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    daypass completions bash > /usr/share/bash-completion/completions/daypass\n  \
    daypass completions zsh > /usr/share/zsh/vendor-completions/_daypass\n  \
    daypass completions fish > /usr/share/fish/vendor_completions.d/daypass.fish")]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    daypass man /usr/share/man/man1   # daypass.1, daypass-grant.1, daypass-grant-request.1, …")]
pub struct ManArgs {
    /// The directory to write the pages to (created if missing); existing
    /// pages of the same name are replaced.
    pub dir: PathBuf,
}

/// Prints the completion script for one shell to standard output.
pub(super) fn completions(args: &CompletionsArgs) -> CliResult {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "daypass", &mut script);
    let mut out = io::stdout().lock();
    match out.write_all(&script).and_then(|()| out.flush()) {
        // `daypass completions bash | head` closed the pipe: nothing to say.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(|e| cli_err!("cannot write the completion script: {e}")),
    }
}

/// Writes `daypass.1` and one page per command and subcommand
/// (`daypass-grant.1`, `daypass-grant-request.1`, …), each 0644, and names
/// each file written.
pub(super) fn man(args: &ManArgs) -> CliResult {
    let dir = &args.dir;
    fs::create_dir_all(dir).map_err(|e| cli_err!("cannot create {}: {e}", dir.display()))?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Names the subcommands `daypass-grant` etc. and gives every one the
    // connection flags it inherits, as `--help` shows them.
    cmd.build();
    let mut written = Vec::new();
    write_pages(&cmd, dir, &mut written)?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The page of `cmd`, then those of its visible subcommands, depth first.
fn write_pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> CliResult {
    // Every page says which daypass it documents (clap_mangen would put the
    // subcommand's name and no version there).
    let page = clap_mangen::Man::new(cmd.clone())
        .source(concat!("daypass ", env!("CARGO_PKG_VERSION")))
        .manual("daypass manual");
    let path = dir.join(page.get_filename());
    let mut roff = Vec::new();
    page.render(&mut roff)
        .map_err(|e| cli_err!("cannot render {}: {e}", path.display()))?;
    write_public(&path, &roff)?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` with mode 0644 whatever the umask, so a
/// packager's staging directory gets world-readable pages.
fn write_public(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let fail = |e: io::Error| cli_err!("cannot write {}: {e}", path.display());
    fs::write(path, bytes).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o644)).map_err(fail)?;
    }
    Ok(())
}
