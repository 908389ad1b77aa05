//! The NIF library behind `LsmIndex.Native`: converts terms, holds indexes in resources and
//! maps core errors. No index logic lives here.
#![deny(unsafe_code)]

mod index;
mod router;
mod timing;

/// At load: keep freed memory for reuse (see `lsm_index_core::malloc`): compaction's
/// unmapping would otherwise flush every scheduler's TLB and slow lookups.
fn load(_env: rustler::Env, _info: rustler::Term) -> bool {
    lsm_index_core::malloc::retain_freed_memory();
    true
}

rustler::init!("Elixir.LsmIndex.Native", load = load);
