//! What a row costs the machine: TLB shootdowns and page faults, read
//! before the workers start and after every one of them has stopped (and
//! before any has exited: glibc discards an exiting thread's stack with
//! MADV_DONTNEED, which would count against the row).

use std::fs;

/// The TLB-shootdown IPIs this machine's CPUs received so far: the sum of
/// the `TLB` row of /proc/interrupts.  None where there is no such row
/// (arm64 flushes by broadcast TLBI, without IPIs).
pub fn tlb_shootdowns() -> Option<u64> {
    let text = fs::read_to_string("/proc/interrupts").ok()?;
    let line = text.lines().find(|l| l.trim_start().starts_with("TLB:"))?;
    let counts = line.trim_start()["TLB:".len()..]
        .split_whitespace()
        .map_while(|w| w.parse::<u64>().ok());
    Some(counts.sum())
}

/// Minor and major page faults of this process so far.
pub fn page_faults() -> u64 {
    // SAFETY: getrusage() fills the struct it is given and nothing else.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return 0;
        }
        u
    };
    (usage.ru_minflt + usage.ru_majflt) as u64
}

/// The counters at one moment.
#[derive(Clone, Copy)]
pub struct Sample {
    pub shootdowns: Option<u64>,
    pub faults: u64,
}

impl Sample {
    pub fn now() -> Self {
        Sample {
            shootdowns: tlb_shootdowns(),
            faults: page_faults(),
        }
    }
}
