//! Wasmtime's configurations and the modules they run: one engine per
//! configuration, one pre-instantiated module per (configuration, module),
//! and one instantiation as the seed's benchmark does it: instantiate from
//! the `InstancePre`, call the entry, drop the store.

use anyhow::{anyhow, bail, Context, Result};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, Store,
};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

/// Wasmtime's pooling allocator as its users can configure it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Conf {
    /// The defaults: one madvise() per range, memories and tables decommitted.
    Default,
    /// decommit_batch_size(32): batches through process_madvise(PIDFD_SELF).
    Batch,
    /// The batch, and memories and tables kept resident (memset, no madvise)
    /// up to KEEP_RESIDENT bytes.
    BatchKeepResident,
    /// The batch, kept resident, and pagemap_scan: only the pages written are
    /// reset (Linux 6.7 and later; elsewhere it is off).
    BatchPagemap,
}

pub const BATCH: usize = 32;
/// Bytes of each linear memory and table kept resident: the whole of what
/// echo and the WASI programs write at start-up, as a runtime tuned for
/// them would set it.
pub const KEEP_RESIDENT: usize = 1 << 20;

impl Conf {
    pub const ALL: [Conf; 4] = [
        Conf::Default,
        Conf::Batch,
        Conf::BatchKeepResident,
        Conf::BatchPagemap,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Conf::Default => "wasmtime-default",
            Conf::Batch => "wasmtime-batch32",
            Conf::BatchKeepResident => "wasmtime-batch32-keep-resident",
            Conf::BatchPagemap => "wasmtime-batch32-pagemap",
        }
    }

    pub fn parse(s: &str) -> Option<Conf> {
        Conf::ALL.into_iter().find(|c| c.name() == s)
    }

    pub fn batch_size(self) -> usize {
        if self == Conf::Default {
            1
        } else {
            BATCH
        }
    }

    pub fn keep_resident(self) -> usize {
        match self {
            Conf::BatchKeepResident | Conf::BatchPagemap => KEEP_RESIDENT,
            _ => 0,
        }
    }

    pub fn pagemap_scan(self) -> bool {
        self == Conf::BatchPagemap
    }

    /// An engine with this pool, sized for `slots` live and queued instances.
    pub fn engine(self, slots: u32) -> Result<Engine> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .total_stacks(slots)
            // The WASI program `grow` grows its memory past 5 MiB.
            .max_memory_size(64 << 20)
            .decommit_batch_size(self.batch_size())
            .linear_memory_keep_resident(self.keep_resident())
            .table_keep_resident(self.keep_resident())
            .pagemap_scan(if self.pagemap_scan() {
                Enabled::Auto
            } else {
                Enabled::No
            });
        let mut config = Config::new();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        Engine::new(&config).map_err(|e| anyhow!("{e:#}"))
    }
}

/// A WASI program's command line and environment, as instantiate-bench
/// gives them (runtime-integration/wasi/programs.cpp).
pub struct WasiArgs {
    pub args: &'static [&'static str],
    pub env: &'static [(&'static str, &'static str)],
}

fn wasi_args(name: &str) -> Option<WasiArgs> {
    Some(match name {
        "request" => WasiArgs {
            args: &[
                "request",
                "GET /api/items?id=42&name=blue%20widget&tag=a&tag=b HTTP/1.1",
                "{\"qty\": 3, \"price\": 1250}",
            ],
            env: &[
                ("HTTP_HOST", "shop.example"),
                ("HTTP_USER_AGENT", "curl/8.0"),
                ("PATH", "/usr/bin"),
                ("HTTP_ACCEPT", "application/json"),
            ],
        },
        "compress" => WasiArgs {
            args: &["compress"],
            env: &[],
        },
        "grow" => WasiArgs {
            args: &["grow"],
            env: &[],
        },
        _ => return None,
    })
}

/// The largest stdout a WASI program may write before the pipe refuses.
const STDOUT_CAPACITY: usize = 1 << 20;

/// A module ready to instantiate under one configuration.
pub enum Prepared {
    /// The seed's echo: init(dirty_pages) writes one byte in each of the
    /// first pages, then echo(0, 0) returns 1.
    Echo {
        pre: InstancePre<()>,
        dirty_pages: u32,
    },
    /// A WASI program: _start, its stdout checked against a reference run.
    Wasi {
        pre: InstancePre<WasiP1Ctx>,
        args: WasiArgs,
        expected: Vec<u8>,
    },
}

impl Prepared {
    pub fn new(engine: &Engine, name: &str, path: &str, dirty_pages: u32) -> Result<Prepared> {
        let module = Module::from_file(engine, path)
            .map_err(|e| anyhow!("{e:#}"))
            .with_context(|| format!("module '{name}' ({path})"))?;
        if name == "echo" {
            let linker = Linker::<()>::new(engine);
            let pre = linker
                .instantiate_pre(&module)
                .map_err(|e| anyhow!("{e:#}"))?;
            return Ok(Prepared::Echo { pre, dirty_pages });
        }
        let Some(args) = wasi_args(name) else {
            bail!("unknown module '{name}' (echo, request, compress or grow)");
        };
        let mut linker = Linker::<WasiP1Ctx>::new(engine);
        p1::add_to_linker_sync(&mut linker, |t| t).map_err(|e| anyhow!("{e:#}"))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| anyhow!("{e:#}"))?;
        let mut prepared = Prepared::Wasi {
            pre,
            args,
            expected: Vec::new(),
        };
        let reference = prepared
            .run_wasi()
            .with_context(|| format!("reference run of '{name}'"))?;
        if let Prepared::Wasi { expected, .. } = &mut prepared {
            *expected = reference;
        }
        Ok(prepared)
    }

    /// One instantiation, entry call and drop; an error says what failed.
    pub fn run_once(&self) -> Result<()> {
        match self {
            Prepared::Echo { pre, dirty_pages } => {
                let mut store = Store::new(pre.module().engine(), ());
                let instance = pre.instantiate(&mut store).map_err(|e| anyhow!("{e:#}"))?;
                let init = instance
                    .get_typed_func::<i32, ()>(&mut store, "init")
                    .map_err(|e| anyhow!("{e:#}"))?;
                init.call(&mut store, *dirty_pages as i32)
                    .map_err(|e| anyhow!("{e:#}"))?;
                let echo = instance
                    .get_typed_func::<(i32, i32), i32>(&mut store, "echo")
                    .map_err(|e| anyhow!("{e:#}"))?;
                let r = echo
                    .call(&mut store, (0, 0))
                    .map_err(|e| anyhow!("{e:#}"))?;
                if r != 1 {
                    bail!("echo returned {r}, not 1");
                }
                Ok(())
            }
            Prepared::Wasi { expected, .. } => {
                let out = self.run_wasi()?;
                if &out != expected {
                    bail!(
                        "stdout differs from the reference run ({} bytes, not {})",
                        out.len(),
                        expected.len()
                    );
                }
                Ok(())
            }
        }
    }

    fn run_wasi(&self) -> Result<Vec<u8>> {
        let Prepared::Wasi { pre, args, .. } = self else {
            unreachable!("run_wasi on echo")
        };
        let stdout = MemoryOutputPipe::new(STDOUT_CAPACITY);
        let ctx = WasiCtxBuilder::new()
            .args(args.args)
            .envs(args.env)
            .stdout(stdout.clone())
            .build_p1();
        let mut store = Store::new(pre.module().engine(), ctx);
        let instance = pre.instantiate(&mut store).map_err(|e| anyhow!("{e:#}"))?;
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(|e| anyhow!("{e:#}"))?;
        match start.call(&mut store, ()) {
            Ok(()) => {}
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(I32Exit(0)) => {}
                Some(I32Exit(code)) => bail!("_start exited {code}"),
                None => bail!("_start: {e:#}"),
            },
        }
        drop(store);
        Ok(stdout.contents().to_vec())
    }
}
