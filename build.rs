//! Link options of berth's executables; nothing is generated.
//!
//! berth is a position-independent executable (its address is randomised).
//! Each start, the dynamic loader applies its relative relocations (about
//! 25,000: vtables and string slices in statics), and as a classic RELA
//! table they are 24 bytes each: 600 kB of the idle launcher's 10 MB
//! resident memory were that table, read once at start and never again
//! (`cargo bench --bench idle`, /proc/PID/pagemap by section). Packed
//! (`DT_RELR`, GNU ld 2.38+) the same relocations take a few kB. The cost:
//! the executable needs glibc 2.36 or later (Debian 12; it needed 2.34
//! before), which the dynamic loader checks at start with a clear message.
//! A build for an older glibc sets `BERTH_UNPACKED_RELOCS=1`.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BERTH_UNPACKED_RELOCS");
    let var = |name| std::env::var(name).unwrap_or_default();
    let gnu_linux = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    if gnu_linux && var("BERTH_UNPACKED_RELOCS") != "1" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
