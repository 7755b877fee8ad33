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

/// Kernel events a worker thread causes, counted exactly by perf on the
/// kernel's tracepoints: what Wasmtime asks of the kernel to reset its
/// slots, and how many shootdown rounds it sends.  Each worker opens its
/// own counters (no inheritance: an exiting thread's clean-up is not the
/// row's), reads them around its loop, and the row sums them.
///
/// Needs a kernel with syscall tracepoints (CONFIG_FTRACE_SYSCALLS) and
/// perf events, tracefs mounted, and the right to count tracepoints (root);
/// without them the figures are absent, never zero.
#[derive(Clone, Copy, Default)]
pub struct KernelCounts {
    /// process_madvise() calls, and how many of them failed.
    pub process_madvise: u64,
    pub process_madvise_failed: u64,
    /// madvise() calls (Wasmtime's one-range-at-a-time path).
    pub madvise: u64,
    /// mmap() calls (how Wasmtime paves over a slot whose reset failed).
    pub mmap: u64,
    /// mprotect() and munmap() calls: the other ways a thread makes the
    /// kernel flush TLBs.
    pub mprotect: u64,
    pub munmap: u64,
    /// Shootdown rounds this thread sent: tlb:tlb_flush with reason
    /// TLB_REMOTE_SEND_IPI (x86; no such event on arm64).
    pub ipi_rounds: Option<u64>,
}

/// The tracepoints KernelCounts counts, with the ftrace filter each needs.
const EVENTS: [(&str, Option<&str>); 7] = [
    ("syscalls/sys_enter_process_madvise", None),
    ("syscalls/sys_exit_process_madvise", Some("ret < 0")),
    ("syscalls/sys_enter_madvise", None),
    ("syscalls/sys_enter_mmap", None),
    ("syscalls/sys_enter_mprotect", None),
    ("syscalls/sys_enter_munmap", None),
    // enum tlb_flush_reason: TLB_REMOTE_SEND_IPI is 4 (x86).
    ("tlb/tlb_flush", Some("reason == 4")),
];

const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

fn tracepoint_id(event: &str) -> Option<u64> {
    TRACEFS.iter().find_map(|dir| {
        fs::read_to_string(format!("{dir}/events/{event}/id"))
            .ok()?
            .trim()
            .parse()
            .ok()
    })
}

/// perf_event_attr as of its first version (PERF_ATTR_SIZE_VER0, 64
/// bytes): all a counting tracepoint event needs.
#[repr(C)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}
const PERF_TYPE_TRACEPOINT: u32 = 2;
/// _IOW('$', 6, char *)
const PERF_EVENT_IOC_SET_FILTER: libc::c_ulong = 0x4008_2406;

/// One counter of this thread, enabled from the start; None where the
/// kernel has no such event or refuses it.
fn open_counter(event: &str, filter: Option<&str>) -> Option<fs::File> {
    use std::os::fd::FromRawFd;
    let attr = PerfEventAttr {
        type_: PERF_TYPE_TRACEPOINT,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config: tracepoint_id(event)?,
        sample_period: 0,
        sample_type: 0,
        read_format: 0,
        flags: 0,
        wakeup_events: 0,
        bp_type: 0,
        config1: 0,
    };
    // SAFETY: attr is a valid perf_event_attr of the size it states;
    // pid 0, cpu -1: this thread on any CPU; no group, no flags.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            0,
            -1,
            -1,
            0,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just gave us this descriptor, owned by no one else.
    let file = unsafe { fs::File::from_raw_fd(fd as i32) };
    if let Some(f) = filter {
        use std::os::fd::AsRawFd;
        let c = std::ffi::CString::new(f).ok()?;
        // SAFETY: a NUL-terminated string the kernel only reads.
        if unsafe { libc::ioctl(file.as_raw_fd(), PERF_EVENT_IOC_SET_FILTER, c.as_ptr()) } != 0 {
            return None;
        }
    }
    Some(file)
}

fn read_counter(f: &fs::File) -> Option<u64> {
    use std::io::Read;
    let mut buf = [0u8; 8];
    (&*f).read_exact(&mut buf).ok()?;
    Some(u64::from_ne_bytes(buf))
}

/// The calling thread's counters.
pub struct ThreadCounters {
    files: Vec<Option<fs::File>>,
}

impl ThreadCounters {
    pub fn open() -> Self {
        ThreadCounters {
            files: EVENTS.iter().map(|(e, f)| open_counter(e, *f)).collect(),
        }
    }

    /// The counts so far; None when a syscall counter is missing (the tlb
    /// one alone may be: arm64).
    pub fn read(&self) -> Option<KernelCounts> {
        let v: Vec<Option<u64>> = self
            .files
            .iter()
            .map(|f| f.as_ref().and_then(read_counter))
            .collect();
        Some(KernelCounts {
            process_madvise: v[0]?,
            process_madvise_failed: v[1]?,
            madvise: v[2]?,
            mmap: v[3]?,
            mprotect: v[4]?,
            munmap: v[5]?,
            ipi_rounds: v[6],
        })
    }
}

impl KernelCounts {
    /// after - self
    pub fn delta(&self, after: &KernelCounts) -> KernelCounts {
        KernelCounts {
            process_madvise: after.process_madvise - self.process_madvise,
            process_madvise_failed: after.process_madvise_failed - self.process_madvise_failed,
            madvise: after.madvise - self.madvise,
            mmap: after.mmap - self.mmap,
            mprotect: after.mprotect - self.mprotect,
            munmap: after.munmap - self.munmap,
            ipi_rounds: after.ipi_rounds.zip(self.ipi_rounds).map(|(a, b)| a - b),
        }
    }

    pub fn add(&self, o: &KernelCounts) -> KernelCounts {
        KernelCounts {
            process_madvise: self.process_madvise + o.process_madvise,
            process_madvise_failed: self.process_madvise_failed + o.process_madvise_failed,
            madvise: self.madvise + o.madvise,
            mmap: self.mmap + o.mmap,
            mprotect: self.mprotect + o.mprotect,
            munmap: self.munmap + o.munmap,
            ipi_rounds: self.ipi_rounds.zip(o.ipi_rounds).map(|(a, b)| a + b),
        }
    }
}

/// What this kernel answers to the call Wasmtime's batch makes:
/// process_madvise(PIDFD_SELF, two ranges, MADV_DONTNEED, 0) on a mapping
/// of our own.  "ok" or the errno's name.
pub fn probe_process_madvise_self() -> String {
    const PIDFD_SELF: libc::c_int = -10000;
    let page = 4096usize;
    // SAFETY: a fresh private anonymous mapping, unmapped below; the
    // iovecs name only it.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return "mmap failed".to_owned();
        }
        let base = p as *mut u8;
        let iov = [
            libc::iovec {
                iov_base: base as *mut libc::c_void,
                iov_len: page,
            },
            libc::iovec {
                iov_base: base.add(2 * page) as *mut libc::c_void,
                iov_len: page,
            },
        ];
        let r = libc::syscall(
            libc::SYS_process_madvise,
            PIDFD_SELF,
            iov.as_ptr(),
            2usize,
            libc::MADV_DONTNEED,
            0,
        );
        let err = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        libc::munmap(p, 4 * page);
        if r == (2 * page) as libc::c_long {
            "ok".to_owned()
        } else if r >= 0 {
            format!("advised {r} of {} bytes", 2 * page)
        } else {
            errno_name(err)
        }
    }
}

fn errno_name(e: i32) -> String {
    match e {
        libc::EBADF => "EBADF".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::ENOSYS => "ENOSYS".into(),
        libc::EPERM => "EPERM".into(),
        libc::ESRCH => "ESRCH".into(),
        _ => format!("errno {e}"),
    }
}
