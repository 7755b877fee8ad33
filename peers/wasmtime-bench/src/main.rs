//! wasmtime-bench: the seed's benchmark (Wasmtime issue 4637) on real,
//! unmodified Wasmtime from crates.io.  N threads each loop {instantiate
//! from an `InstancePre`, call the entry, drop the store} under Wasmtime's
//! pooling allocator, in each of its configurations, for a fixed time;
//! reported per row: instantiations per second, TLB shootdowns and page
//! faults per instantiation, and every error Wasmtime returned (counted,
//! the first one quoted), as a table and as JSON beside instantiate-bench's.

mod counters;
mod workload;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use counters::{KernelCounts, Sample, ThreadCounters};
use workload::{Conf, Prepared};

const USAGE: &str = "\
usage: wasmtime-bench --module NAME=FILE[,NAME=FILE...] [options]
  --module LIST       modules to run: echo=FILE (the seed's echo, .wat or
                      .wasm) and the WASI programs request=FILE,
                      compress=FILE, grow=FILE (.wasm)
  --config LIST       Wasmtime configurations (default: all):
                      wasmtime-default, wasmtime-batch32,
                      wasmtime-batch32-keep-resident, wasmtime-batch32-pagemap
  --threads LIST      thread counts (default: 1,2)
  --dirty-pages LIST  echo: pages init() writes (default: 16)
  --seconds S         per row (default: 1)
  --min-instantiations N
                      fail (exit 1) when a row made fewer
  --json FILE         write the rows as JSON
Exit status: 0; 1 when any row had an error or too few instantiations;
2 on bad arguments.";

struct Args {
    modules: Vec<(String, String)>,
    configs: Vec<Conf>,
    threads: Vec<usize>,
    dirty_pages: Vec<u32>,
    seconds: f64,
    min_instantiations: u64,
    json: Option<String>,
}

fn list<T: std::str::FromStr>(s: &str, what: &str) -> Result<Vec<T>> {
    s.split(',')
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| anyhow::anyhow!("bad {what} '{v}'"))
        })
        .collect()
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        modules: Vec::new(),
        configs: Conf::ALL.to_vec(),
        threads: vec![1, 2],
        dirty_pages: vec![16],
        seconds: 1.0,
        min_instantiations: 0,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(opt) = it.next() {
        if opt == "-h" || opt == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let Some(val) = it.next() else {
            bail!("option '{opt}' needs a value");
        };
        match opt.as_str() {
            "--module" => {
                for m in val.split(',') {
                    let Some((name, file)) = m.split_once('=') else {
                        bail!("bad --module '{m}' (NAME=FILE)");
                    };
                    if !["echo", "request", "compress", "grow"].contains(&name) {
                        bail!("unknown module '{name}' (echo, request, compress or grow)");
                    }
                    a.modules.push((name.to_owned(), file.to_owned()));
                }
            }
            "--config" => {
                a.configs = val
                    .split(',')
                    .map(|c| {
                        Conf::parse(c).ok_or_else(|| anyhow::anyhow!("unknown configuration '{c}'"))
                    })
                    .collect::<Result<_>>()?
            }
            "--threads" => a.threads = list(&val, "thread count")?,
            "--dirty-pages" => a.dirty_pages = list(&val, "page count")?,
            "--seconds" => {
                a.seconds = val
                    .parse()
                    .map_err(|_| anyhow::anyhow!("bad --seconds '{val}'"))?
            }
            "--min-instantiations" => {
                a.min_instantiations = val
                    .parse()
                    .map_err(|_| anyhow::anyhow!("bad --min-instantiations '{val}'"))?
            }
            "--json" => a.json = Some(val),
            _ => bail!("unknown option '{opt}'"),
        }
    }
    if a.modules.is_empty() {
        bail!("no --module given");
    }
    if a.threads.iter().any(|&t| t == 0 || t > 1024) {
        bail!("thread counts must be 1 to 1024");
    }
    if !(a.seconds > 0.0 && a.seconds <= 3600.0) {
        bail!("--seconds must be in (0, 3600]");
    }
    if a.dirty_pages.iter().any(|&p| p > 256) {
        bail!("echo dirties at most 256 pages (its memory is 17 wasm pages)");
    }
    Ok(a)
}

/// One row's figures.
struct Row {
    instantiations: u64,
    seconds: f64,
    errors: u64,
    first_error: Option<String>,
    before: Sample,
    after: Sample,
    /// Summed over the workers; None where a worker could not count.
    kernel: Option<KernelCounts>,
}

/// `threads` workers instantiate `prepared` until `seconds` have passed.
fn run_row(prepared: &Arc<Prepared>, threads: usize, seconds: f64) -> Row {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    // The sum of nothing; a worker without a tlb counter makes its sum None.
    let kernel = Arc::new(Mutex::new(Some(KernelCounts {
        ipi_rounds: Some(0),
        ..KernelCounts::default()
    })));
    // start: all workers ready; stopped: all out of their loops; leave: the
    // counters read, the workers may exit.
    let start = Arc::new(Barrier::new(threads + 1));
    let stopped = Arc::new(Barrier::new(threads + 1));
    let leave = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (p, stop, done, errors, first_error, kernel) = (
                prepared.clone(),
                stop.clone(),
                done.clone(),
                errors.clone(),
                first_error.clone(),
                kernel.clone(),
            );
            let (start, stopped, leave) = (start.clone(), stopped.clone(), leave.clone());
            std::thread::spawn(move || {
                let counters = ThreadCounters::open();
                start.wait();
                let k0 = counters.read();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    match p.run_once() {
                        Ok(()) => n += 1,
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error.lock().unwrap().get_or_insert(format!("{e:#}"));
                        }
                    }
                }
                let k1 = counters.read();
                {
                    let mut sum = kernel.lock().unwrap();
                    *sum = match (*sum, k0, k1) {
                        (Some(s), Some(a), Some(b)) => Some(s.add(&a.delta(&b))),
                        _ => None,
                    };
                }
                done.fetch_add(n, Ordering::Relaxed);
                stopped.wait();
                leave.wait();
            })
        })
        .collect();
    let before = Sample::now();
    start.wait();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    stopped.wait();
    let elapsed = t0.elapsed().as_secs_f64();
    let after = Sample::now();
    leave.wait();
    for w in workers {
        w.join().expect("a worker panicked");
    }
    let first_error = first_error.lock().unwrap().take();
    let kernel = *kernel.lock().unwrap();
    Row {
        instantiations: done.load(Ordering::Relaxed),
        seconds: elapsed,
        errors: errors.load(Ordering::Relaxed),
        first_error,
        before,
        after,
        kernel,
    }
}

fn per(n: u64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        n as f64 / count as f64
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wasmtime-bench: {e:#}\n{USAGE}");
            std::process::exit(2);
        }
    };
    match run(&args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("wasmtime-bench: {e:#}");
            std::process::exit(1);
        }
    }
}

/// Every row; Ok(false) when a row failed its checks.
fn run(args: &Args) -> Result<bool> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max_threads = *args.threads.iter().max().unwrap_or(&1);
    // Live instances, plus what the decommit queue's shards (one per CPU, at
    // most 16) may hold unflushed, plus room to spare.
    let slots = u32::try_from(max_threads * 2 + cpus.min(16) * workload::BATCH + 64)
        .context("too many threads")?;
    let probe = counters::probe_process_madvise_self();
    let counting = ThreadCounters::open().read().is_some();
    println!(
        "# wasmtime-bench: Wasmtime {} (crates.io), pooling allocator, {:.1}s per row; Linux {}, {} CPUs; TLB counter {}",
        env!("WASMTIME_VERSION"),
        args.seconds,
        kernel_release(),
        cpus,
        if counters::tlb_shootdowns().is_some() { "/proc/interrupts" } else { "none (no TLB row)" }
    );
    println!(
        "# this kernel's answer to process_madvise(PIDFD_SELF, 2 ranges, MADV_DONTNEED): {probe}; system calls and IPI rounds sent {}",
        if counting {
            "counted by perf on tracepoints"
        } else {
            "not counted (needs root, perf events, syscall tracepoints and tracefs)"
        }
    );
    println!(
        "{:<31} {:<9} {:>5} {:>3} {:>10} {:>10} {:>9} {:>11} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9} {:>12}",
        "config",
        "module",
        "dirty",
        "thr",
        "inst/s",
        "per-thread",
        "tlb/inst",
        "faults/inst",
        "errors",
        "pmadv",
        "failed",
        "madv/inst",
        "mmap/inst",
        "mprot/inst",
        "rounds/pmadv"
    );
    let mut rows = Vec::new();
    let mut ok = true;
    for &conf in &args.configs {
        let engine = conf.engine(slots)?;
        for (name, file) in &args.modules {
            let dirty: Vec<Option<u32>> = if name == "echo" {
                args.dirty_pages.iter().map(|&d| Some(d)).collect()
            } else {
                vec![None]
            };
            for d in dirty {
                let prepared = Arc::new(Prepared::new(&engine, name, file, d.unwrap_or(0))?);
                for &threads in &args.threads {
                    let r = run_row(&prepared, threads, args.seconds);
                    let tlb = match (r.before.shootdowns, r.after.shootdowns) {
                        (Some(b), Some(a)) => Some(per(a - b, r.instantiations)),
                        _ => None,
                    };
                    let faults = per(r.after.faults - r.before.faults, r.instantiations);
                    let rate = r.instantiations as f64 / r.seconds;
                    let k = r.kernel;
                    let rounds = k.and_then(|k| k.ipi_rounds);
                    // IPI rounds per batch: what each process_madvise() call
                    // cost, counting every round the workers sent.
                    let rounds_per_call = match (k, rounds) {
                        (Some(k), Some(n)) if k.process_madvise > 0 => {
                            Some(n as f64 / k.process_madvise as f64)
                        }
                        _ => None,
                    };
                    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
                    println!(
                        "{:<31} {:<9} {:>5} {:>3} {:>10.0} {:>10.0} {:>9} {:>11.2} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9} {:>12}",
                        conf.name(),
                        name,
                        d.map_or("-".to_owned(), |d| d.to_string()),
                        threads,
                        rate,
                        rate / threads as f64,
                        tlb.map_or("-".to_owned(), |t| format!("{t:.3}")),
                        faults,
                        r.errors,
                        opt(k.map(|k| k.process_madvise.to_string())),
                        opt(k.map(|k| k.process_madvise_failed.to_string())),
                        opt(k.map(|k| format!("{:.2}", per(k.madvise, r.instantiations)))),
                        opt(k.map(|k| format!("{:.2}", per(k.mmap, r.instantiations)))),
                        opt(k.map(|k| format!("{:.2}", per(k.mprotect, r.instantiations)))),
                        opt(rounds_per_call.map(|v| format!("{v:.3}")))
                    );
                    if let Some(e) = &r.first_error {
                        println!("#   first error: {e}");
                    }
                    if r.errors > 0 || r.instantiations < args.min_instantiations {
                        ok = false;
                    }
                    rows.push(json!({
                        "peer": "wasmtime",
                        "wasmtime_version": env!("WASMTIME_VERSION"),
                        "config": conf.name(),
                        "decommit_batch_size": conf.batch_size(),
                        "keep_resident_bytes": conf.keep_resident(),
                        "pagemap_scan": conf.pagemap_scan(),
                        "module": name,
                        "dirty_pages": d,
                        "threads": threads,
                        "seconds": r.seconds,
                        "instantiations": r.instantiations,
                        "instantiations_per_s": rate,
                        "shootdowns_per_instantiation": tlb,
                        "faults_per_instantiation": faults,
                        "errors": r.errors,
                        "first_error": r.first_error,
                        "process_madvise_pidfd_self": probe,
                        "process_madvise_calls": k.map(|k| k.process_madvise),
                        "process_madvise_failed": k.map(|k| k.process_madvise_failed),
                        "madvise_calls": k.map(|k| k.madvise),
                        "mmap_calls": k.map(|k| k.mmap),
                        "mprotect_calls": k.map(|k| k.mprotect),
                        "munmap_calls": k.map(|k| k.munmap),
                        "ipi_rounds_sent": rounds,
                        "ipi_rounds_per_process_madvise": rounds_per_call,
                    }));
                }
            }
        }
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&rows)? + "\n";
        std::fs::write(path, text).with_context(|| format!("writing {path}"))?;
    }
    Ok(ok)
}
