//! `berth-assets DIR`: writes the generated parts of the Debian package into
//! DIR: the man pages (clap_mangen) and the bash, zsh and fish completions
//! (clap_complete), both from the clap definitions `berth` itself parses, and
//! the application icon at the hicolor sizes (the tray's idle disc, drawn by
//! the same code). Built only with `--features assets` (scripts/package.sh),
//! so the everyday binaries carry no PNG encoder or roff writer.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;

use berth::tray::icon::IconState;

/// The hicolor sizes desktops look up for an application icon.
const ICON_SIZES: [u32; 6] = [16, 32, 48, 64, 128, 256];

fn main() -> std::process::ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: berth-assets DIR");
        return std::process::ExitCode::from(2);
    };
    match write_all(&dir) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-assets: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn write_all(dir: &Path) -> anyhow::Result<()> {
    let man = dir.join("man");
    fs::create_dir_all(&man)?;
    // berth(1) and one page per subcommand (berth-run(1), ...), as git does.
    clap_mangen::generate_to(berth::cli::Cli::command(), &man)
        .with_context(|| format!("{}: cannot write the man pages", man.display()))?;
    // berth-tray takes the same arguments; its page names it.
    let tray = berth::cli::Cli::command()
        .name("berth-tray")
        .about("berth with the system tray linked in (berth run execs it)");
    clap_mangen::Man::new(tray)
        .generate_to(&man)
        .with_context(|| format!("{}: cannot write berth-tray.1", man.display()))?;

    let completions = dir.join("completions");
    fs::create_dir_all(&completions)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let (name, text) = berth::cli::completions::render(shell);
        write(&completions.join(name), &text)?;
    }

    for size in ICON_SIZES {
        let folder = dir.join(format!("icons/hicolor/{size}x{size}/apps"));
        fs::create_dir_all(&folder)?;
        write(&folder.join("berth.png"), &png(size)?)?;
    }
    Ok(())
}

fn png(size: u32) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, size, size);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&IconState::Idle.rgba_sized(size))?;
    writer.finish()?;
    Ok(out)
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    fs::write(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
}
