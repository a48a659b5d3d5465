fn main() -> std::process::ExitCode {
    berth::cli::main()
}

/// The one libm function berth calls (`f64::powf` in tokio's scheduler),
/// defined here so the `berth` executable does not load libm.so: loading
/// it (its IFUNC resolvers) kept 0.5 to 0.6 MB of it resident in every
/// berth process, the idle launcher's included (`cargo bench --bench idle`).
/// `berth-tray` keeps the system's: GTK needs libm anyway.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(no_mangle)]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}
