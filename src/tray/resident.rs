//! Gives back the pages of berth's own code that only start-up needed.
//!
//! `berth-tray` is the whole CLI and launcher (about 7 MB of code). Start-up
//! runs a wide spread of it once: argument parsing, manifest loading and
//! verification, the first spawns. The kernel maps file pages in windows of
//! 64 KB around each fault (fault-around), so those few hundred KB of code
//! actually run left 5 MB of the executable resident: with 20 backends and
//! a panel, measured with `perf record -e page-faults`, 88 faults in the
//! code segment, 5.2 MB resident (benches/tray_running.rs). Nothing of that
//! is dirty: once start-up is over, [`after_start_up`] asks the kernel to
//! reclaim the executable's read-only pages (`MADV_PAGEOUT`); whatever the
//! idle tray still runs faults back in, in the same windows: the code is
//! 2 to 3 MB resident afterwards, and the tray 31.1 MB -> 28.5 MB after a
//! minute and a half (26.8 MB 20 s after start). A path that runs again
//! later (a reload, a restart) reads its pages back from the page cache or
//! the file, a one-time cost of microseconds to milliseconds.
//!
//! Only the executable's code and the read-only data before it are given
//! back: the segment after the code holds relocated (copied, dirty) pages,
//! which `MADV_PAGEOUT` would push to swap. Shared libraries are left alone:
//! their pages are shared with other programs.

use std::ffi::c_void;
use std::path::Path;
use std::ptr::NonNull;
use std::time::Duration;

use nix::sys::mman::{MmapAdvise, madvise};

/// How long after the tray starts its start-up counts as over: the
/// backends that start with berth have been verified and spawned by then.
pub const START_UP: Duration = Duration::from_secs(10);

/// Reclaims the start-up pages of the executable (see the module docs).
/// Failures only mean the pages stay resident, so they are only logged.
pub fn after_start_up() {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return tracing::debug!("own executable unknown: {e}"),
    };
    let maps = match std::fs::read_to_string("/proc/self/maps") {
        Ok(maps) => maps,
        Err(e) => return tracing::debug!("/proc/self/maps: {e}"),
    };
    let mut given = 0;
    for (start, len) in start_up_ranges(&maps, &exe) {
        let Some(addr) = NonNull::new(start as *mut c_void) else {
            continue;
        };
        // SAFETY: the range is a whole read-only, private, file-backed
        // mapping of this executable (from /proc/self/maps). MADV_PAGEOUT
        // never changes the contents of such a mapping: a reclaimed page is
        // read back from the unchanged file on the next access. No Rust
        // object owns or aliases these pages mutably.
        match unsafe { madvise(addr, len, MmapAdvise::MADV_PAGEOUT) } {
            Ok(()) => given += len,
            // Kernels before 5.4 do not know MADV_PAGEOUT.
            Err(e) => return tracing::debug!("MADV_PAGEOUT: {e}"),
        }
    }
    tracing::debug!(
        mapped_kb = given / 1024,
        "start-up pages of berth's code given back"
    );
}

/// The read-only mappings of `exe` up to and including its code, as
/// (start, length), from the text of `/proc/self/maps`.
fn start_up_ranges(maps: &str, exe: &Path) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    for line in maps.lines() {
        // start-end perms offset dev inode path; only the path has a '/'
        // (and may have spaces). A replaced file shows as "path (deleted)",
        // which no longer matches.
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if line.find('/').map(|i| Path::new(&line[i..])) != Some(exe) {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        match perms {
            "r--p" => ranges.push((start, end - start)),
            "r-xp" => {
                ranges.push((start, end - start));
                // What follows the code is relocated data (see module docs).
                break;
            }
            _ => break,
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0a0000000-55d0a0266000 r--p 00000000 fe:00 5441160  /usr/lib/berth/berth-tray
55d0a0267000-55d0a0936000 r-xp 00266000 fe:00 5441160  /usr/lib/berth/berth-tray
55d0a0937000-55d0a096f000 r--p 00935000 fe:00 5441160  /usr/lib/berth/berth-tray
55d0a0970000-55d0a0973000 rw-p 0096d000 fe:00 5441160  /usr/lib/berth/berth-tray
55d0a1000000-55d0a1500000 rw-p 00000000 00:00 0        [heap]
7f0000000000-7f0000100000 r-xp 00000000 fe:00 1234     /usr/lib/x86_64-linux-gnu/libc.so.6
";

    #[test]
    fn only_the_read_only_mappings_up_to_the_code_are_given_back() {
        let ranges = start_up_ranges(MAPS, Path::new("/usr/lib/berth/berth-tray"));
        assert_eq!(
            ranges,
            vec![(0x55d0a0000000, 0x266000), (0x55d0a0267000, 0x6cf000)]
        );
    }

    #[test]
    fn a_replaced_executable_is_left_alone() {
        let maps = MAPS.replace("berth-tray\n", "berth-tray (deleted)\n");
        assert_eq!(
            start_up_ranges(&maps, Path::new("/usr/lib/berth/berth-tray")),
            vec![]
        );
    }

    #[test]
    fn the_running_test_binary_has_code_to_give_back() {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        let exe = std::env::current_exe().expect("exe");
        let ranges = start_up_ranges(&maps, &exe);
        assert!(!ranges.is_empty(), "{maps}");
        // Giving it back unmaps nothing: the same code is mapped, and runs
        // (this test goes on in it), afterwards.
        after_start_up();
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        assert_eq!(start_up_ranges(&maps, &exe), ranges);
    }
}
