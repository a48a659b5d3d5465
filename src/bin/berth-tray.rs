//! `berth-tray`: berth with the system tray linked in. `berth run` execs it;
//! it takes the same arguments as `berth`. Kept apart so that the CLI and the
//! headless launcher never load the GTK stack.

fn main() -> std::process::ExitCode {
    // Before any thread exists: GTK's environment (see `tray::prepare_env`).
    berth::tray::prepare_env();
    berth::cli::main_with(Some(berth::launcher::TRAY))
}
