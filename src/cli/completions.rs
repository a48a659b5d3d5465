//! `berth completions SHELL`: shell completions generated from the same clap
//! definitions `berth` parses, so they never drift from the CLI. The Debian
//! package ships them pre-generated (src/bin/berth-assets.rs).

use std::process::ExitCode;

use clap::CommandFactory as _;
use clap_complete::Shell;

/// The completion script for `shell`, and the file name its shell looks up
/// in a completions folder (`berth`, `_berth`, `berth.fish`).
pub fn render(shell: Shell) -> (&'static str, Vec<u8>) {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut super::Cli::command(), "berth", &mut out);
    let name = match shell {
        Shell::Zsh => "_berth",
        Shell::Fish => "berth.fish",
        _ => "berth",
    };
    (name, out)
}

pub fn run(shell: Shell) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let (_, text) = render(shell);
    std::io::stdout().write_all(&text)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_completes_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let (_, text) = render(shell);
            let text = String::from_utf8(text).unwrap();
            for word in ["run", "status", "check", "pin", "logs"] {
                assert!(text.contains(word), "{shell:?} lacks {word}");
            }
            assert!(
                !text.contains("__guardian"),
                "{shell:?} offers a hidden command"
            );
        }
    }
}
