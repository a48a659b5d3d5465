fn main() -> std::process::ExitCode {
    // Before any thread exists: GTK's environment (see `tray::prepare_env`).
    berth::tray::prepare_env();
    berth::cli::main()
}
